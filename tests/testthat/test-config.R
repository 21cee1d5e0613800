test_that("tv_config() describes the engine", {
  skip_if_no_engine()
  cfg <- tv_config()
  expect_s3_class(cfg, "tv_config")
  expect_true(file.exists(cfg$python))
  expect_true(cfg$device %in% c("cpu", "cuda", "mps"))
  expect_true("efficientnet_lite0" %in% cfg$backbones_offline)
  expect_match(cfg$versions$torch, "^2\\.")
  expect_output(print(cfg), "Backbones with weights on disk: efficientnet_lite0")
  # The engine runs the Python of the environment it was given, in-process,
  # with that interpreter's own libpython (not the system's of another release).
  expect_equal(cfg$python_version, trimws(tidyvision:::run_python(
    cfg$python, c("-c", "import platform; print(platform.python_version())"))$output))
  expect_true(file.exists(cfg$libpython))
  expect_output(print(cfg), "libpython: ", fixed = TRUE)
  expect_output(print(cfg), "Cache: .* of 3 GiB")
  expect_true(reticulate::py_module_available("ssl"))
})
