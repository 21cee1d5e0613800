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
  dir <- saved_fit_dir(fit)
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

test_that("a card this version doesn't know is refused; another version's is noted once", {
  skip_if_no_engine()
  fit <- small_fit()
  dir <- saved_fit_dir(fit)
  card_file <- file.path(dir, "tidyvision.json")
  original <- jsonlite::read_json(card_file)
  with_card <- function(change) {
    card <- original
    card <- change(card)
    jsonlite::write_json(card, card_file, auto_unbox = TRUE, digits = NA, null = "null")
  }
  with_card(function(card) { card$format_version <- 2L; card$versions$tidyvision <- "9.0.0"; card })
  expect_error(load_classifier(dir), "format 2.*newer tidyvision \\(9.0.0\\)", class = "tidyvision_error_card_unknown")
  with_card(function(card) { card$preprocessing$normalize <- "zero_one"; card })
  expect_error(load_classifier(dir), "normalize = zero_one", class = "tidyvision_error_card_unknown")
  with_card(function(card) { card$preprocessing$resize <- "letterbox"; card })
  expect_error(load_classifier(dir), "resize = letterbox", class = "tidyvision_error_card_unknown")
  with_card(function(card) { card$versions$tidyvision <- "0.0.9"; card })
  expect_message(loaded <- load_classifier(dir), "saved by tidyvision 0.0.9", class = "tidyvision_message_version")
  expect_no_message(load_classifier(dir))  # once a session
  expect_equal(predict(loaded, separable_images()$path[1:2], type = "prob"),
               predict(fit, separable_images()$path[1:2], type = "prob"))
})

test_that("an existing folder is not overwritten without overwrite = TRUE", {
  skip_if_no_engine()
  fit <- small_fit()
  dir <- saved_fit_dir(fit)
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
  dir <- saved_fit_dir(fit)
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
  dir <- saved_fit_dir(fit)
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

test_that("overwrite = TRUE replaces a saved classifier, never a folder of the user's", {
  skip_if_no_engine()
  fit <- small_fit()
  root <- withr::local_tempdir()
  thesis <- file.path(root, "thesis")
  dir.create(thesis)
  writeLines("\\chapter{Introduction}", file.path(thesis, "chapter1.tex"))
  expect_error(save_classifier(fit, thesis, overwrite = TRUE), "chapter1.tex",
               class = "tidyvision_error_not_a_model_folder")
  expect_true(file.exists(file.path(thesis, "chapter1.tex")))
  # a saved classifier with a file of the user's beside it is not replaced either
  model <- file.path(root, "model")
  save_classifier(fit, model)
  writeLines("notes", file.path(model, "notes.txt"))
  expect_error(save_classifier(fit, model, overwrite = TRUE), "notes.txt",
               class = "tidyvision_error_not_a_model_folder")
  expect_true(file.exists(file.path(model, "notes.txt")))
  # nor a folder whose card isn't tidyvision's
  other <- file.path(root, "other")
  dir.create(other)
  writeLines('{"name": "my project"}', file.path(other, "tidyvision.json"))
  file.create(file.path(other, "model.safetensors"))
  expect_error(save_classifier(fit, other, overwrite = TRUE), class = "tidyvision_error_not_a_model_folder")
  expect_equal(readLines(file.path(other, "tidyvision.json")), '{"name": "my project"}')
  # a file where the folder would go
  file <- file.path(root, "results.csv")
  writeLines("a,b", file)
  expect_error(save_classifier(fit, file, overwrite = TRUE), class = "tidyvision_error_not_a_directory")
  expect_equal(readLines(file), "a,b")
  # an empty folder, and a saved classifier, are replaced
  empty <- file.path(root, "empty")
  dir.create(empty)
  save_classifier(fit, empty, overwrite = TRUE)
  expect_setequal(list.files(empty), c("model.safetensors", "tidyvision.json"))
  save_classifier(fit, empty, overwrite = TRUE)
  expect_s3_class(load_classifier(empty), "tv_classifier")
})

test_that("save_classifier() and load_classifier() say what is wrong with `dir`", {
  fit <- structure(list(weights = tempfile()), class = "tv_classifier")
  file.create(fit$weights)
  for (bad in list(NULL, NA, 42, c("a", "b"), "")) {
    expect_error(save_classifier(fit, bad), "dir", class = "tidyvision_error_bad_argument")
    expect_error(load_classifier(bad), "dir", class = "tidyvision_error_bad_argument")
  }
  expect_error(load_classifier(file.path(tempdir(), "no-such-model")), class = "tidyvision_error_path_not_found")
  expect_error(load_classifier(fit$weights), class = "tidyvision_error_not_a_directory")
})

test_that("a damaged card or weights file is named, with what to do", {
  skip_if_no_engine()
  fit <- small_fit()
  dir <- saved_fit_dir(fit)
  card <- file.path(dir, "tidyvision.json")
  text <- readLines(card)
  writeLines(text[seq_len(length(text) %/% 2)], card)  # cut short
  expect_error(load_classifier(dir), "tidyvision.json", class = "tidyvision_error_card_unreadable")
  writeLines('{"format": "something else"}', card)
  expect_error(load_classifier(dir), class = "tidyvision_error_card_unreadable")
  # weights cut short after training (the fit's own file): predict() names the file
  broken <- fit
  broken$weights <- tempfile(fileext = ".safetensors")
  writeBin(readBin(fit$weights, "raw", 4000), broken$weights)
  expect_error(predict(broken, separable_images()$path[1], verbose = FALSE), basename(broken$weights),
               class = "tidyvision_error_weights_unreadable")
  writeBin(charToRaw("not a weights file at all"), broken$weights)
  expect_error(predict(broken, separable_images()$path[1], verbose = FALSE),
               class = "tidyvision_error_weights_unreadable")
})

# Temporaries of saves: what a killed save leaves, and what a running one holds.
save_temps <- function(folder) {
  list.files(folder, pattern = "^[.]tidyvision-(save|old|csv)-", all.files = TRUE, full.names = TRUE)
}

test_that("a save cleans up after a killed save, but not after one still running", {
  skip_if_no_engine()
  skip_on_os("windows")
  fit <- small_fit()
  root <- withr::local_tempdir()
  rds <- file.path(root, "fit.rds")
  saveRDS(fit, rds)
  # A child R process that stops inside save_classifier(), its weights copied.
  child <- processx::process$new(file.path(R.home("bin"), "Rscript"), c("-e", sprintf(
    'pkgload::load_all(%s, quiet = TRUE, export_all = FALSE)
     trace(tidyvision:::classifier_card, quote(Sys.sleep(600)), print = FALSE, where = asNamespace("tidyvision"))
     tidyvision::save_classifier(readRDS(%s), %s)',
    deparse(normalizePath(testthat::test_path("..", ".."))), deparse(rds), deparse(file.path(root, "child")))),
    stdout = "|", stderr = "2>&1")
  withr::defer(if (child$is_alive()) child$kill())
  size <- file.size(fit$weights)
  deadline <- Sys.time() + 120
  repeat {
    temp <- save_temps(root)
    if (length(temp) == 1 && isTRUE(file.size(file.path(temp, "model.safetensors")) == size)) break
    if (!child$is_alive() || Sys.time() > deadline) fail(paste("The child save never started:", child$read_all_output()))
  }
  expect_match(basename(temp), paste0("-", child$get_pid(), "@"))
  # A crash's leftovers from before the pid was in the name: one old, one just written.
  old <- file.path(root, ".tidyvision-csv-1a2b3c.csv")
  writeLines("path", old)
  Sys.setFileTime(old, Sys.time() - 2 * 3600)
  recent <- file.path(root, ".tidyvision-save-4d5e6f")
  dir.create(recent)
  writeLines("a user's file", file.path(root, ".tidyvision-notes"))
  save_classifier(fit, file.path(root, "a"))
  expect_setequal(save_temps(root), c(temp, recent))  # the running save's is kept; the old one went
  expect_true(file.exists(file.path(root, ".tidyvision-notes")))
  child$kill()  # SIGKILL: nothing in the child cleans up
  child$wait()
  expect_true(dir.exists(temp))
  save_classifier(fit, file.path(root, "b"))
  expect_setequal(save_temps(root), recent)
  expect_false(file.exists(file.path(root, "child")))
  expect_s3_class(load_classifier(file.path(root, "b")), "tv_classifier")
})

test_that("the card keeps the fit's train and val images by content; an older card without them loads", {
  skip_if_no_engine()
  fit <- small_fit()
  dir <- file.path(withr::local_tempdir(), "model")
  save_classifier(fit, dir)
  card <- jsonlite::fromJSON(file.path(dir, "tidyvision.json"))
  expect_equal(nrow(card$seen_images), fit$n_train + fit$n_val)
  expect_equal(as.vector(table(card$seen_images$split)), c(fit$n_train, fit$n_val))
  expect_equal(load_classifier(dir)$seen, fit$seen)
  imgs <- separable_images()
  expect_setequal(fit$seen$path, imgs$path[imgs$split %in% c("train", "val")])

  card <- jsonlite::read_json(file.path(dir, "tidyvision.json"))
  card$seen_images <- NULL  # as tidyvision wrote cards before it kept them
  jsonlite::write_json(card, file.path(dir, "tidyvision.json"), auto_unbox = TRUE, digits = NA, null = "null")
  old <- load_classifier(dir)
  expect_null(old$seen)
  out <- file.path(withr::local_tempdir(), "old-card.sqlite")
  classify_folder(old, imgs$path[1:3], out, verbose = FALSE)
  expect_equal(read_corpus(out)$trained, c(NA, NA, NA))  # unknown, not "not trained"
})
