#' Accuracy, precision, recall and F1 with intervals
#'
#' Validation sets in social science are small, so every metric comes with
#' an interval that says how sure it is. Follows yardstick's layers:
#' `image_metrics()` takes a data frame and column names (tidy evaluation),
#' `image_metrics_vec()` takes the two vectors.
#'
#' **Classes.** `truth` and `estimate` may be factors, characters or
#' logicals; their classes are the union of both, in the order of `truth`'s
#' factor levels (characters: alphabetical; logicals: `TRUE` then `FALSE`),
#' then any class only `estimate` has.
#'
#' **Two classes** (`.estimator` `"binary"`): precision, recall and F1 are
#' about the *event*, the first class, as in yardstick; `event_level =
#' "second"` makes it the second. For logical columns (such as those of
#' [binarize_scores()]) the event is therefore `TRUE`.
#'
#' **More classes**: `accuracy` (`.estimator` `"multiclass"`); for each of
#' precision, recall and F1 a `"macro"` row (the unweighted mean over
#' classes) followed by one `"per_class"` row per class (that class against
#' the rest). These rows name their class in an extra `.class` column (`NA`
#' on the accuracy and macro rows); binary output has no `.class` column.
#'
#' **Undefined metrics.** Precision is undefined for a class never predicted,
#' recall for a class that never occurs, and F1 when either is; they are `NA`
#' with a classed warning (`tidyvision_warning_undefined_metric`). Macro
#' averages are taken over the same classes for every metric (those that
#' occur in `truth` or `estimate`), an undefined value counting as 0, as
#' scikit-learn's `zero_division = 0` does. yardstick instead leaves each
#' metric's undefined classes out of its own average, so its macro F1 can
#' exceed both its macro precision and its macro recall (with truth `a a b b
#' c` and predictions `a a b b a`: 0.83, 0.67 and 0.9; here 0.56, 0.67 and
#' 0.6).
#'
#' **Intervals** (the `.method` column says which). Accuracy, precision and
#' recall are binomial proportions (right of all images, true positives of
#' the predicted or of the actual members of a class), so they get the exact
#' Clopper-Pearson interval (`"clopper-pearson"`, as
#' `binom.test(x, n)$conf.int`): it stays honest when every prediction is
#' right (28 of 28 gives 0.877 to 1), where a percentile bootstrap collapses
#' to `[1, 1]`. F1 and the macro averages get percentile intervals from
#' `times` bootstrap resamples of the rows (`"bootstrap"`). Every metric
#' depends only on the confusion counts, so a resample is drawn as
#' multinomial counts over the confusion cells (the same distribution as
#' resampling rows, at a fraction of the cost); resamples in which a metric
#' is undefined are left out of its interval. Where the bootstrap
#' degenerates to a single value (all predictions right, say), the interval
#' is the metric taken at the exact bounds of its precision and recall (F1),
#' or the mean of the per-class bounds (macro averages):
#' `"clopper-pearson bounds"`. The seed is applied locally: the global
#' random number generator is left untouched, and the same data give the
#' same intervals.
#'
#' **Groups.** On a grouped data frame (`dplyr::group_by()`, e.g. by gender
#' or by source) each group gets its own set of rows, with the group
#' columns first: the check that a classifier works as well for every group.
#'
#' @param data A data frame, e.g. from `augment()` on a classifier; may be
#'   grouped with `dplyr::group_by()`.
#' @param truth,estimate The true and predicted class: bare column names of
#'   `data` in `image_metrics()`, vectors of equal length in
#'   `image_metrics_vec()`.
#' @param ... Must be empty.
#' @param event_level With two classes, `"first"` or `"second"`: which class
#'   is the event that precision, recall and F1 are about.
#' @param conf_level Level of the intervals.
#' @param times Bootstrap resamples for F1 and the macro averages; `0` skips
#'   them (their intervals are then `NA`).
#' @param seed Random seed of the resamples.
#' @param na_rm Drop rows where `truth` or `estimate` is missing (e.g.
#'   images that couldn't be read); with `FALSE` any missing value makes
#'   every metric `NA`.
#' @return A tibble with `.metric` (`"accuracy"`, `"precision"`, `"recall"`,
#'   `"f1"`), `.estimator`, `.estimate`, `.lower`, `.upper`, `.method` (how
#'   the interval was made, see Intervals), plus `.class`
#'   with more than two classes, and group columns first for grouped data.
#' @seealso [confusion()] for the counts behind the numbers, [plot_errors()]
#'   to look at the mistakes.
#' @export
#' @examples
#' # The book's Table 6.1: a protest classifier on 815 validation images
#' val <- data.frame(
#'   truth = rep(c("protest", "protest", "no", "no"), c(374, 48, 72, 321)),
#'   predicted = rep(c("protest", "no", "protest", "no"), c(374, 48, 72, 321))
#' )
#' val$truth <- factor(val$truth, levels = c("protest", "no"))
#' image_metrics(val, truth, predicted)
#'
#' # By group, three classes
#' set.seed(2)
#' votes <- data.frame(
#'   source = rep(c("press", "social"), each = 60),
#'   truth = sample(c("crowd", "police", "fire"), 120, replace = TRUE)
#' )
#' votes$predicted <- ifelse(runif(120) < 0.7, votes$truth, "crowd")
#' image_metrics(dplyr::group_by(votes, source), truth, predicted, times = 500)
image_metrics <- function(data, ...) UseMethod("image_metrics")

#' @rdname image_metrics
#' @export
image_metrics.data.frame <- function(data, truth, estimate, ..., event_level = "first",
                                     conf_level = 0.95, times = 2000, seed = 1,
                                     na_rm = TRUE) {
  rlang::check_dots_empty()
  cols <- metric_columns(data, rlang::enquo(truth), rlang::enquo(estimate))
  x <- as_class_pair(data[[cols$truth]], data[[cols$estimate]])
  by_group(data, function(rows) {
    image_metrics_vec(x$truth[rows], x$estimate[rows], event_level = event_level,
                      conf_level = conf_level, times = times, seed = seed, na_rm = na_rm)
  })
}

#' @rdname image_metrics
#' @export
image_metrics_vec <- function(truth, estimate, event_level = "first", conf_level = 0.95,
                              times = 2000, seed = 1, na_rm = TRUE) {
  call <- caller_env()
  event_level <- check_choice(event_level, c("first", "second"), call = call)
  check_conf_level(conf_level, call)
  check_times(times, call)
  check_seed(seed, call = call)
  check_flag(na_rm, call = call)
  x <- as_class_pair(truth, estimate, call = call)
  layout <- metric_layout(levels(x$truth), event_level)
  complete <- !is.na(x$truth) & !is.na(x$estimate)
  if (!na_rm && !all(complete) || !any(complete)) return(metric_rows(layout, NA_real_))
  k <- nlevels(x$truth)
  counts <- cell_counts(x$truth[complete], x$estimate[complete], k)
  stats <- metric_stats(matrix(counts), layout)
  warn_undefined(layout, stats)
  metric_intervals(metric_rows(layout, stats), counts, layout, conf_level, times, seed)
}

# truth and estimate as factors over the union of their classes.
as_class_pair <- function(truth, estimate, call = caller_env()) {
  check_class_vector(truth, "truth", call)
  check_class_vector(estimate, "estimate", call)
  if (length(truth) != length(estimate)) {
    tv_abort("{.arg truth} and {.arg estimate} must have the same length, not {length(truth)} and {length(estimate)}.",
             class = "bad_argument", call = call)
  }
  lv <- union(class_levels_of(truth), class_levels_of(estimate))
  if (length(lv) < 2) {
    tv_abort(c("{.arg truth} and {.arg estimate} have {length(lv)} class{?es} ({.val {lv}}); metrics need at least two.",
               i = "To keep a class that no row has, make {.arg truth} a factor with it among its levels."),
             class = "one_class", call = call)
  }
  list(truth = factor(as.character(truth), levels = lv),
       estimate = factor(as.character(estimate), levels = lv))
}

class_levels_of <- function(x) {
  if (is.factor(x)) return(levels(x))
  if (is.logical(x)) return(c("TRUE", "FALSE"))
  sort(unique(x[!is.na(x)]))
}

check_class_vector <- function(x, arg, call) {
  if (!(is.factor(x) || is.character(x) || is.logical(x))) {
    tv_abort(c("{.arg {arg}} must hold classes (a factor, character or logical), not {.obj_type_friendly {x}}.",
               i = "Turn codes into classes first, e.g. {.code factor(x, levels = c(1, 0), labels = c(\"yes\", \"no\"))}."),
             class = "bad_argument", call = call)
  }
}

# Counts of each (truth, estimate) cell, truth-major: cell (t - 1) * k + e.
cell_counts <- function(truth, estimate, k) {
  tabulate((as.integer(truth) - 1L) * k + as.integer(estimate), nbins = k * k)
}

# Which statistic each output row holds.
metric_layout <- function(classes, event_level) {
  k <- length(classes)
  if (k == 2) {
    event <- if (event_level == "first") 1L else 2L
    return(tibble::tibble(.metric = c("accuracy", "precision", "recall", "f1"),
                          .estimator = "binary", .class = c(NA, classes[event], classes[event], classes[event]),
                          .k = c(NA, event, event, event)))
  }
  per_metric <- function(m) {
    tibble::tibble(.metric = m, .estimator = c("macro", rep("per_class", k)),
                   .class = c(NA, classes), .k = c(NA, seq_len(k)))
  }
  dplyr::bind_rows(
    tibble::tibble(.metric = "accuracy", .estimator = "multiclass", .class = NA_character_, .k = NA_integer_),
    per_metric("precision"), per_metric("recall"), per_metric("f1")
  )
}

# One row per layout row, one column per column of `counts` (a k^2 x B
# matrix of confusion counts: the data, or B bootstrap resamples).
metric_stats <- function(counts, layout) {
  k <- as.integer(round(sqrt(nrow(counts))))
  tp <- counts[(seq_len(k) - 1L) * k + seq_len(k), , drop = FALSE]
  predicted <- rowsum(counts, rep(seq_len(k), times = k))
  actual <- rowsum(counts, rep(seq_len(k), each = k))
  per_class <- list(
    precision = undefined_na(tp / predicted),
    recall = undefined_na(tp / actual),
    f1 = undefined_na(2 * tp / (predicted + actual))
  )
  per_class$f1[is.na(per_class$precision) | is.na(per_class$recall)] <- NA
  accuracy <- colSums(tp) / colSums(counts)
  present <- predicted + actual > 0
  out <- matrix(NA_real_, nrow(layout), ncol(counts))
  for (i in seq_len(nrow(layout))) {
    m <- layout$.metric[i]
    out[i, ] <- if (m == "accuracy") accuracy
      else if (layout$.estimator[i] == "macro") macro_mean(per_class[[m]], present)
      else per_class[[m]][layout$.k[i], ]
  }
  out
}

# The mean over the classes that occur in truth or estimate, the same
# classes for every metric, an undefined value counting as 0. (Leaving each
# metric's undefined classes out, as yardstick does, averages each metric
# over different classes, so macro F1 can exceed both macro precision and
# macro recall.) An undefined precision or recall has no true positive, so
# 0 is also what its F1 gives.
macro_mean <- function(per_class, present) {
  per_class[is.na(per_class)] <- 0
  undefined_na(colSums(per_class * present) / colSums(present))
}

undefined_na <- function(x) {
  x[is.nan(x)] <- NA
  x
}

metric_rows <- function(layout, estimate) {
  out <- tibble::tibble(.metric = layout$.metric, .estimator = layout$.estimator,
                        .estimate = as.vector(estimate), .lower = NA_real_, .upper = NA_real_,
                        .method = NA_character_)
  if (!identical(unique(layout$.estimator), "binary")) out$.class <- layout$.class
  out
}

percentile_interval <- function(boot, conf_level) {
  probs <- c((1 - conf_level) / 2, (1 + conf_level) / 2)
  bounds <- t(apply(boot, 1, function(x) {
    if (all(is.na(x))) return(c(NA_real_, NA_real_))
    stats::quantile(x, probs, na.rm = TRUE, names = FALSE)
  }))
  list(bounds[, 1], bounds[, 2])
}

warn_undefined <- function(layout, stats) {
  bad <- is.na(stats[, 1]) & layout$.metric %in% c("precision", "recall") & !is.na(layout$.k)
  if (!any(bad)) return(invisible())
  why <- ifelse(layout$.metric[bad] == "precision", "never predicted", "never true")
  tv_warn(c("Some metrics are undefined and are {.code NA}:",
            bullets_of(sprintf("%s of %s: the class is %s.", layout$.metric[bad],
                               layout$.class[bad], why)),
            i = if (!all(layout$.estimator == "binary")) "Macro averages count them as 0."),
          class = "undefined_metric")
}

# The truth and estimate column names, each exactly one column.
metric_columns <- function(data, truth, estimate, call = caller_env()) {
  if (!is.data.frame(data)) {
    tv_abort("{.arg data} must be a data frame, not {.obj_type_friendly {data}}.",
             class = "bad_argument", call = call)
  }
  list(truth = one_column(data, truth, "truth", call),
       estimate = one_column(data, estimate, "estimate", call))
}

one_column <- function(data, quo, arg, call) {
  if (rlang::quo_is_missing(quo)) {
    tv_abort("{.arg {arg}} is missing: name the column that holds it.",
             class = "missing_column", call = call)
  }
  col <- select_columns(data, quo, arg, max = 1, call = call)
  if (length(col) == 0) {
    tv_abort("{.arg {arg}} must name one column of the data.", class = "missing_column", call = call)
  }
  col
}

# fun(rows) for each group of `data`, group columns first.
by_group <- function(data, fun) {
  if (!dplyr::is_grouped_df(data)) return(fun(seq_len(nrow(data))))
  keys <- dplyr::group_keys(data)
  rows <- dplyr::group_rows(data)
  dplyr::bind_rows(lapply(seq_along(rows), function(i) {
    res <- fun(rows[[i]])
    dplyr::bind_cols(keys[rep(i, nrow(res)), ], res)
  }))
}

#' Confusion matrix as a tidy tibble
#'
#' Counts of every combination of true and predicted class, zeros
#' included, so the table has `k * k` rows for `k` classes (per group, for a
#' grouped data frame). `autoplot()` draws it as a heatmap with the counts
#' printed, shaded by the share of each true class (so rows are comparable
#' when classes are unbalanced).
#'
#' Classes follow [image_metrics()]: the union of `truth` and `estimate`,
#' in the order of `truth`'s levels. Rows where either is missing are left
#' out.
#'
#' @inheritParams image_metrics
#' @param truth,estimate Columns of `data` (bare names) with the true and
#'   predicted class.
#' @return A `tv_confusion` tibble with the group columns (if any), then
#'   `truth`, `prediction` (factors with every class as a level) and `n`.
#' @export
#' @examples
#' val <- data.frame(
#'   truth = c("cat", "cat", "dog", "dog", "dog", "bird"),
#'   predicted = c("cat", "dog", "dog", "dog", "cat", "bird")
#' )
#' cm <- confusion(val, truth, predicted)
#' cm
#' ggplot2::autoplot(cm)
confusion <- function(data, truth, estimate) {
  cols <- metric_columns(data, rlang::enquo(truth), rlang::enquo(estimate))
  x <- as_class_pair(data[[cols$truth]], data[[cols$estimate]])
  classes <- levels(x$truth)
  k <- length(classes)
  out <- by_group(data, function(rows) {
    ok <- rows[!is.na(x$truth[rows]) & !is.na(x$estimate[rows])]
    tibble::tibble(truth = factor(rep(classes, each = k), levels = classes),
                   prediction = factor(rep(classes, times = k), levels = classes),
                   n = cell_counts(x$truth[ok], x$estimate[ok], k))
  })
  tibble::new_tibble(out, class = "tv_confusion")
}

#' @rdname confusion
#' @param object A `tv_confusion` from `confusion()`.
#' @export
autoplot.tv_confusion <- function(object, ...) {
  d <- tibble::as_tibble(object)
  groups <- setdiff(names(d), c("truth", "prediction", "n"))
  row_total <- stats::ave(d$n, d[c(groups, "truth")], FUN = sum)
  d$share <- ifelse(row_total > 0, d$n / row_total, 0)
  p <- ggplot2::ggplot(d, ggplot2::aes(.data$prediction, .data$truth, fill = .data$share)) +
    ggplot2::geom_tile(colour = "white") +
    ggplot2::geom_text(ggplot2::aes(label = .data$n, colour = .data$share > 0.5)) +
    ggplot2::scale_fill_gradient(low = "grey96", high = "#2c7fb8", limits = c(0, 1),
                                 name = "Share of\ntrue class") +
    ggplot2::scale_colour_manual(values = c(`FALSE` = "black", `TRUE` = "white"), guide = "none") +
    ggplot2::scale_y_discrete(limits = rev) +
    ggplot2::labs(x = "Predicted", y = "Truth") +
    ggplot2::theme_minimal() +
    ggplot2::theme(panel.grid = ggplot2::element_blank())
  if (length(groups)) p <- p + ggplot2::facet_wrap(ggplot2::vars(!!!rlang::syms(groups)))
  p
}

#' One metric at a time, as yardstick's metric functions
#'
#' `image_accuracy()`, `image_precision()`, `image_recall()` and `image_f1()`
#' compose like yardstick's metrics: a data-frame method with tidy
#' evaluation that returns `.metric, .estimator, .estimate` (one row per
#' group of grouped data), over a `_vec` function that returns one number.
#' They give the numbers of [image_metrics()] without its bootstrap
#' intervals: with two classes, of the event class; with more, the macro
#' average over the same classes for every metric.
#'
#' @inheritParams image_metrics
#' @return The data-frame methods: a tibble. The `_vec` functions: one
#'   number (`NA` when undefined).
#' @export
#' @examples
#' val <- data.frame(truth = c("a", "a", "b", "b", "c"), predicted = c("a", "a", "b", "b", "a"))
#' image_f1(val, truth, predicted)
#' image_precision_vec(val$truth, val$predicted)
#' image_recall_vec(val$truth, val$predicted)
image_accuracy <- function(data, ...) UseMethod("image_accuracy")

#' @rdname image_accuracy
#' @export
image_precision <- function(data, ...) UseMethod("image_precision")

#' @rdname image_accuracy
#' @export
image_recall <- function(data, ...) UseMethod("image_recall")

#' @rdname image_accuracy
#' @export
image_f1 <- function(data, ...) UseMethod("image_f1")

# The default method of the metrics: `data` is not a data frame.
metric_default <- function(fn) {
  force(fn)
  function(data, ...) {
    abort_no_method(data, fn, cli::format_inline(
      "a data frame with a truth and an estimate column (for two vectors, use {.fn {fn}_vec})"), arg = "data")
  }
}

# The data-frame method and the `_vec` function of one metric.
metric_df_method <- function(metric) {
  force(metric)
  function(data, truth, estimate, ..., event_level = "first", na_rm = TRUE) {
    rlang::check_dots_empty()
    cols <- metric_columns(data, rlang::enquo(truth), rlang::enquo(estimate))
    x <- as_class_pair(data[[cols$truth]], data[[cols$estimate]])
    by_group(data, function(rows) {
      out <- image_metrics_vec(x$truth[rows], x$estimate[rows], event_level = event_level,
                               times = 0, na_rm = na_rm)
      out[summary_row(out, metric), c(".metric", ".estimator", ".estimate")]
    })
  }
}

metric_vec <- function(metric) {
  force(metric)
  function(truth, estimate, event_level = "first", na_rm = TRUE) {
    out <- image_metrics_vec(truth, estimate, event_level = event_level, times = 0, na_rm = na_rm)
    out$.estimate[summary_row(out, metric)]
  }
}

summary_row <- function(out, metric) which(out$.metric == metric & out$.estimator != "per_class")

#' @rdname image_accuracy
#' @export
image_accuracy.data.frame <- metric_df_method("accuracy")
#' @rdname image_accuracy
#' @export
image_precision.data.frame <- metric_df_method("precision")
#' @rdname image_accuracy
#' @export
image_recall.data.frame <- metric_df_method("recall")
#' @rdname image_accuracy
#' @export
image_f1.data.frame <- metric_df_method("f1")
#' @export
image_metrics.default <- metric_default("image_metrics")
#' @export
image_accuracy.default <- metric_default("image_accuracy")
#' @export
image_precision.default <- metric_default("image_precision")
#' @export
image_recall.default <- metric_default("image_recall")
#' @export
image_f1.default <- metric_default("image_f1")
#' @rdname image_accuracy
#' @export
image_accuracy_vec <- metric_vec("accuracy")
#' @rdname image_accuracy
#' @export
image_precision_vec <- metric_vec("precision")
#' @rdname image_accuracy
#' @export
image_recall_vec <- metric_vec("recall")
#' @rdname image_accuracy
#' @export
image_f1_vec <- metric_vec("f1")
