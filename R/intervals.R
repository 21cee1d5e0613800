# Intervals of image_metrics(). Accuracy, precision and recall are binomial
# proportions (right of all, true positives of predicted, of actual): they get
# the exact Clopper-Pearson interval, which stays wide when every prediction
# is right (28 of 28: 0.877 to 1), where a percentile bootstrap collapses to
# [1, 1]. F1 and the macro averages are no single proportion: they keep the
# percentile bootstrap, and where it degenerates (zero width) fall back to
# the metric taken at the exact bounds of its precision and recall.

METHOD_EXACT <- "clopper-pearson"
METHOD_BOOT <- "bootstrap"
METHOD_FALLBACK <- "clopper-pearson bounds"

# Successes and trials behind each layout row (NA for F1 and macro rows).
binomial_counts <- function(counts, layout) {
  k <- as.integer(round(sqrt(length(counts))))
  m <- matrix(counts, k, k)  # rows: estimate, columns: truth (cell_counts' order)
  tp <- diag(m)
  x <- n <- rep(NA_real_, nrow(layout))
  for (i in seq_len(nrow(layout))) {
    j <- layout$.k[i]
    metric <- layout$.metric[i]
    if (metric == "accuracy") {
      x[i] <- sum(tp)
      n[i] <- sum(m)
    } else if (!is.na(j) && metric %in% c("precision", "recall")) {
      x[i] <- tp[j]
      n[i] <- if (metric == "precision") sum(m[j, ]) else sum(m[, j])
    }
  }
  list(x = x, n = n)
}

clopper_pearson <- function(x, n, conf_level) {
  alpha <- 1 - conf_level
  ok <- !is.na(x) & !is.na(n) & n > 0
  lower <- upper <- rep(NA_real_, length(x))
  lower[ok] <- ifelse(x[ok] == 0, 0, stats::qbeta(alpha / 2, x[ok], n[ok] - x[ok] + 1))
  upper[ok] <- ifelse(x[ok] == n[ok], 1, stats::qbeta(1 - alpha / 2, x[ok] + 1, n[ok] - x[ok]))
  list(lower, upper)
}

# .lower, .upper and .method of every row: exact where binomial, bootstrap
# (times > 0) elsewhere, the exact bounds where the bootstrap degenerates.
metric_intervals <- function(out, counts, layout, conf_level, times, seed) {
  bin <- binomial_counts(counts, layout)
  exact <- clopper_pearson(bin$x, bin$n, conf_level)
  binomial <- !is.na(bin$n)
  out$.lower <- exact[[1]]
  out$.upper <- exact[[2]]
  out$.method <- ifelse(binomial, METHOD_EXACT, NA_character_)
  if (times == 0 || all(binomial)) return(out)
  boot <- withr::with_seed(seed, stats::rmultinom(times, sum(counts), counts))
  bounds <- percentile_interval(metric_stats(boot, layout), conf_level)
  rest <- !binomial & !is.na(bounds[[1]])
  out$.lower[rest] <- bounds[[1]][rest]
  out$.upper[rest] <- bounds[[2]][rest]
  out$.method[rest] <- METHOD_BOOT
  flat <- rest & bounds[[2]] - bounds[[1]] <= 0
  # Per-class rows first: a macro fallback averages them.
  for (rows in list(flat & layout$.estimator != "macro", flat & layout$.estimator == "macro")) {
    if (!any(rows)) next
    fallback <- fallback_bounds(out, layout)
    out$.lower[rows] <- fallback$lower[rows]
    out$.upper[rows] <- fallback$upper[rows]
    out$.method[rows] <- METHOD_FALLBACK
  }
  out
}

# F1 at the exact bounds of precision and recall (F1 rises with both), and
# macro averages as the mean of the per-class bounds (undefined as 0).
fallback_bounds <- function(out, layout) {
  lower <- upper <- rep(NA_real_, nrow(layout))
  bound <- function(metric, k, col) {
    row <- which(layout$.metric == metric & layout$.k == k)
    if (length(row)) out[[col]][row[1]] else NA_real_
  }
  f1 <- function(p, r) ifelse(p + r > 0, 2 * p * r / (p + r), 0)
  for (i in seq_len(nrow(layout))) {
    k <- layout$.k[i]
    metric <- layout$.metric[i]
    if (metric == "f1" && !is.na(k)) {
      lower[i] <- f1(bound("precision", k, ".lower"), bound("recall", k, ".lower"))
      upper[i] <- f1(bound("precision", k, ".upper"), bound("recall", k, ".upper"))
    } else if (identical(layout$.estimator[i], "macro")) {
      rows <- layout$.metric == metric & layout$.estimator == "per_class"
      lower[i] <- mean(replace(out$.lower[rows], is.na(out$.lower[rows]), 0))
      upper[i] <- mean(replace(out$.upper[rows], is.na(out$.upper[rows]), 0))
    }
  }
  list(lower = lower, upper = upper)
}
