test_that("skip_if_no_tidyvision() passes with the engine and skips cleanly without it", {
  skip_if_no_engine()
  expect_true(skip_if_no_tidyvision())
  skip_if_not(installed_for_children(), "tidyvision is not installed for child processes")
  out <- callr::r(function() {
    Sys.setenv(RETICULATE_PYTHON = "", TIDYVISION_ENV = "no-such-env",
               WORKON_HOME = tempfile(), RETICULATE_VIRTUALENV_ROOT = tempfile())
    library(tidyvision)
    res <- testthat::capture_condition(skip_if_no_tidyvision())
    list(class = class(res), message = conditionMessage(res))
  }, env = c(callr::rcmd_safe_env(), R_LIBS = paste(.libPaths(), collapse = ":")))
  expect_true("skip" %in% out$class)
  expect_match(out$message, "install_tidyvision()", fixed = TRUE)
})

test_that("local_tidyvision() is quiet, fp32, one thread and has its own cache, all undone after", {
  skip_if_no_engine()
  torch <- reticulate::import("torch")
  os <- reticulate::import("os")
  threads <- torch$get_num_threads()
  before <- os$environ$get("TIDYVISION_CACHE_DIR")
  tv_example_classifier()  # something in the engine's memory cache
  expect_gt(nrow(tv_cache()), 0)
  inside <- local({
    dir <- local_tidyvision()
    list(dir = dir, py_dir = os$environ$get("TIDYVISION_CACHE_DIR"), threads = torch$get_num_threads(),
         deterministic = torch$are_deterministic_algorithms_enabled(),
         precision = tidyvision:::engine_call("speed.choose", "infer", NULL, "any", 8L, 64L, "cpu")[[1]],
         bar = getOption("cli.progress_show_after"), cache = nrow(tv_cache()))
  })
  expect_equal(inside$py_dir, inside$dir)
  expect_equal(inside$threads, 1L)
  expect_true(inside$deterministic)
  expect_equal(inside$precision, "fp32")
  expect_equal(inside$bar, Inf)
  expect_equal(inside$cache, 0)
  expect_false(dir.exists(inside$dir))
  expect_equal(torch$get_num_threads(), threads)
  expect_false(torch$are_deterministic_algorithms_enabled())
  expect_identical(os$environ$get("TIDYVISION_CACHE_DIR"), before)
})

test_that("tv_example_classifier() is a real classifier of the example photos, made once", {
  skip_if_no_engine()
  local_tidyvision()
  fit <- tv_example_classifier()
  expect_s3_class(fit, "tv_classifier")
  expect_equal(fit$classes, c("animals", "buildings", "tools"))
  expect_identical(tv_example_classifier(), fit)
  imgs <- image_files(system.file("extdata", "images", package = "tidyvision"))
  withr::local_options(cli.progress_show_after = 0, cli.dynamic = FALSE)
  out <- augment(fit, imgs)
  expect_equal(out$path, imgs$path)
  expect_gt(mean(out$.pred_class == imgs$label), 0.8)
  db <- withr::local_tempfile(fileext = ".sqlite")
  classify_folder(fit, imgs[1:6, ], db, verbose = FALSE)
  expect_equal(read_corpus(db)$.pred_class, out$.pred_class[1:6])
})
