#' Classify images with a fine-tuned classifier
#'
#' One row per input row, in input order, like parsnip. Images are decoded
#' and resized in threads while the network runs on the previous batch.
#' Rows whose image can't be read get `NA` and one warning names them.
#'
#' @param object A `tv_classifier` from [fine_tune()] or [load_classifier()].
#' @param new_data A tibble with a `path` column (e.g. from [image_files()])
#'   or a character vector of image paths.
#' @param type `"class"` for `.pred_class` (a factor with the classifier's
#'   classes), `"prob"` for one `.pred_<class>` column per class.
#' @param batch_size Images decoded together (the next batch decodes while
#'   this one runs) and, on a GPU, per forward pass. On a CPU the forward
#'   pass takes 8 images at a time whatever `batch_size` is: that keeps the
#'   activations in the processor's cache and was ~1.6x faster than 64.
#' @param verbose Show a progress bar.
#' @param ... Unused.
#' @return A tibble with `.pred_class` or the `.pred_<class>` columns.
#' @export
#' @examplesIf tv_available()
#' imgs <- image_files(system.file("extdata", "images", package = "tidyvision"))
#' fit <- fine_tune(imgs, epochs = 2, train_layers = "head")
#' predict(fit, imgs[1:5, ], type = "prob")
predict.tv_classifier <- function(object, new_data, type = c("class", "prob"),
                                  batch_size = 64, verbose = tv_verbose(), ...) {
  type <- check_choice(type)
  check_count(batch_size)
  check_flag(verbose)
  probs <- predict_probs(object, image_paths(new_data), batch_size, verbose)
  if (type == "prob") return(probs)
  pred_class(probs, object$classes)
}

predict_probs <- function(object, paths, batch_size = 64, verbose = FALSE) {
  object <- check_classifier(object)
  s <- object$settings
  res <- engine_call("classifier.predict", as.list(paths), object$weights, object$backbone,
                     length(object$classes), resize = s$resize, image_size = s$image_size,
                     device = s$device, precision = s$precision, batch_size = as.integer(batch_size),
                     progress = progress_callback(verbose, "Classifying"))
  prob <- res$prob
  problems <- col_of(res$problem)
  bad <- !is.na(problems)
  warn_unreadable(paths, problems, "{?its/their} predictions are NA")
  prob[bad, ] <- NA_real_  # the engine marks unreadable rows NaN; R's missing value is NA
  colnames(prob) <- paste0(".pred_", object$classes)
  tibble::as_tibble(as.data.frame(prob, check.names = FALSE))
}

pred_class <- function(probs, classes) {
  m <- as.matrix(probs)
  best <- rep(NA_integer_, nrow(m))
  ok <- stats::complete.cases(m)
  best[ok] <- max.col(m[ok, , drop = FALSE], ties.method = "first")
  tibble::tibble(.pred_class = factor(classes[best], levels = classes))
}

#' Add predictions to the images
#'
#' @param x A `tv_classifier`.
#' @param new_data A tibble with a `path` column.
#' @param ... Passed to [predict()][predict.tv_classifier].
#' @return `new_data` with `.pred_class` and one `.pred_<class>` column per
#'   class.
#' @export
#' @examplesIf tv_available()
#' imgs <- image_files(system.file("extdata", "images", package = "tidyvision"))
#' fit <- fine_tune(imgs, epochs = 2, train_layers = "head")
#' augment(fit, imgs[1:5, ])
augment.tv_classifier <- function(x, new_data, ...) {
  # a folder is its images, one row each
  if (is.character(new_data)) new_data <- tibble::tibble(path = image_paths(new_data))
  probs <- predict(x, new_data, type = "prob", ...)
  preds <- cbind(pred_class(probs, x$classes), probs)
  # As parsnip does: predictions already in `new_data` (an earlier augment()) are replaced.
  new_data <- new_data[setdiff(names(new_data), names(preds))]
  tibble::as_tibble(cbind(new_data, preds))
}

# `x`, checked, with `x$weights` a file the engine can read (restored from the
# bytes it carries when the file is gone, as after a new R session: weights.R).
check_classifier <- function(x, arg = rlang::caller_arg(x), call = caller_env()) {
  if (!inherits(x, "tv_classifier")) {
    tv_abort("{.arg {arg}} must be a classifier from {.fn fine_tune} or {.fn load_classifier}.",
             class = "bad_argument", call = call)
  }
  live <- live_weights(x)
  if (is.null(live)) {
    tv_abort(c("The weights of this classifier are gone: {.path {x$weights}}.",
               i = "It was made by an older tidyvision that kept them in the session's temporary folder; train it again, or use {.fn save_classifier} and {.fn load_classifier} to keep one."),
             class = "weights_missing", call = call)
  }
  x$weights <- live
  x
}

#' Save and load a classifier
#'
#' `save_classifier()` writes a folder with the weights as
#' `model.safetensors` and a `tidyvision.json` card: classes, backbone,
#' preprocessing, hyperparameters, seed, the best epoch's validation metrics,
#' package versions, the sha256 of the weights and a fingerprint of the
#' training images (sha256 over their contents and labels). The folder is
#' written beside `dir` and renamed into place, so an interrupted save leaves
#' nothing half-written; the hidden `.tidyvision-save-*` folder a killed save
#' leaves behind is removed by the next save in the same folder (never one
#' that a save still running in another process is writing). `load_classifier()`
#' checks the weights against the card's sha256 and never unpickles anything.
#'
#' @param fit A `tv_classifier`.
#' @param dir The folder to write or read.
#' @param overwrite Replace an existing `dir`. Only a folder that holds a
#'   saved classifier (its card and weights, nothing else) or nothing is
#'   replaced; a folder with any other file is an error that lists them.
#' @return `save_classifier()`: `dir`, invisibly. `load_classifier()`: a
#'   `tv_classifier`.
#' @export
#' @examplesIf tv_available()
#' imgs <- image_files(system.file("extdata", "images", package = "tidyvision"))
#' fit <- fine_tune(imgs, epochs = 2, train_layers = "head")
#' dir <- file.path(tempdir(), "my-classifier")
#' save_classifier(fit, dir, overwrite = TRUE)
#' fit2 <- load_classifier(dir)
save_classifier <- function(fit, dir, overwrite = FALSE) {
  fit <- check_classifier(fit)
  check_output_dir(dir)
  check_flag(overwrite)
  dir <- expand_paths(dir)
  check_replaceable(dir, overwrite)
  parent <- dirname(dir)
  if (!dir.exists(parent) && !dir.create(parent, showWarnings = FALSE, recursive = TRUE)) abort_not_writable(parent)
  clean_stale_temps(parent)
  tmp <- temp_beside(dir, "save")
  if (!dir.create(tmp, showWarnings = FALSE)) abort_not_writable(parent)
  on.exit(unlink(tmp, recursive = TRUE), add = TRUE)
  if (!file.copy(fit$weights, file.path(tmp, "model.safetensors"))) {
    tv_abort(c("Can't copy the weights to {.path {parent}}.",
               i = "Check that the folder is writable and the disk has room."), class = "write_failed")
  }
  writeLines(jsonlite::toJSON(classifier_card(fit), auto_unbox = TRUE, pretty = TRUE, digits = NA),
             file.path(tmp, "tidyvision.json"))
  replace_dir(tmp, dir)
  invisible(dir)
}

# What save_classifier() writes, and what a file manager adds on its own.
MODEL_FILES <- c("model.safetensors", "tidyvision.json")
SYSTEM_FILES <- c(".DS_Store", "Thumbs.db", "desktop.ini")

# `overwrite = TRUE` replaces a saved classifier (its card, its weights and
# nothing else), or an empty folder; a folder holding anything a user put
# there is never deleted.
check_replaceable <- function(dir, overwrite, call = caller_env()) {
  if (!file.exists(dir)) return(invisible())
  if (!overwrite) {
    tv_abort(c("{.path {dir}} already exists.", i = "Use {.code overwrite = TRUE} to replace it."),
             class = "exists", call = call)
  }
  inside <- list.files(dir, all.files = TRUE, no.. = TRUE)
  foreign <- setdiff(inside, c(MODEL_FILES, SYSTEM_FILES))
  if (length(foreign) == 0 && (length(intersect(inside, MODEL_FILES)) == 0 || is_saved_classifier(dir))) {
    return(invisible())
  }
  tv_abort(c("{.path {dir}} is not a saved classifier, so {.code overwrite = TRUE} won't replace it.",
             i = "It holds {length(inside)} file{?s} or folder{?s}, {length(foreign)} of them not written by {.fn save_classifier}:",
             bullets_of(c(foreign, setdiff(inside, foreign))),
             i = "Choose another {.arg dir}, or move those files away first."),
           class = c("not_a_model_folder", "exists"), call = call)
}

is_saved_classifier <- function(dir) {
  card <- tryCatch(jsonlite::fromJSON(file.path(dir, "tidyvision.json")), error = function(e) NULL)
  all(file.exists(file.path(dir, MODEL_FILES))) && identical(card$format, "tidyvision-classifier")
}

classifier_card <- function(fit) {
  best <- best_val_row(fit)
  list(
    format = "tidyvision-classifier", format_version = 1L,
    classes = fit$classes, label = fit$label, backbone = fit$backbone,
    preprocessing = list(resize = fit$settings$resize, image_size = fit$settings$image_size,
                         normalize = "imagenet"),
    hyperparameters = fit$settings[setdiff(names(fit$settings), c("backbone", "resize", "image_size"))],
    seed = fit$settings$seed, best_epoch = fit$best_epoch,
    metrics = as.list(best[c("loss", "accuracy", "precision", "recall", "f1")]),
    history = fit$history, n_train = fit$n_train, n_val = fit$n_val,
    val_counts = as.list(fit$val_counts), seconds = fit$seconds,
    # what training ran on, resolved from "auto"; `hyperparameters` keep what was asked
    device = fit$device, precision = fit$precision, train_precision = fit$train_precision,
    sha256 = fit$sha256, training_images_sha256 = fit$fingerprint,
    # per train and val image, so a corpus run of the loaded fit flags them
    seen_images = fit$seen,
    versions = c(list(tidyvision = as.character(utils::packageVersion("tidyvision")),
                      R = as.character(getRversion())),
                 lapply(tv_versions(), function(v) v %||% NA)),
    created = format(Sys.time(), "%Y-%m-%dT%H:%M:%S%z")
  )
}

tv_versions <- function() engine_call("config.versions")

# Move `tmp` to `dir`; an existing `dir` is moved aside first and removed
# only once the new one is in place.
replace_dir <- function(tmp, dir) {
  old <- NULL
  if (file.exists(dir)) {
    old <- temp_beside(normalizePath(dir), "old")
    if (!file.rename(dir, old)) abort_not_writable(dirname(dir))
  }
  if (!file.rename(tmp, dir)) {
    if (!is.null(old)) file.rename(old, dir)
    tv_abort("Can't write {.path {dir}}.", class = "write_failed")
  }
  if (!is.null(old)) unlink(old, recursive = TRUE)
}

#' @rdname save_classifier
#' @export
load_classifier <- function(dir) {
  dir <- check_folder(dir)
  card_path <- file.path(dir, "tidyvision.json")
  weights <- file.path(dir, "model.safetensors")
  if (!file.exists(card_path)) {
    tv_abort(c("{.path {dir}} has no {.file tidyvision.json}.",
               i = "Give a folder written by {.fn save_classifier}."), class = "path_not_found")
  }
  if (!file.exists(weights)) {
    pickles <- list.files(dir, pattern = "[.](pth|pt|pkl|bin)$")
    tv_abort(c("{.path {dir}} has no {.file model.safetensors}.",
               i = if (length(pickles)) "tidyvision never loads pickled weights ({.file {pickles}})."),
             class = if (length(pickles)) "weights_unsafe" else "weights_missing")
  }
  card <- read_card(card_path)
  check_card_known(card, card_path)
  digest <- engine_call("backbones.weights_digest", normalizePath(weights))
  if (!identical(digest, card$sha256)) {
    tv_abort(c("The weights in {.path {weights}} don't match the card's sha256.",
               i = "The file was changed or damaged after it was saved; save the classifier again."),
             class = "weights_tampered")
  }
  classifier_from_card(card, normalizePath(weights))
}

# The card, or an error naming it when it is damaged (cut short, edited by
# hand, or not a classifier's card).
read_card <- function(path, call = caller_env()) {
  card <- tryCatch(jsonlite::fromJSON(path, simplifyVector = TRUE), error = function(e) e)
  fields <- c("classes", "backbone", "preprocessing", "sha256")
  if (inherits(card, "error") || !is.list(card) || !identical(card$format, "tidyvision-classifier") ||
      !all(fields %in% names(card))) {
    why <- if (inherits(card, "error")) conditionMessage(card) else "it is not a tidyvision classifier card"
    tv_abort(c("The card {.path {path}} is damaged: {why}.",
               i = "Save the classifier again with {.fn save_classifier}, or restore the folder from a backup."),
             class = "card_unreadable", call = call)
  }
  card
}

# What this version can reproduce: a card of a newer format, or preprocessing
# it does not know, would predict with the wrong inputs, so it is refused.
CARD_VERSIONS <- 1L
KNOWN_PREPROCESSING <- list(resize = c("rescale_crop", "squish", "crop", "pad"), normalize = "imagenet")

check_card_known <- function(card, path, call = caller_env()) {
  version <- card$format_version %||% 1L
  if (!(is.numeric(version) && length(version) == 1 && version %in% CARD_VERSIONS)) {
    tv_abort(c("{.path {path}} is a classifier card of format {.val {version}}; this tidyvision reads format {.val {CARD_VERSIONS}}.",
               i = "It was saved by a newer tidyvision ({card$versions$tidyvision %||% 'unknown version'}): update tidyvision to load it."),
             class = "card_unknown", call = call)
  }
  pre <- card$preprocessing
  bad <- c(
    resize = !identical(length(pre$resize), 1L) || !pre$resize %in% KNOWN_PREPROCESSING$resize,
    normalize = !is.null(pre$normalize) && !identical(pre$normalize, KNOWN_PREPROCESSING$normalize),
    image_size = !is.numeric(pre$image_size) || length(pre$image_size) != 1 || !(pre$image_size >= 1)
  )
  if (any(bad)) {
    shown <- vapply(names(bad)[bad], function(k) paste0(k, " = ", format(pre[[k]] %||% "missing")), "")
    tv_abort(c("{.path {path}} asks for preprocessing this tidyvision doesn't know: {shown}.",
               i = "Predicting with other inputs than the model was trained on gives wrong answers; update tidyvision, or save the classifier again."),
             class = "card_unknown", call = call)
  }
  note_card_version(card$versions$tidyvision, path)
}

# A card from another tidyvision version loads, with a note once a session.
note_card_version <- function(saved, path) {
  here <- as.character(utils::packageVersion("tidyvision"))
  if (is.null(saved) || identical(as.character(saved), here)) return(invisible())
  cli::cli_inform(c(i = "{.path {path}} was saved by tidyvision {saved}; this is {here}."),
                  class = c("tidyvision_message_version", "tidyvision_message"),
                  .frequency = "once", .frequency_id = paste0("tidyvision-card-", saved))
}

# Cards saved before the fit kept its images have none: NULL, and the
# corpus rows of such a fit say `trained = NA` (unknown).
card_seen <- function(seen) {
  if (!is.data.frame(seen)) return(NULL)
  seen_from_py(seen)
}

classifier_from_card <- function(card, weights) {
  settings <- c(list(backbone = card$backbone, resize = card$preprocessing$resize,
                     image_size = card$preprocessing$image_size), card$hyperparameters)
  new_classifier(
    classes = card$classes, label = card$label, settings = settings, history = card$history,
    best_epoch = card$best_epoch, weights = weights, sha256 = card$sha256,
    fingerprint = card$training_images_sha256, n_train = card$n_train, n_val = card$n_val,
    val_counts = unlist(card$val_counts),
    # cards written before the resolved values were stored only have the requested ones
    device = card$device %||% settings$device, precision = card$precision %||% settings$precision,
    train_precision = card$train_precision, seconds = card$seconds %||% NA_real_,
    seen = card_seen(card$seen_images)
  )
}
