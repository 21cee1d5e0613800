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

test_that("tv_config() says what torch runs, and under an emulated AVX2-only CPU claims no bf16", {
  skip_if_no_engine()
  cfg <- tv_config()
  expect_equal(cfg$cpu_capability, reticulate::import("torch")$backends$cpu$get_cpu_capability())
  expect_output(print(cfg), paste0("kernels are ", cfg$cpu_capability))
  skip_if_not(installed_for_children(), "tidyvision is not installed for child processes")
  out <- callr::r(function() {
    library(tidyvision)
    cfg <- tv_config()
    list(bf16 = cfg$bf16_kernels, capability = cfg$cpu_capability, text = format(cfg))
  }, env = c(callr::rcmd_safe_env(), R_LIBS = paste(.libPaths(), collapse = ":"),
             ATEN_CPU_CAPABILITY = "avx2", ONEDNN_MAX_CPU_ISA = "AVX2"))
  expect_false(out$bf16)
  expect_equal(out$capability, "AVX2")
  expect_match(paste(out$text, collapse = "\n"), "kernels are AVX2 without bf16: fp32")
})
