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
#' (random crops are drawn from a copy at up to twice `image_size`), and
#' the passes run with channels_last. With `precision = "auto"` on a CPU
#' where torch runs bf16 kernels, a few steps of each precision are timed
#' once per machine, backbone, image size and batch size (a second or two,
#' kept in the user cache; [tv_config()] shows them) and bf16 autocast is
#' used where it is at least 1.1x faster: on AMX and AVX-512 BF16 CPUs that
#' is usually inference but not training.
#' `train_layers = "head"` freezes the pretrained body, runs it once over the
#' images and trains only the last layer on the cached features (no
#' augmentation): seconds instead of minutes, and often as accurate on small
#' sets.
#'
#' @param images A tibble from [image_files()] (columns `path`, a label
#'   column and optionally `split`). Unreadable rows are skipped with a
#'   warning.
#' @param label The column holding the class labels.
#' @param backbone `"efficientnet_lite0"`, `"efficientnet_lite1"` or
#'   `"efficientnet_lite2"` (ImageNet weights installed with the Python
#'   dependencies, so they work offline; trained at 224, 240 and 260 pixels,
#'   a fitting `image_size`, though any works) or a torchvision model name
#'   such as `"resnet18"` or `"resnet50"` (weights from torchvision's cache,
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
#' @param precision `"auto"` (on a CPU, bf16 where it measured faster for
#'   this backbone, size and batch, else fp32; bf16, or fp16 where the GPU
#'   has no bf16, on GPUs), `"bf16"`, `"fp16"` or `"fp32"`. Training and
#'   inference are measured apart.
#' @param class_weights `"none"`, or `"balanced"` to weight the training
#'   loss of each class by `n / (k * n_c)` (`n` training images, `k`
#'   classes, `n_c` images of the class), so a rare class counts as much as
#'   a common one. The validation loss stays unweighted.
#' @param verbose Show progress bars (decoding, feature extraction with
#'   `train_layers = "head"`, training).
#' @param ... Not used: an argument `fine_tune()` doesn't have is an error
#'   that lists the ones it has.
#' @return A `tv_classifier`: use [predict()][predict.tv_classifier],
#'   [fit_history()], `autoplot()` and [save_classifier()].
#' @export
#' @examplesIf tv_available()
#' imgs <- image_files(system.file("extdata", "images", package = "tidyvision"))
#' fit <- fine_tune(imgs, epochs = 3, train_layers = "head")
#' fit
#' fit_history(fit)
fine_tune <- function(images, label = label, backbone = "efficientnet_lite0",
                      epochs = 10, learning_rate = 0.001, momentum = 0.9,
                      batch_size = 4, step_size = 7, gamma = 0.1,
                      train_layers = c("all", "head"), weights = NULL,
                      resize = c("rescale_crop", "squish", "crop", "pad"),
                      image_size = 224, augment = TRUE, seed = 1,
                      device = "auto", precision = "auto", class_weights = c("none", "balanced"),
                      verbose = tv_verbose(), ...) {
  check_dots_known(rlang::enquos(...), fine_tune_args(), "fine_tune")
  check_images(images)
  train_layers <- check_choice(train_layers)
  resize <- check_choice(resize)
  class_weights <- check_choice(class_weights)
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
    device = device, precision = precision, class_weights = class_weights
  )
  weights_path <- tempfile("tidyvision-", fileext = ".safetensors")
  res <- rlang::exec(engine_call, "fine_tune.fit",
    as.list(data$train$path), as.list(match(data$train[[label_col]], classes) - 1L),
    as.list(data$val$path), as.list(match(data$val[[label_col]], classes) - 1L),
    length(classes), weights_path,
    progress = progress_callback(verbose, paste("Fine-tuning", backbone)),
    !!!settings
  )
  warn_unreadable(col_of(res$skipped_path), col_of(res$skipped_problem), "{?it was/they were} skipped")
  new_classifier(
    classes = classes, label = label_col, settings = settings, history = history_from_py(res$history),
    best_epoch = res$best_epoch, weights = weights_path,
    sha256 = engine_call("backbones.weights_digest", weights_path), fingerprint = res$fingerprint,
    n_train = res$n_train, n_val = res$n_val, val_counts = col_of(res$val_counts, "int"),
    device = res$device, precision = res$precision, train_precision = res$train_precision,
    seconds = res$seconds, seen = seen_from_py(res$seen)
  )
}

# The one constructor of a `tv_classifier`, for fine_tune() and load_classifier().
# `val_counts`: validation images per class, in the order of `classes`.
# `seen`: the train and val images by content (seen_from_py()), or NULL for
# a fit saved before they were kept.
new_classifier <- function(classes, label, settings, history, best_epoch, weights, sha256,
                           fingerprint, n_train, n_val, val_counts, device, precision,
                           train_precision = NULL, seconds = NA_real_, seen = NULL) {
  settings$weights <- NULL  # a path on the training machine, not a property of the model
  if (!is.null(val_counts)) val_counts <- rlang::set_names(as.integer(val_counts), classes)
  structure(list(
    classes = classes, label = label, backbone = settings$backbone, settings = settings,
    history = tibble::as_tibble(history), best_epoch = as.integer(best_epoch),
    weights = weights, carried = carry_weights(weights), sha256 = sha256, fingerprint = fingerprint,
    n_train = as.integer(n_train), n_val = as.integer(n_val), val_counts = val_counts,
    device = device, precision = precision, train_precision = train_precision %||% precision,
    seconds = seconds, seen = seen
  ), class = "tv_classifier")
}

# The fit's own images as a tibble `path, split, sha256, phash` (phash: the
# full-frame, 95% and 90% phashes, 16 hex digits each): what classify_folder()
# tells them by, however they were renamed, resized or re-encoded.
seen_from_py <- function(seen) {
  if (is.null(seen)) return(NULL)
  tibble::tibble(path = col_of(seen$path), split = col_of(seen$split),
                 sha256 = col_of(seen$sha256), phash = col_of(seen$phash))
}

history_from_py <- function(h) as_schema(h, "history")

# Train / val rows: from `split`, or an 80/20 stratified split by `seed`.
training_rows <- function(images, label_col, seed, call = caller_env()) {
  if (!"path" %in% names(images)) {
    tv_abort("{.arg images} has no {.field path} column; make it with {.fn image_files}.",
             class = "missing_column", call = call)
  }
  images$path <- image_paths(images, "images", call)
  if ("readable" %in% names(images)) images <- images[images$readable %in% TRUE, , drop = FALSE]
  images <- labelled_rows(images, label_col, call)
  check_single_labels(images[[label_col]], call)
  if ("split" %in% names(images)) images$split <- normalize_split(images$split)
  if (!"split" %in% names(images) || all(is.na(images$split))) {
    images <- split_images(images, prop = c(train = 0.8, val = 0.2),
                           strata = tidyselect::all_of(label_col), seed = seed)
  }
  if (anyNA(images$split)) {
    tv_warn("{sum(is.na(images$split))} image{?s} with no {.field split} (or one other than train, val or test) {?is/are} not used.",
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

# Rows with a label. Blank labels ("" is what read.csv() gives for an empty
# cell) count as missing: they would otherwise become a class "".
labelled_rows <- function(images, label_col, call = caller_env()) {
  labels <- images[[label_col]]
  missing <- is.na(labels) | trimws(as.character(labels)) == ""
  if (nrow(images) > 0 && all(missing)) {
    tv_abort(c("None of the {nrow(images)} images has a label: {.field {label_col}} is {.code NA} or blank in every row.",
               i = "Put each class in its own subfolder ({.path photos/protest/}, {.path photos/other/}) and call {.fn image_files} on the parent folder,",
               " " = "or add a {.field {label_col}} column (e.g. joined from a CSV)."),
             class = "missing_labels", call = call)
  }
  if (any(missing)) {
    tv_warn("{sum(missing)} image{?s} with no label ({.code NA} or blank) {?was/were} dropped.",
            class = "missing_labels")
  }
  images[!missing, , drop = FALSE]
}

# Split names as people and folder layouts spell them, made one: the
# aliases image_files() accepts for split folders (one file, read by the
# engine too). Anything else is NA.
normalize_split <- function(x) {
  aliases <- unlist(jsonlite::read_json(system.file("python", "tidyvision", "split_aliases.json",
                                                    package = "tidyvision", mustWork = TRUE)))
  unname(aliases[tolower(trimws(as.character(x)))])
}

check_images <- function(images, call = caller_env()) {
  if (is.data.frame(images)) return(invisible())
  tv_abort(c("{.arg images} must be a data frame of image paths and labels, not {.obj_type_friendly {images}}.",
             i = "Make one with {.fn image_files} on a folder with one subfolder per class,",
             " " = "or add a label column to a data frame with a {.field path} column."),
           class = "bad_argument", call = call)
}

# The arguments a user may name in fine_tune() (and in tune_grid()'s grid).
fine_tune_args <- function() setdiff(names(formals(fine_tune)), "...")

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

# "ants|bees" is what read_labels() gives for mode = "multi": several classes
# of one image, which a one-class-per-image softmax would take as a third class.
check_single_labels <- function(x, call) {
  multi <- unique(grep("|", as.character(x), fixed = TRUE, value = TRUE))
  if (!length(multi)) return(invisible())
  tv_abort(c("Some labels hold several classes each: {.val {utils::head(multi, 3)}}{if (length(multi) > 3) ', ...'}.",
             i = "Such labels come from {.code label_images(mode = \"multi\")}; {.fn fine_tune} trains one class per image here, and would take each combination for a class of its own.",
             i = "Train one model per class on a logical column (e.g. {.code grepl(\"ants\", label, fixed = TRUE)}), or keep one class per image."),
           class = "multi_label", call = call)
}

check_val_labels <- function(x, classes, label_col, call = caller_env()) {
  unknown <- setdiff(unique(as.character(x)), classes)
  if (length(unknown)) {
    tv_abort(c("Validation images have {cli::qty(length(unknown))}label{?s} never seen in training: {.val {unknown}}.",
               i = "Every class in {.field {label_col}} needs training images."),
             class = "unknown_class", call = call)
  }
}

#' Training history of a classifier or detector
#'
#' Named `fit_history()` rather than `history()`, which would mask
#' `utils::history()` when the package is attached.
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
#' fit_history(fine_tune(imgs, epochs = 2, train_layers = "head"))
fit_history <- function(x, ...) UseMethod("fit_history")

#' @export
fit_history.default <- function(x, ...) {
  abort_no_method(x, "fit_history", cli::format_inline(
    "a classifier from {.fn fine_tune} or {.fn load_classifier}, or a detector from {.fn train_detector}"))
}

#' @export
fit_history.tv_classifier <- function(x, ...) {
  warn_unvalidated(x)
  x$history
}

# A class without validation images has no say in the choice of epoch and
# no validation metrics: users must hear it wherever they look at those.
warn_unvalidated <- function(x) {
  empty <- names(x$val_counts)[x$val_counts == 0]
  if (length(empty) == 0) return(invisible())
  tv_warn(c("{cli::qty(length(empty))}Class{?es} {.val {empty}} ha{?s/ve} no validation images.",
            i = "The validation metrics and the best epoch ignore {cli::qty(length(empty))}{?it/them}; give every class validation images (see {.fn split_images})."),
          class = "class_not_validated")
}

#' @export
format.tv_classifier <- function(x, ...) {
  best <- best_val_row(x)
  epochs <- max(x$history$epoch)
  c(
    paste0("Backbone: ", x$backbone, " (", x$settings$train_layers, " layers, ",
           x$device, ", ", precision_label(x), ")"),
    paste0("Classes:  ", paste(x$classes, collapse = ", ")),
    paste0("Trained:  ", x$n_train, " images, validated on ", x$n_val, "; ", epochs,
           if (epochs == 1) " epoch" else " epochs", " in ", format_seconds(sum(x$history$seconds) / 2),
           if (identical(x$settings$class_weights, "balanced")) "; balanced class weights"),
    sprintf("Best epoch %d: val accuracy %.3f, precision %.3f, recall %.3f, F1 %.3f, loss %.3f",
            x$best_epoch, best$accuracy, best$precision, best$recall, best$f1, best$loss)
  )
}

# The history row of the kept epoch on the validation set.
best_val_row <- function(fit) {
  h <- fit$history
  h[h$epoch == fit$best_epoch & h$split == "val", ]
}

# "bf16", or "fp32 training, bf16 inference" when the two precisions differ.
precision_label <- function(x) {
  train <- x$train_precision
  if (is.null(train) || identical(train, x$precision)) return(x$precision)
  paste0(train, " training, ", x$precision, " inference")
}

# Seconds as people read them: "< 0.1 s", "0.4 s", "12 s", "3.5 min".
format_seconds <- function(s) {
  if (is.na(s)) return("? s")
  if (s < 0.1) return("< 0.1 s")
  if (s < 10) return(sprintf("%.1f s", s))
  if (s < 120) return(sprintf("%.0f s", s))
  sprintf("%.1f min", s / 60)
}

#' @export
print.tv_classifier <- function(x, ...) {
  print_titled(x, "tidyvision classifier")
  warn_unvalidated(x)
  invisible(x)
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
    data.frame(epoch = h$epoch, split = h$split, metric = "Loss", value = h$loss),
    data.frame(epoch = h$epoch, split = h$split, metric = "Accuracy", value = h$accuracy)
  )
  long$metric <- factor(long$metric, c("Loss", "Accuracy"))
  long$split <- factor(c(train = "Training", val = "Validation")[long$split],
                       c("Training", "Validation"))
  ggplot2::ggplot(long, ggplot2::aes(.data$epoch, .data$value, colour = .data$split)) +
    ggplot2::geom_vline(xintercept = object$best_epoch, linetype = "dashed", colour = "grey60") +
    (if (max(h$epoch) > 1) ggplot2::geom_line()) +  # one epoch: nothing to join
    ggplot2::geom_point() +
    # strips on the left, outside the axis: each panel's y-axis title
    ggplot2::facet_wrap(~metric, scales = "free_y", strip.position = "left") +
    ggplot2::scale_x_continuous(breaks = whole_breaks) +
    ggplot2::labs(x = "Epoch", y = NULL, colour = "Split",
                  title = paste0(object$backbone, ": best epoch ", object$best_epoch, " (dashed)")) +
    ggplot2::theme_minimal() +
    ggplot2::theme(strip.placement = "outside", strip.text = ggplot2::element_text(size = 11))
}

# Axis breaks at whole numbers only: there is no epoch 2.5.
whole_breaks <- function(limits) {
  b <- unique(round(pretty(limits)))
  b[b >= ceiling(limits[1]) & b <= floor(limits[2])]
}
