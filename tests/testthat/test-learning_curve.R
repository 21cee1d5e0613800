test_that("learning_curve() scores heads on real images by training size", {
  skip_if_no_engine()
  imgs <- image_files(system.file("extdata", "images", package = "tidyvision"))
  withr::local_options(cli.progress_show_after = 0, cli.dynamic = FALSE)
  msgs <- character()
  lc <- withCallingHandlers(
    learning_curve(imgs, sizes = c(3, 12, 48), reps = 2, image_size = 64, times = 100, verbose = TRUE),
    message = function(m) { msgs <<- c(msgs, conditionMessage(m)); invokeRestart("muffleMessage") })
  expect_true(any(grepl("Embedding images", msgs)))
  expect_s3_class(lc, "tv_learning_curve")
  acc <- lc[lc$.metric == "accuracy", ]
  expect_equal(acc$size, rep(c(3L, 12L, 48L), each = 2))
  expect_true(all(acc$.lower <= acc$.estimate & acc$.estimate <= acc$.upper))
  means <- tapply(acc$.estimate, acc$size, mean)
  expect_gt(means[["48"]], means[["3"]])
  expect_gt(means[["48"]], 0.6)  # three classes: chance is a third
  expect_s3_class(ggplot2::autoplot(lc), "ggplot")
})
