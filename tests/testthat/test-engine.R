test_that("library() neither starts Python nor needs it", {
  skip_on_cran()
  out <- callr::r(function() {
    Sys.setenv(RETICULATE_PYTHON = "", WORKON_HOME = tempfile(), RETICULATE_VIRTUALENV_ROOT = tempfile())
    t <- system.time(library(tidyvision))[["elapsed"]]
    list(time = t, started = reticulate::py_available(initialize = FALSE))
  })
  expect_false(out$started)
  expect_lt(out$time, 5)
})

test_that("with no environment the first engine call is a classed error", {
  skip_on_cran()
  out <- callr::r(function() {
    Sys.setenv(RETICULATE_PYTHON = "", TIDYVISION_ENV = "no-such-env",
               WORKON_HOME = tempfile(), RETICULATE_VIRTUALENV_ROOT = tempfile())
    library(tidyvision)
    e <- tryCatch(image_files(tempdir()), error = function(e) e)
    list(class = class(e), message = conditionMessage(e), available = tv_available())
  })
  expect_true("tidyvision_error_python_missing" %in% out$class)
  expect_match(out$message, "install_tidyvision()", fixed = TRUE)
  expect_false(out$available)
})

test_that("Python errors arrive as classed R errors, not tracebacks", {
  skip_if_no_engine()
  expect_error(tidyvision:::engine_call("config.resolve_device", "tpu"),
               class = "tidyvision_error_bad_argument", regexp = "must be one of")
  expect_error(tidyvision:::engine_call("backbones.read_state_dict", "/no/such.pth"),
               class = "tidyvision_error_weights_missing")
  e <- tryCatch(tidyvision:::engine_call("images.columns", 1L, 2L), error = function(e) e)
  expect_s3_class(e, "tidyvision_error_engine")
})

test_that("a progress callback never aborts the computation it reports on", {
  withr::local_options(cli.progress_show_after = 0, cli.dynamic = FALSE)
  expect_null(progress_callback(FALSE, "Quiet"))
  run <- function() {
    tick <- progress_callback(TRUE, "Working")
    tick(1, 2)
    tick(2, 2)  # cli closes a bar at its total...
    tick(2, 2)  # ...and the engine's end-of-epoch tick comes after
    tick("not a number", list())  # cli errors on this; the callback must not
    tick(1, 3, "Next phase")
    tick(3, 3, "Next phase")
    "finished"
  }
  out <- capture.output(type = "message", res <- expect_no_error(run()))
  expect_equal(res, "finished")
  expect_match(out, "Working", all = FALSE)
  expect_match(out, "Next phase.*100%", all = FALSE)
})

test_that("attaching tidyvision masks nothing of base R", {
  skip_on_cran()
  out <- callr::r(function() {
    msgs <- character()
    withCallingHandlers(library(tidyvision), packageStartupMessage = function(m) {
      msgs <<- c(msgs, conditionMessage(m))
      invokeRestart("muffleMessage")
    })
    conflicts <- conflicts(detail = TRUE)
    c(msgs, unlist(lapply(conflicts[setdiff(names(conflicts), "package:tidyvision")],
                          intersect, ls("package:tidyvision"))))
  })
  expect_length(out, 0)
})
