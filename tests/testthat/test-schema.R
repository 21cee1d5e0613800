test_that("as_schema() types declared columns and calls a missing one an engine bug", {
  cols <- list(space = list("a", NULL), entries = list(1, 2), bytes = c(3, 4), extra = 1:2)
  out <- tidyvision:::as_schema(cols, "cache")
  expect_named(out, c("space", "entries", "bytes"))
  expect_identical(out$space, c("a", NA))
  expect_identical(out$entries, c(1L, 2L))
  expect_error(tidyvision:::as_schema(cols[-1], "cache"), class = "tidyvision_error_engine")
})
