# Engine tests skip without Python, except under `make test`
# (TIDYVISION_REQUIRE_PYTHON=1), where a missing engine is a failure.
skip_if_no_engine <- function() {
  if (tv_available()) return(invisible(TRUE))
  if (identical(Sys.getenv("TIDYVISION_REQUIRE_PYTHON"), "1")) {
    testthat::fail("The Python engine is required (TIDYVISION_REQUIRE_PYTHON=1) but not available.")
  }
  testthat::skip("The tidyvision Python engine is not installed.")
}

# The fixture builders (Pillow), shared with the pytest suite; they live with
# the tests (tests/python/fixtures.py), not in the engine users install.
fixtures <- function(convert = TRUE) {
  tidyvision:::engine_call("config.versions")  # the engine first: fixtures import it
  reticulate::import_from_path("fixtures", testthat::test_path("..", "python"), convert = convert)
}
