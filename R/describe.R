#' A methods paragraph for the paper
#'
#' Writes what a reviewer asks about, from the object itself, so the text
#' and the analysis can't drift apart: every number in it is read from the
#' object (or from `data`). Use it inline in R Markdown, `` `r describe(fit)` ``,
#' or print it.
#'
#' For a classifier: the backbone and its pretraining, which layers were
#' trained, the images per split and class, how the split was made, the
#' hyperparameters, the kept epoch and how it was chosen, the validation
#' metrics with intervals (at `conf_level`) and the class they are about, the software versions and the fingerprint of
#' the training images. A classifier keeps its validation counts per class
#' and its best epoch's metrics, so without `data` the accuracy gets an
#' exact binomial interval and the other metrics none. With `data` (the
#' images given to [fine_tune()]) the split is recomputed as `fine_tune()`
#' made it, the training counts per class are given, the validation images
#' are predicted again for intervals of every metric, made as
#' [image_metrics()] makes them (exact for accuracy, precision and recall,
#' bootstrap for F1), and with `group` (e.g. the duplicate groups of
#' [find_duplicates()]) the text says whether any group spans two splits.
#' Software versions are those of the running session.
#'
#' For an estimate from [estimate_prevalence()]: the method, the numbers of
#' coded and predicted images, and each class's share with its interval
#' (and, with `method = "all"`, the naive and classical answers beside it).
#'
#' @param x A `tv_classifier` or a `tv_estimate`.
#' @param ... Passed to methods.
#' @param data For a classifier: the images it was trained on (the data
#'   frame given to [fine_tune()]).
#' @param group For a classifier with `data`: a column of `data` grouping
#'   near copies (such as a duplicate group).
#' @param format `"markdown"` or `"text"`.
#' @param conf_level For a classifier: the level of the metrics' intervals.
#' @return A character string of class `tv_description`.
#' @export
#' @examplesIf tv_available()
#' imgs <- image_files(system.file("extdata", "images", package = "tidyvision"))
#' fit <- fine_tune(imgs, epochs = 2, train_layers = "head")
#' describe(fit)
describe <- function(x, ...) UseMethod("describe")

#' @rdname describe
#' @export
describe.tv_classifier <- function(x, data = NULL, group = NULL, format = c("markdown", "text"),
                                   conf_level = 0.95, ...) {
  format <- check_choice(format)
  check_conf_level(conf_level)
  if (is.null(data) && !rlang::quo_is_null(rlang::enquo(group))) {
    tv_abort(c("{.arg group} is a column of {.arg data}, but no {.arg data} was given.",
               i = "Give the images the classifier was trained on as {.arg data}, or leave {.arg group} out."),
             class = "bad_argument")
  }
  if (!is.null(data)) check_images_df(data, arg = "data")
  s <- x$settings
  split <- if (!is.null(data)) described_split(x, data, rlang::enquo(group)) else NULL
  parts <- c(
    sprintf("We fine-tuned %s, a convolutional neural network pretrained on ImageNet, %s, to sort images into %d classes (%s).",
            code(x$backbone, format), layers_text(s$train_layers), length(x$classes), paste(x$classes, collapse = ", ")),
    sizes_text(x, split),
    split_text(split),
    sprintf("Training used stochastic gradient descent with learning rate %s, momentum %s and batch size %s for %s epochs, multiplying the learning rate by %s every %s epochs%s; images were %s to %s by %s pixels%s, then normalised with ImageNet's means.",
            num(s$learning_rate), num(s$momentum), num(s$batch_size), num(s$epochs), num(s$gamma), num(s$step_size),
            if (identical(s$class_weights, "balanced")) ", with the loss weighted by inverse class frequency" else "",
            resize_text(s$resize), num(s$image_size), num(s$image_size),
            if (isTRUE(s$augment) && s$train_layers == "all") ", with random resized crops and horizontal flips in training" else ""),
    sprintf("We kept the weights of epoch %d, the epoch with the highest validation accuracy (ties broken by the lower validation loss); test images, if any, were not used.", x$best_epoch),
    metrics_text(x, split, conf_level),
    software_text(x, format)
  )
  new_description(parts)
}

new_description <- function(parts) structure(paste(parts[nzchar(parts)], collapse = " "), class = "tv_description")

#' @export
print.tv_description <- function(x, ...) {
  cat(strwrap(unclass(x), width = getOption("width", 80)), sep = "\n")
  invisible(x)
}

#' @export
format.tv_description <- function(x, ...) unclass(x)

code <- function(x, format) if (format == "markdown") paste0("`", x, "`") else x

# Numbers as R prints them (0.001, 10): the test reads them back.
num <- function(x) format(x, scientific = FALSE, trim = TRUE, drop0trailing = TRUE)
fmt3 <- function(x) sprintf("%.3f", x)

layers_text <- function(layers) {
  if (identical(layers, "head")) "training only a new final layer on the frozen pretrained features" else
    "replacing its final layer and training all layers"
}

resize_text <- function(resize) {
  switch(resize, rescale_crop = "rescaled (shorter side) and centre-cropped", squish = "squished",
         crop = "centre-cropped", pad = "padded", resize)
}

counts_text <- function(counts) paste(names(counts), counts, sep = ": ", collapse = ", ")

sizes_text <- function(x, split) {
  if (!is.null(split)) {
    return(sprintf("It was trained on %d images (%s) and validated on %d (%s).",
                   nrow(split$train), counts_text(split$train_counts), nrow(split$val), counts_text(split$val_counts)))
  }
  sprintf("It was trained on %d images and validated on %d (%s); the training images per class are not recorded in the classifier.",
          x$n_train, x$n_val, counts_text(x$val_counts))
}

# The split fine_tune() used, remade from `data` with the classifier's seed.
described_split <- function(x, data, group, call = caller_env()) {
  rows <- suppressWarnings(training_rows(data, x$label, x$settings$seed, call))
  if (nrow(rows$train) != x$n_train || nrow(rows$val) != x$n_val) {
    tv_warn("{.arg data} gives {nrow(rows$train)} training and {nrow(rows$val)} validation images, but the classifier was trained on {x$n_train} and validated on {x$n_val}.",
            class = "data_mismatch")
  }
  group_col <- select_columns(data, group, "group", max = 1, call = call)
  count <- function(d) table(factor(d[[x$label]], levels = x$classes))
  list(train = rows$train, val = rows$val, train_counts = count(rows$train), val_counts = count(rows$val),
       group = group_col, spanning = if (length(group_col)) spanning_groups(data, group_col))
}

spanning_groups <- function(data, col) {
  split <- normalize_split(data$split %||% rep(NA, nrow(data)))
  ok <- !is.na(data[[col]]) & !is.na(split)
  n_splits <- tapply(split[ok], data[[col]][ok], function(s) length(unique(s)))
  sum(n_splits > 1)
}

split_text <- function(split) {
  if (is.null(split)) return("How the images were split is not recorded in the classifier.")
  if (!length(split$group)) return("The split was not checked for near-duplicate images across training and validation.")
  if (split$spanning == 0) {
    return(sprintf("No group of near-duplicate images (column %s) spans two splits, so no copy of a training image was used to validate.", split$group))
  }
  sprintf("%d group(s) of near-duplicate images (column %s) span two splits, which can inflate the validation metrics.",
          split$spanning, split$group)
}

metrics_text <- function(x, split, conf_level = 0.95) {
  best <- best_val_row(x)
  right <- round(best$accuracy * x$n_val)
  ci <- stats::binom.test(right, x$n_val, conf.level = conf_level)$conf.int
  lvl <- paste0(num(100 * conf_level), "%")
  avg <- if (length(x$classes) == 2) sprintf("for the class %s", x$classes[1]) else "macro-averaged over the classes"
  if (is.null(split)) {
    return(sprintf("On the validation images, accuracy was %s (%d of %d right; %s exact Clopper-Pearson interval %s to %s); precision, recall and F1 (%s) were %s, %s and %s.",
                   fmt3(best$accuracy), right, x$n_val, lvl, fmt3(ci[1]), fmt3(ci[2]), avg,
                   fmt3(best$precision), fmt3(best$recall), fmt3(best$f1)))
  }
  m <- described_metrics(x, split$val, conf_level)
  sprintf("On the validation images (precision, recall and F1 %s; %s intervals: %s), %s.",
          avg, lvl, interval_methods_text(m$.method),
          paste(sprintf("%s was %s (%s to %s)", m$name, fmt3(m$.estimate), fmt3(m$.lower), fmt3(m$.upper)), collapse = ", "))
}

# Which metric got which kind of interval, in words (see intervals.R).
interval_methods_text <- function(methods) {
  words <- c(`clopper-pearson` = "exact Clopper-Pearson for accuracy, precision and recall",
             bootstrap = "percentile bootstrap for F1",
             `clopper-pearson bounds` = "for F1, its value at the exact bounds of precision and recall, as every bootstrap resample gave the same F1")
  paste(words[intersect(names(words), methods)], collapse = "; ")
}

# accuracy, then precision, recall and F1 (binary, or the macro rows).
described_metrics <- function(x, val, conf_level = 0.95) {
  pred <- predict(x, val)
  truth <- factor(val[[x$label]], levels = x$classes)
  m <- image_metrics_vec(truth, pred$.pred_class, conf_level = conf_level)
  m <- m[m$.estimator %in% c("binary", "multiclass", "macro"), ]
  name <- c(accuracy = "accuracy", precision = "precision", recall = "recall", f1 = "F1")[m$.metric]
  m$name <- ifelse(m$.estimator == "macro", paste("macro", name), name)
  m
}

software_text <- function(x, format) {
  v <- tv_versions()
  sprintf("Software: tidyvision %s with R %s, torch %s and torchvision %s; the training images (contents and labels) have the SHA-256 fingerprint %s.",
          utils::packageVersion("tidyvision"), getRversion(), v$torch %||% "unknown", v$torchvision %||% "unknown",
          code(x$fingerprint, format))
}

METHOD_TEXT <- c(
  `ppi++` = "prediction-powered inference with power tuning (PPI++; Angelopoulos, Duchi and Zrnic 2023)",
  ppi = "prediction-powered inference (PPI; Angelopoulos et al. 2023)",
  classical = "the hand-coded sample alone",
  naive = "counting the classifier's labels, as if they were true"
)

#' @rdname describe
#' @export
describe.tv_estimate <- function(x, format = c("markdown", "text"), ...) {
  format <- check_choice(format)
  lvl <- num(100 * (attr(x, "level") %||% 0.95))
  main <- intersect(c("ppi++", "ppi", "classical", "naive"), x$method)[1]
  groups <- estimate_groups(x)
  first <- x[x$method == main, , drop = FALSE]
  how <- if (main %in% c("ppi++", "ppi")) {
    sprintf(", combining the classifier's %s for all %s images with %s images hand-coded from a %s",
            if (identical(attr(x, "prediction"), "probability")) "predicted probabilities" else "predicted labels",
            format_count(sum(unique_rows(first, groups)$n_predicted)), format_count(sum(unique_rows(first, groups)$n_coded)),
            sampling_text(attr(x, "sampling"), attr(x, "trained_checked")))
  } else ""
  lines <- vapply(split(x, vctrs::vec_group_id(x[c(groups, "class")])), estimate_line, "", groups = groups, lvl = lvl, main = main)
  new_description(c(sprintf("We estimated the share of each class in the corpus by %s%s.", METHOD_TEXT[[main]], how),
                    paste0(paste(lines, collapse = "; "), ".")))
}

unique_rows <- function(x, groups) {
  if (!length(groups)) return(x[1, , drop = FALSE])
  x[!duplicated(x[groups]), , drop = FALSE]
}

# "Simple random" only when the content check (the corpus's `trained`) saw
# every coded image: equal inclusion probabilities alone don't rule out the
# model's own images.
sampling_text <- function(sampling, trained_checked = FALSE) {
  checked <- isTRUE(trained_checked)
  design <- switch(sampling %||% "unknown",
    random = if (checked) "simple random sample of the corpus" else "sample with equal inclusion probabilities",
    stratified = "stratified random sample, each weighted by its inverse inclusion probability",
    "sample whose design was not recorded, assumed to be simple random")
  paste0(design, if (checked) {
    ", none of them among the classifier's training or validation images (checked by content, copies included)"
  } else {
    "; whether any of them trained or validated the classifier was not checked"
  })
}

pct <- function(x) sprintf("%.1f%%", 100 * x)

estimate_line <- function(rows, groups, lvl, main) {
  label <- paste(c(vapply(groups, function(g) paste0(g, " ", rows[[g]][1]), ""), rows$class[1]), collapse = ", ")
  show <- function(m, what) {
    r <- rows[rows$method == m, ]
    sprintf("%s%s (%s%% interval %s to %s)", what, pct(r$.estimate), lvl, pct(r$.lower), pct(r$.upper))
  }
  others <- setdiff(intersect(c("classical", "naive"), rows$method), main)
  extra <- vapply(others, function(m) show(m, paste0(if (m == "naive") "counting the labels gives " else "the coded sample alone gives ")), "")
  paste0(label, ": ", show(main, ""), if (length(extra)) paste0(", where ", paste(extra, collapse = " and ")))
}

#' @export
describe.default <- function(x, ...) {
  abort_no_method(x, "describe", cli::format_inline(
    "a classifier from {.fn fine_tune} or {.fn load_classifier}, or an estimate from {.fn estimate_prevalence}"))
}
