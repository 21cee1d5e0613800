test_that("tune_grid() gives one row per combination and records failures", {
  skip_if_no_engine()
  imgs <- separable_images()
  grid <- list(learning_rate = c(0.01, 0.001), batch_size = c(8, 0))
  expect_warning(
    res <- tune_grid(imgs, grid = grid, epochs = 2, image_size = 64, train_layers = "head"),
    class = "tidyvision_warning_grid_failed"
  )
  expect_s3_class(res, "tv_grid")
  expect_equal(nrow(res), 4)
  expect_named(res, c("learning_rate", "batch_size", "accuracy", "precision", "recall", "f1",
                      "loss", "best_epoch", "seconds", "history", ".notes"))
  ok <- res$batch_size == 8
  expect_true(all(is.na(res$.notes[ok])))
  expect_match(res$.notes[!ok], "batch_size")
  expect_true(all(is.na(res$accuracy[!ok])))
  expect_true(all(res$accuracy[ok] > 0.5))
  expect_equal(nrow(res$history[[1]]), 4)
  expect_true(all(res$best_epoch[ok] %in% 1:2))
  expect_s3_class(autoplot(res), "ggplot")
  # the same combination alone gives the same numbers: shared work changes nothing
  alone <- fine_tune(imgs, epochs = 2, image_size = 64, train_layers = "head",
                     learning_rate = 0.01, batch_size = 8)
  expect_equal(res$accuracy[1], max(fit_history(alone)$accuracy[fit_history(alone)$split == "val"]))
})

test_that("select_best() picks the right row", {
  res <- structure(tibble::tibble(
    learning_rate = c(0.1, 0.01, 0.001), accuracy = c(0.7, 0.9, 0.9), precision = 0.5,
    recall = 0.5, f1 = c(0.8, 0.6, 0.7), loss = c(0.2, 0.5, 0.1), best_epoch = 1L,
    seconds = 1, history = list(NULL), .notes = NA_character_
  ), class = c("tv_grid", "tbl_df", "tbl", "data.frame"))
  expect_equal(select_best(res)$learning_rate, 0.01)
  expect_equal(select_best(res, "f1")$learning_rate, 0.1)
  expect_equal(select_best(res, "loss")$learning_rate, 0.001)
  expect_named(select_best(res), "learning_rate")
})

test_that("bad grids are classed errors", {
  imgs <- tibble::tibble(path = "a.jpg", label = "x", split = "train")
  expect_error(tune_grid(imgs, grid = list(learning_rat = 0.1)), class = "tidyvision_error_bad_argument")
  expect_error(tune_grid(imgs, grid = list(momentum = 0.9), momentum = 0.5),
               class = "tidyvision_error_bad_argument")
  expect_error(tune_grid(imgs, grid = 3), class = "tidyvision_error_bad_argument")
})

test_that("tune_grid() finishes with the progress bar on", {
  skip_if_no_engine()
  withr::local_options(cli.progress_show_after = 0, cli.dynamic = FALSE)
  out <- capture.output(type = "message",
    res <- tune_grid(separable_images(), grid = list(learning_rate = c(0.01, 0.001)), epochs = 1,
                     image_size = 64, train_layers = "head", verbose = TRUE)
  )
  expect_equal(nrow(res), 2)
  expect_true(all(is.na(res$.notes)))
  expect_match(out, "Grid search", all = FALSE)
  expect_match(out, "100%", all = FALSE)
})

test_that("class_weights can be a grid column", {
  skip_if_no_engine()
  res <- tune_grid(separable_images(), grid = list(class_weights = c("none", "balanced")),
                   epochs = 1, image_size = 64, train_layers = "head")
  expect_equal(res$class_weights, c("none", "balanced"))
  expect_true(all(is.na(res$.notes)))
})

test_that("autoplot() of a grid has an x title and numeric scales for numeric columns", {
  res <- structure(tibble::tibble(
    learning_rate = c(0.1, 0.01, 0.0001, 0.1), batch_size = c(4, 4, 16, 16),
    accuracy = c(0.7, 0.9, 0.8, 0.6), precision = 0.5, recall = 0.5, f1 = c(0.6, 0.8, 0.7, 0.5),
    loss = 0.3, best_epoch = 1L, seconds = 1, history = list(NULL), .notes = NA_character_
  ), class = c("tv_grid", "tbl_df", "tbl", "data.frame"))
  p <- autoplot(res)
  expect_equal(p$labels$x, "Hyperparameter value")
  expect_equal(p$labels$colour, "Metric")
  expect_true(is.numeric(p$data$value))
  # learning rates a decade apart: a log scale, ticked at the values tried
  expect_equal(p$scales$get_scales("x")$trans$name, "log-10")
  built <- ggplot2::ggplot_build(p)
  ticks <- lapply(built$layout$panel_params, function(pp) pp$x$get_labels())
  expect_setequal(unlist(ticks), c("4", "16", "0.0001", "0.01", "0.1"))
  res$batch_size <- c("a", "b", "a", "b")
  expect_false(is.numeric(autoplot(res)$data$value))
})

test_that("select_best() and tune_grid() leave other packages' objects to tune", {
  skip_if(requireNamespace("tune", quietly = TRUE), "tune is installed: its methods answer")
  expect_error(select_best(lm(dist ~ speed, cars)), class = "tidyvision_error_bad_argument")
  expect_error(tune_grid(lm(dist ~ speed, cars), grid = list(epochs = 1)), class = "tidyvision_error")
})
