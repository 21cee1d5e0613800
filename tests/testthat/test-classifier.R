test_that("predict() keeps input order and one row per input row", {
  skip_if_no_engine()
  fit <- small_fit()
  imgs <- separable_images()
  probs <- predict(fit, imgs, type = "prob")
  expect_named(probs, c(".pred_blue", ".pred_red"))
  expect_equal(nrow(probs), nrow(imgs))
  expect_equal(rowSums(probs), rep(1, nrow(imgs)), tolerance = 1e-4)
  perm <- sample(nrow(imgs))
  shuffled <- predict(fit, imgs[perm, ], type = "prob")
  expect_equal(shuffled, probs[perm, ], tolerance = 1e-6)
  cls <- predict(fit, imgs$path)
  expect_s3_class(cls$.pred_class, "factor")
  expect_equal(levels(cls$.pred_class), c("blue", "red"))
  expect_gt(mean(as.character(cls$.pred_class) == imgs$label), 0.75)
})

test_that("unreadable rows get NA predictions and one warning", {
  skip_if_no_engine()
  fit <- small_fit()
  bad <- withr::local_tempfile(fileext = ".jpg")
  writeLines("not a jpeg", bad)
  paths <- c(separable_images()$path[1], bad, separable_images()$path[2])
  expect_warning(p <- predict(fit, paths, type = "prob"), class = "tidyvision_warning_unreadable")
  expect_equal(is.na(p$.pred_blue), c(FALSE, TRUE, FALSE))
  expect_warning(a <- augment(fit, tibble::tibble(path = paths)), class = "tidyvision_warning_unreadable")
  expect_equal(is.na(a$.pred_class), c(FALSE, TRUE, FALSE))
  expect_named(a, c("path", ".pred_class", ".pred_blue", ".pred_red"))
})

test_that("save and load give identical probabilities and a full card", {
  skip_if_no_engine()
  fit <- small_fit()
  dir <- file.path(withr::local_tempdir(), "model")
  save_classifier(fit, dir)
  expect_setequal(list.files(dir), c("model.safetensors", "tidyvision.json"))
  card <- jsonlite::fromJSON(file.path(dir, "tidyvision.json"))
  expect_equal(card$classes, c("blue", "red"))
  expect_equal(card$hyperparameters$learning_rate, 0.01)
  expect_equal(card$seed, 3)
  expect_equal(card$best_epoch, fit$best_epoch)
  expect_match(card$training_images_sha256, "^[0-9a-f]{64}$")
  expect_false(is.null(card$versions$torch))
  loaded <- load_classifier(dir)
  imgs <- separable_images()
  expect_identical(predict(loaded, imgs, type = "prob"), predict(fit, imgs, type = "prob"))
  expect_equal(fit_history(loaded), fit_history(fit))
})

test_that("an existing folder is not overwritten without overwrite = TRUE", {
  skip_if_no_engine()
  fit <- small_fit()
  dir <- file.path(withr::local_tempdir(), "model")
  save_classifier(fit, dir)
  before <- file.info(file.path(dir, "model.safetensors"))$mtime
  expect_error(save_classifier(fit, dir), class = "tidyvision_error_exists")
  expect_equal(file.info(file.path(dir, "model.safetensors"))$mtime, before)
  expect_silent(save_classifier(fit, dir, overwrite = TRUE))
  expect_false(any(grepl("^[.]tidyvision", list.files(dirname(dir), all.files = TRUE))))
  # Weights gone, and none carried (a fit of an older version): the saved folder is kept.
  fit$weights <- file.path(tempdir(), "gone.safetensors")
  fit$carried <- NULL
  expect_error(save_classifier(fit, dir, overwrite = TRUE), class = "tidyvision_error_weights_missing")
  expect_true(file.exists(file.path(dir, "model.safetensors")))
  expect_false(any(grepl("^[.]tidyvision", list.files(dirname(dir), all.files = TRUE))))
})

test_that("tampered weights and pickles are refused", {
  skip_if_no_engine()
  fit <- small_fit()
  dir <- file.path(withr::local_tempdir(), "model")
  save_classifier(fit, dir)
  w <- file.path(dir, "model.safetensors")
  bytes <- readBin(w, "raw", file.size(w))
  bytes[length(bytes) - 10] <- as.raw((as.integer(bytes[length(bytes) - 10]) + 1) %% 256)
  writeBin(bytes, w)
  expect_error(load_classifier(dir), class = "tidyvision_error_weights_tampered")
  file.rename(w, file.path(dir, "model.pth"))
  expect_error(load_classifier(dir), class = "tidyvision_error_weights_unsafe")
  expect_error(load_classifier(withr::local_tempdir()), class = "tidyvision_error_path_not_found")
})

test_that("a classifier whose weights are gone says how to keep one", {
  fit <- structure(list(weights = "/no/such.safetensors"), class = "tv_classifier")
  expect_error(predict(fit, "a.jpg"), class = "tidyvision_error_weights_missing")
})

test_that("a fit carries its weights: a new R session predicts with a saved or knitr-cached fit", {
  skip_if_no_engine()
  skip_if_not(installed_for_children(), "tidyvision is not installed for child processes")
  dir <- withr::local_tempdir()
  file.copy(test_path("fixtures", "paper.Rmd"), dir)
  knit <- function() {
    callr::r(function(dir, images) {
      setwd(dir)
      Sys.setenv(TV_IMAGES = images)
      knitr::knit("paper.Rmd", quiet = TRUE)
      readLines("paper.md")
    }, list(dir, dirname(dirname(dirname(separable_images()$path[1])))),
    env = c(callr::rcmd_safe_env(), R_LIBS = paste(.libPaths(), collapse = ":")))
  }
  first <- knit()
  second <- knit()  # a new R session: the fit comes from knitr's cache, its temporary files gone
  expect_length(readLines(file.path(dir, "trained.txt")), 1)  # the fit chunk ran once
  session <- function(md) grepl("#> weights file of the first session exists", md, fixed = TRUE)
  expect_match(first[session(first)], "exists: TRUE")
  expect_match(second[session(second)], "exists: FALSE")
  expect_identical(second[!session(second)], first[!session(first)])
  expect_true(any(grepl(".pred_red", second, fixed = TRUE)))
  # saveRDS() too, and a damaged copy of the bytes is refused, never used.
  fit <- readRDS(file.path(dir, "fit.rds"))
  expect_false(file.exists(fit$weights))
  expect_s3_class(predict(fit, separable_images()$path[1:2]), "tbl_df")
  fit$carried$bytes <- fit$carried$bytes[-1]
  fit$carried$md5 <- "0"
  expect_error(predict(fit, "a.jpg"), class = "tidyvision_error_weights_missing")
})

test_that("predict() works with the progress bar on", {
  skip_if_no_engine()
  withr::local_options(cli.progress_show_after = 0, cli.dynamic = FALSE)
  imgs <- separable_images()
  out <- capture.output(type = "message", p <- predict(small_fit(), imgs, verbose = TRUE))
  expect_equal(nrow(p), nrow(imgs))
  expect_match(out, "Classifying", all = FALSE)
})

test_that("unreadable rows are NA, not NaN", {
  skip_if_no_engine()
  bad <- withr::local_tempfile(fileext = ".jpg")
  writeLines("not a jpeg", bad)
  p <- suppressWarnings(predict(small_fit(), c(separable_images()$path[1], bad), type = "prob"))
  # is.nan() tells the two apart; is.na() and waldo's comparison don't
  expect_equal(is.nan(unlist(p[2, ])), c(.pred_blue = FALSE, .pred_red = FALSE))
  expect_true(all(is.na(p[2, ])))
})

test_that("augment() replaces the predictions of an earlier augment()", {
  skip_if_no_engine()
  fit <- small_fit()
  imgs <- separable_images()[1:4, ]
  once <- augment(fit, imgs)
  twice <- augment(fit, once)
  expect_named(twice, names(once))
  expect_equal(twice, once)
})

test_that("a loaded classifier prints as the fitted one, with what training ran on", {
  skip_if_no_engine()
  fit <- small_fit()
  dir <- file.path(withr::local_tempdir(), "model")
  save_classifier(fit, dir)
  card <- jsonlite::fromJSON(file.path(dir, "tidyvision.json"))
  expect_equal(card[c("device", "precision", "train_precision")],
               list(device = fit$device, precision = fit$precision, train_precision = fit$train_precision))
  expect_false(card$device == "auto")
  expect_equal(unlist(card$val_counts), c(blue = 6L, red = 6L))
  loaded <- load_classifier(dir)
  expect_equal(loaded[c("device", "precision", "train_precision", "val_counts", "n_train", "n_val")],
               fit[c("device", "precision", "train_precision", "val_counts", "n_train", "n_val")])
  # Everything printed comes from the card, training time included.
  expect_identical(capture.output(print(loaded)), capture.output(print(fit)))
})

test_that("the print says epoch for one and shows sub-second times", {
  h <- tibble::tibble(epoch = 1L, split = c("train", "val"), loss = c(0.5, 0.4), accuracy = 0.9,
                      precision = 0.8, recall = 0.7, f1 = 0.75, learning_rate = 0.01, seconds = 0.4)
  fit <- new_classifier(
    classes = c("a", "b"), label = "label", history = h, best_epoch = 1,
    settings = list(backbone = "efficientnet_lite0", train_layers = "head", class_weights = "balanced"),
    weights = "w.safetensors", sha256 = "0", fingerprint = "0", n_train = 8, n_val = 4,
    val_counts = c(2, 2), device = "cpu", precision = "bf16", train_precision = "fp32"
  )
  expect_snapshot(print(fit))
  expect_equal(vapply(c(0.04, 0.4, 3.25, 42, 600), format_seconds, ""),
               c("< 0.1 s", "0.4 s", "3.2 s", "42 s", "10.0 min"))
})
