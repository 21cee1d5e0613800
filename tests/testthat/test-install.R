test_that("child Pythons run without R's additions to LD_LIBRARY_PATH", {
  r_lib <- "/usr/lib/R/lib"
  x <- "/usr/lib/R/lib:/usr/lib/x86_64-linux-gnu:/usr/lib/jvm/default-java/lib/server:/opt/mine/lib"
  expect_equal(tidyvision:::r_free_library_path(x, r_lib), "/opt/mine/lib")
  expect_equal(tidyvision:::r_free_library_path("/usr/lib/R/lib:/lib64:/usr/lib/", r_lib), "")
  env <- tidyvision:::python_child_env(c(PATH = "/bin", LD_LIBRARY_PATH = paste0(R.home("lib"), ":/usr/lib")))
  expect_false("LD_LIBRARY_PATH" %in% names(env))
  expect_equal(env[["PATH"]], "/bin")
  expect_equal(tidyvision:::python_child_env(c(LD_LIBRARY_PATH = "/opt/x"))[["LD_LIBRARY_PATH"]], "/opt/x")
})

fake_python <- function(dir, name, message) {
  dir.create(dir, showWarnings = FALSE, recursive = TRUE)
  path <- file.path(dir, name)
  writeLines(c("#!/bin/sh", sprintf("echo '%s' >&2", message), "exit 1"), path)
  Sys.chmod(path, "755")
  path
}

test_that("a python3 that fails the probe is skipped for the next candidate", {
  skip_on_cran()
  dir <- withr::local_tempdir()
  fake_python(dir, "python3", "ImportError: undefined symbol: _PyModule_Add")
  withr::local_envvar(PATH = paste(dir, Sys.getenv("PATH"), sep = ":"))
  cands <- tidyvision:::python_candidates()
  expect_equal(cands[[1]], file.path(dir, "python3"))
  expect_message(chosen <- tidyvision:::choose_python(NULL, rlang::current_env()), "Skipped")
  expect_false(startsWith(chosen, dir))
  expect_true(file.exists(chosen))
})

test_that("when no candidate passes, the error lists each and why", {
  dir <- withr::local_tempdir()
  a <- fake_python(dir, "python3", "ImportError: undefined symbol: _PyModule_Add")
  b <- fake_python(dir, "python3.8", "AssertionError: Python 3.8 is older than 3.9")
  f <- function() tidyvision:::choose_python(NULL, rlang::current_env(), c(a, b, "/no/such/python3"))
  expect_error(f(), class = "tidyvision_error_python_missing")
  expect_snapshot(f(), error = TRUE, transform = function(x) gsub(dir, "<tmp>", x, fixed = TRUE))
})

test_that("a virtualenv made from R imports ssl and runs pip; a broken one is rebuilt", {
  skip_on_cran()
  path <- file.path(withr::local_tempdir(), "venv")
  # What a failed earlier run leaves: a virtualenv whose Python can't import ssl.
  fake_python(file.path(path, "bin"), "python", "ImportError: undefined symbol: _PyModule_Add")
  writeLines("home = /nowhere", file.path(path, "pyvenv.cfg"))
  expect_match(tidyvision:::venv_problem(file.path(path, "bin", "python")), "can't import ssl")
  expect_message(py <- tidyvision:::ensure_virtualenv(path, NULL, rlang::current_env()), "broken")
  expect_null(tidyvision:::venv_problem(py))
  ssl <- tidyvision:::run_python(py, c("-c", "import ssl; print(ssl.OPENSSL_VERSION)"))
  expect_equal(ssl$status, 0)
  expect_match(ssl$output, "SSL")
  pip <- tidyvision:::run_python(py, c("-m", "pip", "--version"))
  expect_equal(pip$status, 0)
  expect_match(pip$output, "^pip ")

  # A pip failure shows pip's last lines and names the full log.
  log <- file.path(path, "tidyvision-install.log")
  f <- function() tidyvision:::run_pip(py, c("install", "-r", "/no/such/requirements.txt"), TRUE, log, rlang::current_env())
  expect_error(f(), class = "tidyvision_error_install_failed")
  expect_snapshot(f(), error = TRUE, transform = function(x) gsub(path, "<venv>", x, fixed = TRUE))
  expect_match(paste(readLines(log), collapse = "\n"), "/no/such/requirements.txt")

  # Something that is not a virtualenv is never deleted.
  other <- withr::local_tempdir()
  writeLines("mine", file.path(other, "notes.txt"))
  expect_error(tidyvision:::ensure_virtualenv(other, NULL, rlang::current_env()),
               class = "tidyvision_error_install_failed")
  expect_true(file.exists(file.path(other, "notes.txt")))
})

test_that("install_tidyvision() is a no-op when the environment is current", {
  skip_if_no_engine()
  skip_if(nzchar(Sys.getenv("RETICULATE_PYTHON")))
  t <- system.time(expect_message(install_tidyvision(Sys.getenv("TIDYVISION_ENV", "r-tidyvision")),
                                  "up to date"))
  expect_lt(t[["elapsed"]], 30)
})
