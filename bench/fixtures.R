# The test suite's fixture builders (tests/python/fixtures.py), for benches
# run from the package's root folder.
bench_fixtures <- function() {
  invisible(tidyvision:::engine_call("config.versions"))  # the engine first: fixtures import it
  reticulate::import_from_path("fixtures", file.path("tests", "python"))
}
