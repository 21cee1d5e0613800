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
