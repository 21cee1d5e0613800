test_that("check_choice() takes the default's choices and names the argument and the call", {
  f <- function(method = c("blur", "pixelate")) tidyvision:::check_choice(method)
  expect_equal(f(), "blur")
  expect_equal(f("pixelate"), "pixelate")
  expect_error(f("pixel"), class = "tidyvision_error_bad_argument")
  expect_error(f(c("blur", "pixelate", "x")), class = "tidyvision_error_bad_argument")
  expect_snapshot(error = TRUE, {
    f("pixelat")
    f(3)
  })
  g <- function(level) tidyvision:::check_choice(level, c("first", "second"))
  expect_equal(g("second"), "second")
  expect_error(g(NA_character_), class = "tidyvision_error_bad_argument")
})

test_that("check_scalar() shows the bad value", {
  f <- function(epochs) tidyvision:::check_scalar(epochs, function(x) x >= 1, "a whole number >= 1", "epochs", rlang::current_env())
  expect_silent(f(3))
  expect_snapshot(error = TRUE, {
    f(0)
    f("ten")
  })
})
