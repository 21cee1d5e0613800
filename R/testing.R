#' Helpers for your own tests of code that uses tidyvision
#'
#' Researchers put their pipelines under testthat. These three make such
#' tests run anywhere:
#'
#' * `skip_if_no_tidyvision()` skips the test (via [testthat::skip()]) when
#'   the Python engine or its environment is missing, as on a machine where
#'   [install_tidyvision()] was never run, instead of failing it.
#' * `local_tidyvision()` makes the rest of the calling test (or function)
#'   quiet (no progress bars), deterministic (fp32 everywhere, whatever the
#'   CPU; torch's deterministic algorithms; one thread) and gives it its own
#'   cache: the engine's memory cache is emptied, and its cache folder
#'   (weights, measurements) is a temporary one. Everything is put back when
#'   the test ends.
#' * `tv_example_classifier()` is a small real classifier of the example
#'   photos in `inst/extdata` (animals, buildings, tools; EfficientNet-Lite0
#'   with a head trained on 128-pixel images in a few seconds), made once a
#'   session, so tests can call [predict()], [augment()] and
#'   [classify_folder()] without training their own.
#'
#' @param .env The environment whose end undoes `local_tidyvision()`: by
#'   default the calling test or function.
#' @return `skip_if_no_tidyvision()`: `TRUE`, invisibly, when the engine is
#'   there. `local_tidyvision()`: the temporary cache folder, invisibly.
#'   `tv_example_classifier()`: a `tv_classifier`.
#' @seealso `vignette("workflow")`, section "Testing code that uses tidyvision".
#' @name testing
#' @examples
#' if (requireNamespace("testthat", quietly = TRUE)) {
#'   testthat::test_that("my pipeline labels the example photos", {
#'     skip_if_no_tidyvision()
#'     local_tidyvision()
#'     fit <- tv_example_classifier()
#'     imgs <- image_files(system.file("extdata", "images", package = "tidyvision"))
#'     pred <- predict(fit, imgs[1:3, ])
#'     testthat::expect_equal(nrow(pred), 3)
#'   })
#' }
NULL

#' @rdname testing
#' @export
skip_if_no_tidyvision <- function() {
  if (!requireNamespace("testthat", quietly = TRUE)) {
    tv_abort("{.fn skip_if_no_tidyvision} is for tests: install {.pkg testthat}.", class = "missing_package")
  }
  if (tv_available()) return(invisible(TRUE))
  testthat::skip("The tidyvision Python engine is not installed (see tidyvision::install_tidyvision()).")
}

#' @rdname testing
#' @export
local_tidyvision <- function(.env = parent.frame()) {
  dir <- withr::local_tempdir("tidyvision-test-cache-", .local_envir = .env)
  withr::local_options(cli.progress_show_after = Inf, .local_envir = .env)
  withr::local_envvar(TIDYVISION_CACHE_DIR = dir, TIDYVISION_PRECISION = "fp32", .local_envir = .env)
  old <- engine_call("testing.enter", dir)
  withr::defer({
    engine_call("testing.leave", old)
  }, envir = .env)
  invisible(dir)
}

#' @rdname testing
#' @export
tv_example_classifier <- function() {
  if (is.null(example_cache$fit)) {
    imgs <- image_files(system.file("extdata", "images", package = "tidyvision"))
    example_cache$fit <- fine_tune(imgs, epochs = 5, train_layers = "head", image_size = 128L,
                                   batch_size = 8L, augment = FALSE, seed = 1L, precision = "fp32",
                                   verbose = FALSE)
  }
  example_cache$fit
}

example_cache <- new.env(parent = emptyenv())
