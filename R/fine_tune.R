#' Fine-tune a pretrained CNN on labelled images
#'
#' The transfer learning of Webb Williams, Casas & Wilkerson (2020, section
#' 7): take a network pretrained on ImageNet, replace its last layer with one
#' output per class (initialised N(0, 0.01)), and train with SGD and momentum
#' under a step learning-rate schedule. Trains on `split == "train"`, picks
#' the epoch with the best validation accuracy (ties: lower validation loss)
#' on `split == "val"` and keeps its weights. Rows with `split == "test"` are
#' never read. Without a split (no `split` column, or all `NA`), the images
#' are split 80/20 stratified by label with `seed`.
#'
#' Preprocessing follows the book: training images get a random resized crop
#' and a horizontal flip when `augment = TRUE`; validation and prediction use
#' `resize`, then ImageNet normalisation. Each image is decoded once per fit
#' (random crops are drawn from a copy at up to twice `image_size`); with
#' `precision = "auto"` on CPUs with bf16 support (AMX, AVX-512 BF16),
#' validation runs in bf16 autocast with channels_last, and so does training
#' from `batch_size = 16` up (smaller batches train faster in fp32
#' channels_last).
#' `train_layers = "head"` freezes the pretrained body, runs it once over the
#' images and trains only the last layer on the cached features (no
#' augmentation): seconds instead of minutes, and often as accurate on small
#' sets.
#'
#' @param images A tibble from [image_files()] (columns `path`, a label
#'   column and optionally `split`). Unreadable rows are skipped with a
#'   warning.
#' @param label The column holding the class labels.
#' @param backbone `"efficientnet_lite0"` (ImageNet weights installed with
#'   the Python dependencies, works offline) or a torchvision model name such
#'   as `"resnet18"` or `"resnet50"` (weights from torchvision's cache,
#'   downloaded on a connected machine, or from `weights`).
#' @param epochs Number of passes over the training images.
#' @param learning_rate,momentum SGD's learning rate and momentum.
#' @param batch_size Images per gradient step.
#' @param step_size,gamma The learning rate is multiplied by `gamma` every
#'   `step_size` epochs.
#' @param train_layers `"all"` fine-tunes every layer; `"head"` only the new
#'   last layer.
#' @param weights Optional path to a state dict of the backbone's ImageNet
#'   model (`.safetensors`, or `.pth` read with `weights_only = TRUE`).
#' @param resize How validation and new images become square:
#'   `"rescale_crop"` (shorter side to 256, centre crop 224, the book's
#'   default), `"squish"`, `"crop"` or `"pad"`. See [plot_resizing()].
#' @param image_size Side of the square network input, in pixels.
#' @param augment Random crops and flips for training images.
#' @param seed Seed for the split, the new layer, shuffling and augmentation.
#'   Same seed, data and machine: same history and predictions.
#' @param device `"auto"` (cuda, then mps, then cpu), `"cpu"`, `"cuda"` or
#'   `"mps"`.
#' @param precision `"auto"` (bf16 where the CPU runs it fast, fp16/bf16 on
#'   GPUs, else fp32), `"bf16"`, `"fp16"` or `"fp32"`. On a CPU, `"auto"`
#'   trains batches smaller than 16 in fp32 (with channels_last), which
#'   measured as fast as bf16 there; validation, feature extraction and
#'   prediction always use bf16 where it is fast.
#' @param verbose Show a progress bar.
#' @return A `tv_classifier`: use [predict()][predict.tv_classifier],
#'   [history()], `autoplot()` and [save_classifier()].
#' @export
#' @examplesIf tv_available()
#' imgs <- image_files(system.file("extdata", "images", package = "tidyvision"))
#' fit <- fine_tune(imgs, epochs = 3, train_layers = "head")
#' fit
#' history(fit)
fine_tune <- function(images, label = label, backbone = "efficientnet_lite0",
                      epochs = 10, learning_rate = 0.001, momentum = 0.9,
                      batch_size = 4, step_size = 7, gamma = 0.1,
                      train_layers = c("all", "head"), weights = NULL,
                      resize = c("rescale_crop", "squish", "crop", "pad"),
                      image_size = 224, augment = TRUE, seed = 1,
                      device = "auto", precision = "auto", verbose = interactive()) {
  train_layers <- rlang::arg_match(train_layers)
  resize <- rlang::arg_match(resize)
  check_count(epochs); check_count(batch_size); check_count(step_size); check_count(image_size)
  check_number(learning_rate); check_number(momentum); check_number(gamma)
  check_flag(augment)
  if (!is.null(weights)) weights <- normalizePath(weights, mustWork = FALSE)
  label_col <- label_name(images, rlang::enquo(label))
  data <- training_rows(images, label_col, seed)
  classes <- class_levels(data$train[[label_col]])
  check_val_labels(data$val[[label_col]], classes, label_col)

  settings <- list(
    backbone = backbone, epochs = as.integer(epochs), learning_rate = learning_rate,
    momentum = momentum, batch_size = as.integer(batch_size), step_size = as.integer(step_size),
    gamma = gamma, train_layers = train_layers, weights = weights, resize = resize,
    image_size = as.integer(image_size), augment = augment, seed = as.integer(seed),
    device = device, precision = precision
  )
  weights_path <- tempfile("tidyvision-", fileext = ".safetensors")
  res <- rlang::exec(engine_call, "fine_tune.fit",
    as.list(data$train$path), as.list(match(data$train[[label_col]], classes) - 1L),
    as.list(data$val$path), as.list(match(data$val[[label_col]], classes) - 1L),
    length(classes), weights_path,
    progress = progress_callback(verbose, paste("Fine-tuning", backbone)),
    !!!settings
  )
  warn_skipped(col_of(res$skipped_path), col_of(res$skipped_problem))
  new_classifier(res, classes, label_col, settings, weights_path)
}

new_classifier <- function(res, classes, label_col, settings, weights_path) {
  h <- res$history
  history <- tibble::tibble(
    epoch = col_of(h$epoch, "int"), split = col_of(h$split), loss = col_of(h$loss, "dbl"),
    accuracy = col_of(h$accuracy, "dbl"), precision = col_of(h$precision, "dbl"),
    recall = col_of(h$recall, "dbl"), f1 = col_of(h$f1, "dbl"),
    learning_rate = col_of(h$learning_rate, "dbl"), seconds = col_of(h$seconds, "dbl")
  )
  settings$weights <- NULL
  structure(list(
    classes = classes, label = label_col, backbone = settings$backbone,
    settings = settings, history = history, best_epoch = as.integer(res$best_epoch),
    weights = weights_path, sha256 = engine_call("backbones.weights_digest", weights_path),
    fingerprint = res$fingerprint, n_train = res$n_train, n_val = res$n_val,
    device = res$device, precision = res$precision, train_precision = res$train_precision,
    seconds = res$seconds
  ), class = "tv_classifier")
}

# Train / val rows: from `split`, or an 80/20 stratified split by `seed`.
training_rows <- function(images, label_col, seed, call = caller_env()) {
  if (!"path" %in% names(images)) {
    tv_abort("{.arg images} has no {.field path} column; make it with {.fn image_files}.",
             class = "missing_column", call = call)
  }
  images$path <- image_paths(images, "images", call)
  if ("readable" %in% names(images)) images <- images[images$readable %in% TRUE, , drop = FALSE]
  images <- images[!is.na(images[[label_col]]), , drop = FALSE]
  if (!"split" %in% names(images) || all(is.na(images$split))) {
    images <- split_images(images, prop = c(train = 0.8, val = 0.2),
                           strata = tidyselect::all_of(label_col), seed = seed)
  }
  if (anyNA(images$split)) {
    tv_warn("{sum(is.na(images$split))} image{?s} with no {.field split} {?is/are} not used.",
            class = "split_missing")
  }
  out <- list(train = images[images$split %in% "train", , drop = FALSE],
              val = images[images$split %in% "val", , drop = FALSE])
  if (nrow(out$train) == 0 || nrow(out$val) == 0) {
    tv_abort(c("Fine-tuning needs images with {.code split == \"train\"} and {.code split == \"val\"}.",
               i = "Found {nrow(out$train)} training and {nrow(out$val)} validation images.",
               i = "Use {.fn split_images} or train/ and val/ folders."),
             class = "no_validation", call = call)
  }
  out
}

label_name <- function(data, label, call = caller_env()) {
  name <- tryCatch(
    names(tidyselect::eval_select(label, data, allow_rename = FALSE)),
    error = function(e) {
      tv_abort(c("Can't find the label column {.code {rlang::as_label(label)}} in {.arg images}.",
                 i = "Columns: {.field {names(data)}}."), class = "missing_column", call = call)
    }
  )
  if (length(name) != 1) {
    tv_abort("{.arg label} must select exactly one column.", class = "bad_argument", call = call)
  }
  name
}

class_levels <- function(x, call = caller_env()) {
  classes <- if (is.factor(x)) levels(droplevels(x)) else sort(unique(as.character(x)))
  if (length(classes) < 2) {
    tv_abort(c("The training images have {length(classes)} class{?es}; a classifier needs at least 2.",
               i = "Check the label column and the split."), class = "too_few_classes", call = call)
  }
  classes
}

check_val_labels <- function(x, classes, label_col, call = caller_env()) {
  unknown <- setdiff(unique(as.character(x)), classes)
  if (length(unknown)) {
    tv_abort(c("Validation images have {cli::qty(length(unknown))}label{?s} never seen in training: {.val {unknown}}.",
               i = "Every class in {.field {label_col}} needs training images."),
             class = "unknown_class", call = call)
  }
}

warn_skipped <- function(paths, problems) {
  if (length(paths) == 0) return(invisible())
  tv_warn(c("{length(paths)} image{?s} can't be read and {?was/were} skipped:",
            bullets_of(paste0(paths, ": ", problems))), class = "unreadable")
}

check_count <- function(x, arg = rlang::caller_arg(x), call = caller_env()) {
  check_scalar(x, function(v) v >= 1 && v == round(v), "a whole number >= 1", arg, call)
}

check_number <- function(x, arg = rlang::caller_arg(x), call = caller_env()) {
  check_scalar(x, function(v) v >= 0, "a number >= 0", arg, call)
}

#' Training history of a classifier
#'
#' @param x A `tv_classifier` from [fine_tune()] or a `tv_detector` from
#'   [train_detector()].
#' @param ... Unused.
#' @return A tibble with one row per epoch and split (`train`, `val`):
#'   `epoch, split, loss, accuracy, precision, recall, f1, learning_rate,
#'   seconds`. Precision, recall and F1 are for the first class with two
#'   classes, macro-averaged with more. Training rows are measured on the
#'   augmented batches as they were trained.
#' @export
#' @examplesIf tv_available()
#' imgs <- image_files(system.file("extdata", "images", package = "tidyvision"))
#' history(fine_tune(imgs, epochs = 2, train_layers = "head"))
history <- function(x, ...) UseMethod("history")

#' @export
history.tv_classifier <- function(x, ...) x$history

#' @export
format.tv_classifier <- function(x, ...) {
  best <- best_val_row(x)
  c(
    paste0("Backbone: ", x$backbone, " (", x$settings$train_layers, " layers, ",
           x$device, ", ", precision_label(x), ")"),
    paste0("Classes:  ", paste(x$classes, collapse = ", ")),
    paste0("Trained:  ", x$n_train, " images, validated on ", x$n_val, "; ",
           max(x$history$epoch), " epochs in ", round(sum(x$history$seconds) / 2), " s"),
    sprintf("Best epoch %d: val accuracy %.3f, precision %.3f, recall %.3f, F1 %.3f, loss %.3f",
            x$best_epoch, best$accuracy, best$precision, best$recall, best$f1, best$loss)
  )
}

# The history row of the kept epoch on the validation set.
best_val_row <- function(fit) {
  h <- fit$history
  h[h$epoch == fit$best_epoch & h$split == "val", ]
}

# "bf16", or "fp32 training, bf16 inference" when small batches trained in fp32.
precision_label <- function(x) {
  train <- x$train_precision
  if (is.null(train) || identical(train, x$precision)) return(x$precision)
  paste0(train, " training, ", x$precision, " inference")
}

#' @export
print.tv_classifier <- function(x, ...) {
  print_titled(x, "tidyvision classifier")
}

#' Plot a classifier's training history
#'
#' Loss and accuracy by epoch, train against validation, with the best epoch
#' marked.
#'
#' @param object A `tv_classifier`.
#' @param ... Unused.
#' @return A ggplot.
#' @export
#' @examplesIf tv_available()
#' imgs <- image_files(system.file("extdata", "images", package = "tidyvision"))
#' ggplot2::autoplot(fine_tune(imgs, epochs = 3, train_layers = "head"))
autoplot.tv_classifier <- function(object, ...) {
  h <- object$history
  long <- rbind(
    data.frame(epoch = h$epoch, split = h$split, metric = "loss", value = h$loss),
    data.frame(epoch = h$epoch, split = h$split, metric = "accuracy", value = h$accuracy)
  )
  ggplot2::ggplot(long, ggplot2::aes(.data$epoch, .data$value, colour = .data$split)) +
    ggplot2::geom_vline(xintercept = object$best_epoch, linetype = "dashed", colour = "grey60") +
    ggplot2::geom_line() +
    ggplot2::geom_point() +
    ggplot2::facet_wrap(~metric, scales = "free_y") +
    ggplot2::labs(x = "Epoch", y = NULL, colour = NULL,
                  title = paste0(object$backbone, ": best epoch ", object$best_epoch, " (dashed)")) +
    ggplot2::theme_minimal()
}
