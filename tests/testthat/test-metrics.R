# The book's Table 6.1: 374 protests found, 48 missed, 72 false alarms,
# 321 non-protests rightly left alone.
table_6_1 <- function() {
  tibble::tibble(
    truth = factor(rep(c("protest", "protest", "no", "no"), c(374, 48, 72, 321)),
                   levels = c("protest", "no")),
    predicted = rep(c("protest", "no", "protest", "no"), c(374, 48, 72, 321))
  )
}

estimate_of <- function(m, metric, estimator = NULL, class = NULL) {
  keep <- m$.metric == metric
  if (!is.null(estimator)) keep <- keep & m$.estimator == estimator
  if (!is.null(class)) keep <- keep & m$.class %in% class
  m$.estimate[keep]
}

test_that("binary metrics reproduce the book's Table 6.1", {
  m <- image_metrics(table_6_1(), truth, predicted)
  expect_named(m, c(".metric", ".estimator", ".estimate", ".lower", ".upper", ".method"))
  expect_equal(m$.metric, c("accuracy", "precision", "recall", "f1"))
  expect_equal(m$.estimator, rep("binary", 4))
  expect_equal(round(m$.estimate[1:3], 3), c(0.853, 0.839, 0.886))
  expect_equal(m$.estimate, c(695 / 815, 374 / 446, 374 / 422, 2 * 374 / (446 + 422)))
  expect_true(all(m$.lower < m$.estimate & m$.estimate < m$.upper))
  # The normal-approximation interval of the accuracy, roughly.
  se <- sqrt(695 / 815 * (1 - 695 / 815) / 815)
  expect_equal(m$.lower[1], 695 / 815 - 1.96 * se, tolerance = 0.01)
  expect_equal(m$.upper[1], 695 / 815 + 1.96 * se, tolerance = 0.01)

  second <- image_metrics(table_6_1(), truth, predicted, event_level = "second")
  expect_equal(second$.estimate, c(695 / 815, 321 / 369, 321 / 393, 2 * 321 / (369 + 393)))
  expect_equal(image_metrics_vec(table_6_1()$truth, table_6_1()$predicted), m)
})

test_that("classes: factor levels first, characters sorted, logicals TRUE first", {
  chr <- image_metrics_vec(c("b", "b", "a", "a"), c("b", "a", "a", "a"), times = 0)
  expect_equal(chr$.estimate[2:3], c(2 / 3, 1)) # event "a": 2 of 3 predicted a are a
  lgl <- image_metrics_vec(c(TRUE, TRUE, FALSE, FALSE), c(TRUE, FALSE, FALSE, FALSE), times = 0)
  expect_equal(lgl$.estimate[2:3], c(1, 1 / 2)) # event TRUE
  lgl2 <- image_metrics_vec(c(TRUE, TRUE, FALSE, FALSE), c(TRUE, FALSE, FALSE, FALSE),
                            event_level = "second", times = 0)
  expect_equal(lgl2$.estimate[2:3], c(2 / 3, 1))
  # A class only predicted joins the classes (after truth's): three classes.
  expect_warning(
    union <- image_metrics_vec(factor(c("x", "y", "x")), c("x", "y", "z"), times = 0),
    "recall of z: the class is never true"
  )
  expect_equal(union$.class[union$.estimator == "per_class"][1:3], c("x", "y", "z"))
  expect_identical(
    image_metrics_vec(c("a", "b"), factor(c("a", "a"), levels = c("a", "b")), times = 0),
    image_metrics_vec(factor(c("a", "b")), c("a", "a"), times = 0)
  )
})

test_that("multiclass metrics match hand computations, per class and macro", {
  truth <- c("a", "a", "a", "b", "b", "c")
  est <- c("a", "b", "a", "b", "c", "c")
  m <- image_metrics_vec(truth, est, times = 200)
  expect_named(m, c(".metric", ".estimator", ".estimate", ".lower", ".upper", ".method", ".class"))
  expect_equal(nrow(m), 1 + 3 * 4)
  expect_equal(estimate_of(m, "accuracy", "multiclass"), 4 / 6)
  prec <- c(a = 1, b = 1 / 2, c = 1 / 2)
  rec <- c(a = 2 / 3, b = 1 / 2, c = 1)
  f1 <- 2 * prec * rec / (prec + rec)
  expect_equal(estimate_of(m, "precision", "per_class", names(prec)), unname(prec))
  expect_equal(estimate_of(m, "recall", "per_class", names(rec)), unname(rec))
  expect_equal(estimate_of(m, "f1", "per_class", names(f1)), unname(f1))
  expect_equal(estimate_of(m, "precision", "macro"), mean(prec))
  expect_equal(estimate_of(m, "recall", "macro"), mean(rec))
  expect_equal(estimate_of(m, "f1", "macro"), mean(f1))
  expect_true(all(is.na(m$.class[m$.estimator != "per_class"])))
  expect_equal(m$.class[m$.estimator == "per_class"], rep(c("a", "b", "c"), 3))
  ok <- !is.na(m$.lower)
  expect_true(all(m$.lower[ok] <= m$.estimate[ok] & m$.estimate[ok] <= m$.upper[ok]))
})

test_that("undefined metrics are NA with a classed warning, not a crash", {
  expect_warning(
    m <- image_metrics_vec(factor(c("yes", "yes", "no", "no"), levels = c("yes", "no")),
                           c("no", "no", "no", "no")),
    class = "tidyvision_warning_undefined_metric"
  )
  expect_equal(m$.estimate[1], 0.5)
  expect_true(is.na(m$.estimate[2]) && is.na(m$.lower[2]) && is.na(m$.upper[2]))
  expect_equal(m$.estimate[3], 0)
  expect_true(is.na(m$.estimate[4]))

  # Multiclass: class "c" never predicted; its precision counts as 0 in the macro.
  expect_warning(
    mc <- image_metrics_vec(c("a", "b", "c", "a"), c("a", "b", "a", "a"), times = 100),
    "count them as 0", class = "tidyvision_warning_undefined_metric"
  )
  expect_true(is.na(estimate_of(mc, "precision", "per_class", "c")))
  expect_equal(estimate_of(mc, "precision", "macro"), mean(c(2 / 3, 1, 0)))
  expect_equal(estimate_of(mc, "recall", "macro"), mean(c(1, 1, 0)))
})

test_that("macro averages run over the same classes, so F1 lies between precision and recall", {
  truth <- c("a", "a", "b", "b", "c")
  pred <- c("a", "a", "b", "b", "a")
  expect_warning(m <- image_metrics_vec(truth, pred, times = 200),
                 "precision of c", class = "tidyvision_warning_undefined_metric")
  precision <- estimate_of(m, "precision", "macro")
  recall <- estimate_of(m, "recall", "macro")
  f1 <- estimate_of(m, "f1", "macro")
  expect_equal(c(precision, recall, f1), c(mean(c(2 / 3, 1, 0)), mean(c(1, 1, 0)), mean(c(0.8, 1, 0))))
  expect_true(f1 >= min(precision, recall) && f1 <= max(precision, recall))
  # A level that no row has is in no average (nothing to get right or wrong).
  expect_warning(m4 <- image_metrics_vec(factor(truth, levels = c("a", "b", "c", "d")), pred, times = 0),
                 class = "tidyvision_warning_undefined_metric")
  expect_equal(estimate_of(m4, "f1", "macro"), f1)
  # Intervals bracket the estimates.
  macro <- m[m$.estimator == "macro", ]
  expect_true(all(macro$.lower <= macro$.estimate & macro$.estimate <= macro$.upper))
})

test_that("missing values are dropped, or poison every metric with na_rm = FALSE", {
  truth <- c("a", "b", NA, "a", "b")
  est <- c("a", "b", "b", NA, "a")
  expect_equal(image_metrics_vec(truth, est, times = 0),
               image_metrics_vec(truth[c(1, 2, 5)], est[c(1, 2, 5)], times = 0))
  expect_true(all(is.na(image_metrics_vec(truth, est, na_rm = FALSE)$.estimate)))
  expect_true(all(is.na(image_metrics_vec(c(NA, "a"), c("b", NA))$.estimate)))
})

test_that("intervals are seeded, leave the global RNG alone and can be skipped", {
  d <- table_6_1()
  set.seed(42)
  before <- .Random.seed
  a <- image_metrics(d, truth, predicted, seed = 7)
  expect_identical(.Random.seed, before)
  expect_identical(image_metrics(d, truth, predicted, seed = 7), a)
  expect_false(identical(image_metrics(d, truth, predicted, seed = 8)$.lower, a$.lower))
  narrow <- image_metrics(d, truth, predicted, conf_level = 0.5)
  expect_true(all(narrow$.upper - narrow$.lower < a$.upper - a$.lower))
  none <- image_metrics(d, truth, predicted, times = 0)
  expect_equal(none$.estimate, a$.estimate)
  expect_equal(none[1:3, ], a[1:3, ])  # exact intervals need no resamples
  expect_true(is.na(none$.lower[4]) && is.na(none$.upper[4]) && is.na(none$.method[4]))
})

test_that("proportions get exact intervals that never collapse; F1 falls back when the bootstrap does", {
  d <- table_6_1()
  m <- image_metrics(d, truth, predicted)
  expect_equal(m$.method, c("clopper-pearson", "clopper-pearson", "clopper-pearson", "bootstrap"))
  # accuracy 695 of 815; precision 374 of 446 predicted protest; recall 374 of 422 protests
  exact <- rbind(binom.test(695, 815)$conf.int, binom.test(374, 446)$conf.int, binom.test(374, 422)$conf.int)
  expect_equal(unname(cbind(m$.lower, m$.upper)[1:3, ]), unname(exact[, 1:2]), tolerance = 1e-10)
  # 28 of 28 right: 0.877 to 1, not [1, 1].
  perfect <- image_metrics_vec(rep(c("a", "b"), c(28, 7)), rep(c("a", "b"), c(28, 7)))
  expect_equal(perfect$.lower[2], 0.025^(1 / 28), tolerance = 1e-10)
  expect_equal(round(perfect$.lower[2], 3), 0.877)
  expect_true(all(perfect$.upper == 1 & perfect$.lower < 1))
  # F1's bootstrap is [1, 1] there: its interval is F1 at precision's and recall's exact bounds.
  expect_equal(perfect$.method[4], "clopper-pearson bounds")
  p_lo <- perfect$.lower[2]
  expect_equal(perfect$.lower[4], 2 * p_lo * p_lo / (2 * p_lo))
  # A group of 35 with every prediction right has a proper interval too.
  g <- tibble::tibble(src = rep(c("x", "y"), c(35, 40)), truth = rep(c("a", "b", "a", "b"), c(20, 15, 20, 20)))
  g$est <- g$truth
  g$est[36:41] <- "b"
  by <- image_metrics(dplyr::group_by(g, src), truth, est)
  x <- by[by$src == "x", ]
  expect_true(all(x$.upper - x$.lower > 0.05))
  # Macro rows fall back to the mean of the per-class bounds.
  three <- image_metrics_vec(rep(c("a", "b", "c"), 10), rep(c("a", "b", "c"), 10))
  macro_f1 <- three[three$.metric == "f1" & three$.estimator == "macro", ]
  per_f1 <- three[three$.metric == "f1" & three$.estimator == "per_class", ]
  expect_equal(macro_f1$.method, "clopper-pearson bounds")
  expect_equal(macro_f1$.lower, mean(per_f1$.lower))
})

test_that("the 95% interval covers the true accuracy in about 95% of samples", {
  covered <- withr::with_seed(11, vapply(seq_len(200), function(i) {
    truth <- sample(c("a", "b"), 150, replace = TRUE)
    right <- stats::runif(150) < 0.8 # true accuracy 0.8
    est <- ifelse(right, truth, ifelse(truth == "a", "b", "a"))
    m <- image_metrics_vec(truth, est, times = 400, seed = i)
    m$.lower[1] <= 0.8 && 0.8 <= m$.upper[1]
  }, logical(1)))
  expect_gte(mean(covered), 0.88)
  expect_lte(mean(covered), 0.99)
})

test_that("grouped data give one set of metrics per group, group columns first", {
  d <- table_6_1()
  d$gender <- rep(c("f", "m"), length.out = nrow(d))
  g <- image_metrics(dplyr::group_by(d, gender), truth, predicted, times = 300)
  expect_named(g, c("gender", ".metric", ".estimator", ".estimate", ".lower", ".upper", ".method"))
  expect_equal(g$gender, rep(c("f", "m"), each = 4))
  for (sex in c("f", "m")) {
    alone <- image_metrics(d[d$gender == sex, ], truth, predicted, times = 300)
    expect_equal(g[g$gender == sex, -1], alone)
  }
  # Classes come from the whole data, so a group missing a class keeps it.
  votes <- tibble::tibble(src = c("x", "x", "y", "y"), truth = c("a", "b", "c", "c"),
                          est = c("a", "b", "c", "a"))
  per <- suppressWarnings(image_metrics(dplyr::group_by(votes, src), truth, est, times = 0))
  expect_equal(nrow(per), 2 * 13)
})

test_that("bad input gets classed errors that name the problem", {
  d <- table_6_1()
  expect_error(image_metrics(d, truth, nope), class = "tidyvision_error_missing_column")
  expect_error(image_metrics(d, truth), class = "tidyvision_error_missing_column")
  expect_error(image_metrics(d, truth, predicted, event_level = "last"))
  expect_error(image_metrics(d, truth, predicted, conf_level = 95), class = "tidyvision_error_bad_argument")
  expect_error(image_metrics(d, truth, predicted, times = -1), class = "tidyvision_error_bad_argument")
  expect_error(image_metrics(d, truth, predicted, 0.9))
  expect_error(image_metrics_vec(c("a", "a"), c("a", "a")), class = "tidyvision_error_one_class")
  expect_error(image_metrics_vec(1:3, 1:3), class = "tidyvision_error_bad_argument")
  expect_error(image_metrics_vec(c("a", "b"), "a"), class = "tidyvision_error_bad_argument")
  expect_snapshot(error = TRUE, {
    image_metrics(d, truth, nope)
    image_metrics_vec(c("a", "a"), c("a", "a"))
    image_metrics_vec(c(0, 1), c(1, 1))
  })
})

test_that("confusion() counts every cell, zeros included, per group", {
  d <- tibble::tibble(
    truth = c("cat", "cat", "dog", "dog", "dog", "bird"),
    predicted = c("cat", "dog", "dog", "dog", "cat", "bird"),
    site = c(1, 1, 1, 2, 2, 2)
  )
  cm <- confusion(d, truth, predicted)
  expect_s3_class(cm, c("tv_confusion", "tbl_df"))
  expect_named(cm, c("truth", "prediction", "n"))
  expect_equal(levels(cm$truth), c("bird", "cat", "dog"))
  expect_equal(levels(cm$prediction), c("bird", "cat", "dog"))
  expect_equal(as.character(cm$truth), rep(c("bird", "cat", "dog"), each = 3))
  expect_equal(as.character(cm$prediction), rep(c("bird", "cat", "dog"), 3))
  # bird->bird 1; cat->cat 1, cat->dog 1; dog->cat 1, dog->dog 2
  expect_equal(cm$n, c(1, 0, 0, 0, 1, 1, 0, 1, 2))
  expect_equal(sum(cm$n), nrow(d))

  by_site <- confusion(dplyr::group_by(d, site), truth, predicted)
  expect_named(by_site, c("site", "truth", "prediction", "n"))
  expect_equal(by_site$n[by_site$site == 1], c(0, 0, 0, 0, 1, 1, 0, 0, 1))
  expect_equal(by_site$n[by_site$site == 2], c(1, 0, 0, 0, 0, 0, 0, 1, 1))

  lgl <- confusion(tibble::tibble(t = c(TRUE, FALSE, NA), e = c(TRUE, TRUE, FALSE)), t, e)
  expect_equal(levels(lgl$truth), c("TRUE", "FALSE"))
  expect_equal(lgl$n, c(1, 0, 1, 0))
  expect_error(confusion(d, truth, nope), class = "tidyvision_error_missing_column")
})

test_that("autoplot() of a confusion matrix is a heatmap with the counts", {
  d <- tibble::tibble(truth = c("a", "a", "b", "b", "b"), est = c("a", "b", "b", "b", "a"),
                      g = c("u", "u", "u", "v", "v"))
  p <- autoplot(confusion(d, truth, est))
  expect_s3_class(p, "ggplot")
  built <- ggplot2::ggplot_build(p)
  expect_s3_class(p$layers[[1]]$geom, "GeomTile")
  expect_equal(sort(as.numeric(built$data[[2]]$label)), sort(c(1, 1, 1, 2)))
  expect_equal(sort(p$data$share), sort(c(1 / 2, 1 / 2, 1 / 3, 2 / 3)))
  pg <- autoplot(confusion(dplyr::group_by(d, g), truth, est))
  expect_equal(nrow(ggplot2::ggplot_build(pg)$layout$layout), 2)
})

test_that("one-metric functions give image_metrics()'s numbers, by group too", {
  d <- tibble::tibble(truth = c("a", "a", "b", "b", "c", "c"), est = c("a", "a", "b", "b", "a", "c"),
                      g = c("u", "u", "u", "v", "v", "v"))
  full <- image_metrics(d, truth, est, times = 0)
  macro <- function(m) full$.estimate[full$.metric == m & full$.estimator %in% c("macro", "multiclass")]
  expect_equal(image_accuracy_vec(d$truth, d$est), 5 / 6)
  for (m in c("precision", "recall", "f1")) {
    vec <- get(paste0("image_", m, "_vec"))
    expect_equal(vec(d$truth, d$est), macro(m))
    df <- get(paste0("image_", m))(d, truth, est)
    expect_named(df, c(".metric", ".estimator", ".estimate"))
    expect_equal(df$.estimate, macro(m))
    expect_equal(df$.estimator, "macro")
  }
  bin <- table_6_1()
  expect_equal(image_precision_vec(bin$truth, bin$predicted), 374 / (374 + 72))
  expect_equal(image_recall(bin, truth, predicted, event_level = "second")$.estimate, 321 / (321 + 72))
  grouped <- suppressWarnings(image_accuracy(dplyr::group_by(d, g), truth, est))
  expect_equal(grouped$g, c("u", "v"))
  expect_equal(grouped$.estimate, c(1, 2 / 3))
  expect_error(image_f1(d, truth, nope), class = "tidyvision_error_missing_column")
})

test_that("the engine's epoch metrics (history) agree with image_metrics()", {
  skip_if_no_engine()
  set.seed(4)
  for (k in c(2, 3, 5)) {
    for (rep in 1:5) {
      n <- sample(5:40, 1)
      # Few rows over many classes, so some classes are never true or never predicted.
      y <- sample.int(k, n, replace = TRUE) - 1L
      pred <- ifelse(runif(n) < 0.6, y, sample.int(k, n, replace = TRUE) - 1L)
      py <- tidyvision:::engine_call("fine_tune.epoch_metrics", as.list(y),
                                     as.list(as.integer(pred)), as.integer(k))
      lv <- as.character(seq_len(k) - 1L)
      r <- suppressWarnings(image_metrics_vec(factor(y, levels = lv), factor(pred, levels = lv), times = 0))
      r <- r[r$.estimator != "per_class", ]
      for (m in c("accuracy", "precision", "recall", "f1")) {
        expected <- r$.estimate[r$.metric == m]
        got <- if (is.null(py[[m]]) || is.nan(py[[m]])) NA_real_ else py[[m]]
        expect_equal(got, expected, info = paste(k, "classes,", m))
      }
    }
  }
})
