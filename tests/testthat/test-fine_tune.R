test_that("fine_tune() learns a separable set and keeps the best val epoch", {
  skip_if_no_engine()
  fit <- small_fit()
  expect_s3_class(fit, "tv_classifier")
  expect_equal(fit$classes, c("blue", "red"))
  h <- fit_history(fit)
  expect_named(h, c("epoch", "split", "loss", "accuracy", "precision", "recall", "f1",
                    "learning_rate", "seconds"))
  expect_equal(nrow(h), 6)
  val <- h[h$split == "val", ]
  best <- val[order(-val$accuracy, val$loss), ][1, ]
  expect_equal(fit$best_epoch, best$epoch)
  expect_gt(max(val$accuracy), 0.75)
  expect_equal(c(fit$n_train, fit$n_val), c(24L, 12L))
  expect_true(all(h$learning_rate == 0.01))
  expect_output(print(fit), "Best epoch")
  # The print names the precision training actually ran in.
  expect_true(fit$train_precision %in% c("fp32", "bf16"))
  expect_output(print(fit), precision_label(fit), fixed = TRUE)
  expect_equal(precision_label(list(precision = "bf16", train_precision = "fp32")),
               "fp32 training, bf16 inference")
  expect_equal(precision_label(list(precision = "fp32", train_precision = "fp32")), "fp32")
  expect_s3_class(autoplot(fit), "ggplot")
})

test_that("test rows are never read, for training or selection", {
  skip_if_no_engine()
  imgs <- separable_images()
  broken <- imgs
  test_rows <- broken$split == "test"
  broken$path[test_rows] <- file.path(tempdir(), "does-not-exist.jpg")
  fit <- fine_tune(broken, epochs = 1, image_size = 64, train_layers = "head") |> expect_no_warning()
  expect_equal(c(fit$n_train, fit$n_val), c(24L, 12L))
  fit2 <- fine_tune(imgs[!test_rows, ], epochs = 1, image_size = 64, train_layers = "head")
  expect_equal(fit$fingerprint, fit2$fingerprint)
  expect_equal(fit_history(fit)$loss, fit_history(fit2)$loss)
})

test_that("same seed, same data: identical history and predictions", {
  skip_if_no_engine()
  imgs <- separable_images()
  args <- list(imgs, epochs = 2, image_size = 64, batch_size = 8, seed = 7)
  a <- do.call(fine_tune, args)
  b <- do.call(fine_tune, args)
  drop_time <- function(h) h[setdiff(names(h), "seconds")]
  expect_identical(drop_time(fit_history(a)), drop_time(fit_history(b)))
  expect_identical(predict(a, imgs, type = "prob"), predict(b, imgs, type = "prob"))
  c <- do.call(fine_tune, modifyList(args, list(seed = 8)))
  expect_false(identical(drop_time(fit_history(a)), drop_time(fit_history(c))))
})

test_that("head-only training trains the head and leaves the body as pretrained", {
  skip_if_no_engine()
  fit <- fine_tune(separable_images(), epochs = 5, learning_rate = 0.01, image_size = 64,
                   train_layers = "head")
  expect_gt(max(fit_history(fit)$accuracy[fit_history(fit)$split == "val"]), 0.75)
  expect_equal(fit$settings$train_layers, "head")
  expect_equal(fixtures()$body_change(fit$weights, fit$backbone, 2L), 0)
  # All layers: the body moves.
  expect_gt(fixtures()$body_change(small_fit()$weights, small_fit()$backbone, 2L), 1e-4)
})

test_that("the kept weights are the best val epoch's, not the last one's", {
  skip_if_no_engine()
  imgs <- separable_images()
  # A learning rate that grows tenfold each epoch: the first epoch is good,
  # the later ones diverge, so keeping the last would be visibly worse.
  fit <- fine_tune(imgs, epochs = 4, learning_rate = 0.01, step_size = 1, gamma = 10,
                   image_size = 64, batch_size = 8, seed = 3)
  h <- fit_history(fit)
  val_h <- h[h$split == "val", ]
  best <- val_h[val_h$epoch == fit$best_epoch, ]
  expect_equal(best$accuracy, max(val_h$accuracy))
  expect_lt(val_h$accuracy[val_h$epoch == 4], best$accuracy)
  val <- imgs[imgs$split == "val", ]
  p <- augment(fit, val)
  expect_equal(mean(p$.pred_class == p$label), best$accuracy)
  truth_prob <- ifelse(p$label == "blue", p$.pred_blue, p$.pred_red)
  expect_equal(mean(-log(truth_prob)), best$loss, tolerance = 1e-3)
})

test_that("without a split, fine_tune() splits 80/20 by label", {
  skip_if_no_engine()
  imgs <- separable_images()
  imgs <- imgs[imgs$split != "test", ]
  imgs$split <- NULL
  fit <- fine_tune(imgs, epochs = 1, image_size = 64, train_layers = "head", seed = 2)
  expect_equal(fit$n_train + fit$n_val, nrow(imgs))
  expect_equal(fit$n_val, 8L)
})

test_that("a torchvision backbone trains from a local weights file", {
  skip_if_no_engine()
  pth <- withr::local_tempfile(fileext = ".pth")
  reticulate::py_run_string(sprintf(
    "import torch, torchvision; torch.manual_seed(0); torch.save(torchvision.models.resnet18().state_dict(), %s)",
    encodeString(pth, quote = "'")))
  fit <- fine_tune(separable_images(), backbone = "resnet18", weights = pth, epochs = 1,
                   image_size = 64, train_layers = "head")
  expect_equal(fit$backbone, "resnet18")
  expect_equal(nrow(predict(fit, separable_images()[1:3, ])), 3)
})

test_that("torchvision weights are found in torchvision's cache", {
  skip_if_no_engine()
  home <- withr::local_tempdir()
  cache_file <- file.path(home, "hub", "checkpoints", "resnet18-f37072fd.pth")
  dir.create(dirname(cache_file), recursive = TRUE)
  reticulate::py_run_string(sprintf(paste(
    "import torch, torchvision, os",
    "torch.hub.set_dir(%s)",
    "torch.save(torchvision.models.resnet18().state_dict(), %s)", sep = "\n"),
    encodeString(file.path(home, "hub"), quote = "'"), encodeString(cache_file, quote = "'")))
  on.exit(reticulate::py_run_string("import torch, os; torch.hub.set_dir(os.path.join(os.path.expanduser('~'), '.cache', 'torch', 'hub'))"))
  expect_true("resnet18" %in% tv_config()$backbones_offline)
  fit <- fine_tune(separable_images(), backbone = "resnet18", epochs = 1, image_size = 64,
                   train_layers = "head")
  expect_equal(fit$backbone, "resnet18")
})

test_that("missing or unsafe weights are classed errors", {
  skip_if_no_engine()
  imgs <- separable_images()
  expect_error(fine_tune(imgs, backbone = "resnet18", weights = "/no/such/weights.pth", epochs = 1),
               class = "tidyvision_error_weights_missing")
  pickle <- withr::local_tempfile(fileext = ".pth")
  reticulate::py_run_string(sprintf(
    "import torch; torch.save({'model': object()}, %s)", encodeString(pickle, quote = "'")))
  expect_error(fine_tune(imgs, backbone = "resnet18", weights = pickle, epochs = 1),
               class = "tidyvision_error_weights_unsafe")
  expect_error(fine_tune(imgs, backbone = "no_such_net", epochs = 1),
               class = "tidyvision_error_unknown_backbone")
})

test_that("bad arguments are classed errors", {
  imgs <- tibble::tibble(path = c("a.jpg", "b.jpg"), label = c("x", "y"), split = c("train", "val"))
  expect_error(fine_tune(imgs, label = nope), class = "tidyvision_error_missing_column")
  expect_error(fine_tune(imgs, epochs = 0), class = "tidyvision_error_bad_argument")
  expect_error(fine_tune(imgs, resize = "zoom"), class = "rlang_error")
  one_class <- tibble::tibble(path = c("a.jpg", "b.jpg"), label = "x", split = c("train", "val"))
  expect_error(fine_tune(one_class), class = "tidyvision_error_too_few_classes")
  imgs$split <- c("train", "train")
  expect_error(fine_tune(imgs), class = "tidyvision_error_no_validation")
  expect_snapshot(fine_tune(imgs), error = TRUE)
})

test_that("fine_tune() finishes with the progress bar on, and the bar shows each phase", {
  skip_if_no_engine()
  withr::local_options(cli.progress_show_after = 0, cli.dynamic = FALSE)
  imgs <- separable_images()
  # image_size 72, used by no other test: the engine's memo of decoded images
  # (which skips the decoding bar) can't hold these
  expect_snapshot(
    all <- fine_tune(imgs, epochs = 1, image_size = 72, seed = 4, verbose = TRUE),
    transform = scrub_progress
  )
  expect_s3_class(all, "tv_classifier")
  expect_equal(all$n_train, 24L)
  expect_snapshot(
    head <- fine_tune(imgs, epochs = 2, image_size = 72, seed = 5, train_layers = "head",
                      verbose = TRUE),
    transform = scrub_progress
  )
  expect_equal(nrow(fit_history(head)), 4)
})

test_that("a class without validation images is named by print() and fit_history()", {
  skip_if_no_engine()
  imgs <- separable_images()
  imgs <- imgs[!(imgs$split == "val" & imgs$label == "red"), ]
  fit <- fine_tune(imgs, epochs = 1, image_size = 64, train_layers = "head")
  expect_equal(fit$val_counts, c(blue = 6L, red = 0L))
  expect_warning(expect_output(print(fit), "Best epoch"), class = "tidyvision_warning_class_not_validated")
  expect_warning(fit_history(fit), "red", class = "tidyvision_warning_class_not_validated")
  expect_no_warning(fit_history(small_fit()))
})

test_that("missing and blank labels are dropped with a warning; split aliases are understood", {
  skip_if_no_engine()
  imgs <- separable_images()
  imgs <- imgs[imgs$split != "test", ]
  lab <- imgs
  lab$label[imgs$split == "train"][1:3] <- c(NA, "", "")
  expect_warning(fit <- fine_tune(lab, epochs = 1, image_size = 64, train_layers = "head"),
                 "3 images with no label", class = "tidyvision_warning_missing_labels")
  expect_equal(fit$classes, c("blue", "red"))
  expect_equal(fit$n_train, 21L)
  spelled <- imgs
  spelled$split <- c(train = "Training", val = "validation")[imgs$split]
  fit2 <- fine_tune(spelled, epochs = 1, image_size = 64, train_layers = "head") |> expect_no_warning()
  expect_equal(c(fit2$n_train, fit2$n_val), c(24L, 12L))
})

test_that("a flat folder without labels says how to give labels", {
  skip_if_no_engine()
  flat <- withr::local_tempdir()
  file.copy(separable_images()$path[1:6], file.path(flat, paste0(1:6, ".jpg")))
  imgs <- image_files(flat)
  expect_true(all(is.na(imgs$label)))
  expect_error(fine_tune(imgs, epochs = 1), class = "tidyvision_error_missing_labels")
  expect_snapshot(fine_tune(imgs, epochs = 1), error = TRUE)
})

test_that("balanced class weights change the training loss and are recorded", {
  skip_if_no_engine()
  imgs <- separable_images()
  drop <- which(imgs$split == "train" & imgs$label == "red")[1:9]
  imbalanced <- imgs[-drop, ]  # 12 blue and 3 red training images
  args <- list(imbalanced, epochs = 2, image_size = 64, train_layers = "head", seed = 2)
  none <- do.call(fine_tune, args)
  balanced <- do.call(fine_tune, c(args, class_weights = "balanced"))
  expect_equal(balanced$settings$class_weights, "balanced")
  train_loss <- function(f) fit_history(f)$loss[fit_history(f)$split == "train"]
  expect_false(isTRUE(all.equal(train_loss(none), train_loss(balanced))))
  expect_output(print(balanced), "balanced class weights")
  dir <- file.path(withr::local_tempdir(), "model")
  save_classifier(balanced, dir)
  card <- jsonlite::fromJSON(file.path(dir, "tidyvision.json"))
  expect_equal(card$hyperparameters$class_weights, "balanced")
  expect_output(print(load_classifier(dir)), "balanced class weights")
})

test_that("fine_tune() rejects what it can't use, saying what to do", {
  expect_error(fine_tune(c("a.jpg", "b.jpg")), class = "tidyvision_error_bad_argument")
  expect_snapshot(fine_tune(c("a.jpg", "b.jpg")), error = TRUE)
  imgs <- tibble::tibble(path = c("a.jpg", "b.jpg"), label = c("x", "y"), split = c("train", "val"))
  expect_error(fine_tune(imgs, lr = 0.1), class = "tidyvision_error_bad_argument")
  expect_snapshot(fine_tune(imgs, learn_rate = 0.1), error = TRUE)
  expect_error(tune_grid(imgs, grid = list(momentum = 0.9), learn_rate = 0.1),
               "learn_rate", class = "tidyvision_error_bad_argument")
  expect_equal(normalize_split(c("train", "Training", "VAL", "valid", "validation", "testing", "x", NA)),
               c("train", "train", "val", "val", "val", "test", NA, NA))
})

test_that("autoplot() of a fit has whole-epoch ticks and titled axes and legend", {
  h <- tibble::tibble(epoch = rep(1:3, each = 2), split = rep(c("train", "val"), 3),
                      loss = c(0.9, 0.8, 0.5, 0.6, 0.3, 0.5), accuracy = c(0.5, 0.6, 0.8, 0.7, 0.9, 0.8),
                      precision = 0.5, recall = 0.5, f1 = 0.5, learning_rate = 0.01, seconds = 1)
  fit <- new_classifier(
    classes = c("a", "b"), label = "label", history = h, best_epoch = 2,
    settings = list(backbone = "efficientnet_lite0", train_layers = "head"), weights = "w",
    sha256 = "0", fingerprint = "0", n_train = 8, n_val = 4, val_counts = c(2, 2),
    device = "cpu", precision = "fp32"
  )
  p <- autoplot(fit)
  built <- ggplot2::ggplot_build(p)
  breaks <- built$layout$panel_params[[1]]$x$breaks
  expect_equal(breaks[!is.na(breaks)], 1:3)
  expect_equal(p$labels$colour, "Split")
  expect_equal(levels(p$data$split), c("Training", "Validation"))
  # the facet strips sit outside the y axes, as their titles
  expect_equal(p$facet$params$strip.position, "left")
  expect_equal(levels(p$data$metric), c("Loss", "Accuracy"))
})

test_that("multi-label codes are refused, not trained as classes of their own", {
  skip_if_no_engine()
  imgs <- separable_images()
  imgs$label <- as.character(imgs$label)
  imgs$label[which(imgs$split == "train")[c(1, 5)]] <- "blue|red"  # what read_labels() gives for mode = "multi"
  err <- expect_error(fine_tune(imgs, epochs = 1, image_size = 32, train_layers = "head"),
                      class = "tidyvision_error_multi_label")
  expect_match(conditionMessage(err), "blue|red", fixed = TRUE)
  expect_match(conditionMessage(err), "mode = \"multi\"", fixed = TRUE)
})

test_that("while knitting, progress is one line per epoch on the console, not in the document", {
  skip_if_no_engine()
  skip_if_not(installed_for_children(), "tidyvision is not installed for child processes")
  dir <- withr::local_tempdir()
  writeLines(c("```{r}", "library(tidyvision)",
               "fit <- fine_tune(image_files(Sys.getenv('TV_IMAGES')), epochs = 2, image_size = 32,",
               "                 batch_size = 8, train_layers = 'head')", "fit$best_epoch", "```"),
             file.path(dir, "knit.Rmd"))
  err <- file.path(dir, "stderr.txt")
  callr::r(function(dir, images) {
    Sys.setenv(TV_IMAGES = images)
    knitr::knit(file.path(dir, "knit.Rmd"), file.path(dir, "knit.md"), quiet = TRUE)
  }, list(dir, dirname(dirname(dirname(separable_images()$path[1])))), stderr = err,
  env = c(callr::rcmd_safe_env(), R_LIBS = paste(.libPaths(), collapse = ":")))
  console <- readLines(err)
  epochs <- grep("epoch [0-9] of 2, validation accuracy", console, value = TRUE)
  expect_length(epochs, 2)
  expect_match(epochs[1], "^Fine-tuning efficientnet_lite0: .*epoch 1 of 2")
  output <- grep("^## ", readLines(file.path(dir, "knit.md")), value = TRUE)
  expect_equal(output, "## [1] 2")
})
