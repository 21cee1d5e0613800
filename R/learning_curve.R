#' Learning curve: will labelling more images help?
#'
#' Validation metrics by the number of training images. Each point trains a
#' linear head (logistic regression) on the frozen backbone's embeddings of
#' a random subset of the training images (every class present), `reps`
#' times per size, and scores it on all validation images. The embeddings
#' are computed once and cached, so the whole curve takes seconds. A curve
#' still rising at the full training set says more labelled images will
#' help; a flat one says they won't, at least not for a head-only model (a
#' full fine-tune usually sits above this curve, but rises alike).
#'
#' @inheritParams fine_tune
#' @param images Labelled images, as for [fine_tune()]: rows with `split ==
#'   "train"` are subsampled, rows with `split == "val"` score every point
#'   (without a split, 80/20 stratified by `seed`).
#' @param sizes Training-set sizes; by default five steps up to all
#'   training images.
#' @param reps Random subsets per size.
#' @param times Bootstrap resamples of the validation images for each
#'   point's interval (see [image_metrics()]).
#' @return A `tv_learning_curve` tibble: `size, rep, .metric, .estimator,
#'   .estimate, .lower, .upper` (accuracy, and precision, recall and F1 for
#'   the first class with two classes, macro-averaged with more).
#'   `autoplot()` draws each metric against the size.
#' @export
#' @examplesIf tv_available()
#' imgs <- image_files(system.file("extdata", "images", package = "tidyvision"))
#' lc <- learning_curve(imgs, sizes = c(6, 12, 24), reps = 2, image_size = 64)
#' lc
#' ggplot2::autoplot(lc)
learning_curve <- function(images, label = label, sizes = NULL, reps = 3, backbone = "efficientnet_lite0",
                           seed = 1, image_size = 224, times = 500, verbose = tv_verbose()) {
  check_images(images)
  check_count(reps); check_seed(seed); check_count(image_size); check_times(times, caller_env())
  check_flag(verbose)
  label_col <- label_name(images, rlang::enquo(label))
  data <- training_rows(images, label_col, seed)
  classes <- class_levels(data$train[[label_col]])
  check_val_labels(data$val[[label_col]], classes, label_col)
  sizes <- curve_sizes(sizes, nrow(data$train), length(classes))
  rows <- rbind(data$train[c("path", label_col)], data$val[c("path", label_col)])
  res <- engine_call("learning_curve.curve", as.list(rows$path), as.list(match(rows[[label_col]], classes) - 1L),
                     nrow(data$train), as.list(as.integer(sizes)), as.integer(reps), length(classes),
                     seed = as.integer(seed), backbone = backbone, image_size = as.integer(image_size),
                     progress = progress_callback(verbose, "Embedding images"))
  truth <- factor(data$val[[label_col]], levels = classes)[col_of(res$val, "int") + 1L]
  out <- dplyr::bind_rows(lapply(seq_along(res$size), function(i) {
    pred <- factor(classes[col_of(res$pred[[i]], "int") + 1L], levels = classes)
    # a head on a few images may never predict some class: expected here, not news
    m <- withCallingHandlers(image_metrics_vec(truth, pred, times = times, seed = seed),
                             tidyvision_warning_undefined_metric = function(w) invokeRestart("muffleWarning"))
    m <- m[m$.estimator %in% c("binary", "multiclass", "macro"), c(".metric", ".estimator", ".estimate", ".lower", ".upper")]
    tibble::tibble(size = as.integer(res$size[[i]]), rep = as.integer(res$rep[[i]]), m)
  }))
  tibble::new_tibble(out, class = "tv_learning_curve")
}

curve_sizes <- function(sizes, n_train, k, call = caller_env()) {
  if (is.null(sizes)) return(unique(pmax(k, round(n_train * c(0.2, 0.4, 0.6, 0.8, 1)))))
  if (!is.numeric(sizes) || anyNA(sizes) || any(sizes < k) || any(sizes != round(sizes))) {
    tv_abort("{.arg sizes} must be whole numbers of at least {k} (one image per class).",
             class = "bad_argument", call = call)
  }
  sort(unique(pmin(sizes, n_train)))
}

#' @export
autoplot.tv_learning_curve <- function(object, ...) {
  data <- tibble::as_tibble(object)
  data$.metric <- factor(data$.metric, c("accuracy", "precision", "recall", "f1"),
                         c("Accuracy", "Precision", "Recall", "F1"))
  means <- dplyr::summarise(dplyr::group_by(data, .data$size, .data$.metric),
                            .estimate = mean(.data$.estimate, na.rm = TRUE), .lower = mean(.data$.lower, na.rm = TRUE),
                            .upper = mean(.data$.upper, na.rm = TRUE), .groups = "drop")
  ggplot2::ggplot(means, ggplot2::aes(.data$size, .data$.estimate)) +
    ggplot2::geom_ribbon(ggplot2::aes(ymin = .data$.lower, ymax = .data$.upper), fill = "#56B4E9", alpha = 0.25) +
    ggplot2::geom_line(colour = "#0072B2", linewidth = 0.8) +
    ggplot2::geom_point(data = data, colour = "grey30", alpha = 0.6, size = 1.5,
                        position = ggplot2::position_jitter(width = 0, height = 0.003, seed = 1)) +
    ggplot2::facet_wrap(~.metric) +
    ggplot2::coord_cartesian(ylim = c(0, 1)) +
    ggplot2::labs(x = "Training images", y = "Validation value",
                  title = "Learning curve (linear head on frozen embeddings)",
                  subtitle = "Line: mean over random subsets (dots); band: mean 95% bootstrap interval") +
    ggplot2::theme_minimal()
}
