test_that("estimate_prevalence() corrects the naive count and PPI++ beats the coded sample alone", {
  skip_if_no_engine()
  corpus <- sim_corpus(probs = TRUE)
  coded <- code_sample(corpus, sample_for_coding(corpus, n = 300, seed = 2))
  est <- estimate_prevalence(corpus[c("path", ".pred_class", ".pred_other", ".pred_protest")], coded, label,
                             method = "all")
  expect_s3_class(est, "tv_estimate")
  expect_named(est, c("class", ".estimate", ".lower", ".upper", "method", "n_coded", "n_predicted"))
  expect_equal(nrow(est), 8)
  expect_equal(unique(est$n_coded), 300L)
  expect_equal(unique(est$n_predicted), 3000L)
  expect_identical(attr(est, "prediction"), "probability")
  share <- mean(corpus$truth == "protest")
  p <- est[est$class == "protest", ]
  naive <- p[p$method == "naive", ]
  ppi <- p[p$method == "ppi++", ]
  expect_equal(naive$.estimate, mean(corpus$.pred_class == "protest"))
  expect_true(naive$.lower > share)  # biased upwards, and its interval misses
  expect_true(ppi$.lower < share && share < ppi$.upper)
  expect_lt(ppi$.upper - ppi$.lower, p$.upper[p$method == "classical"] - p$.lower[p$method == "classical"])
  # shares of the two classes add up to one
  expect_equal(sum(est$.estimate[est$method == "ppi"]), 1)
})

test_that("PPI intervals cover the true share (1,000 simulated corpora) and the naive ones don't", {
  skip_if_no_engine()
  res <- tidyvision:::engine_call("estimates.simulate_coverage", share = 0.25, sensitivity = 0.85,
                                  specificity = 0.9, n_corpus = 3000L, n_coded = 250L, reps = 1000L, seed = 5L)
  cov <- setNames(unlist(res$coverage), unlist(res$method))
  expect_gte(cov[["ppi++"]], 0.93); expect_lte(cov[["ppi++"]], 0.97)
  expect_gte(cov[["ppi"]], 0.93); expect_lte(cov[["ppi"]], 0.97)
  expect_lt(cov[["naive"]], 0.8)
  # and through the verb itself, on fewer corpora
  hits <- vapply(1:40, function(i) {
    corpus <- sim_corpus(n = 1500, seed = 100 + i)
    coded <- code_sample(corpus, sample_for_coding(corpus, n = 150, seed = i))
    e <- estimate_prevalence(corpus, coded, label, method = "all")
    e <- e[e$class == "protest", ]
    (e$.lower <= 0.3 & 0.3 <= e$.upper)[match(c("ppi++", "naive"), e$method)]
  }, logical(2))
  expect_gte(mean(hits[1, ]), 0.85)
  expect_lt(mean(hits[2, ]), 0.2)
})

test_that("PPI on 0/1 predictions equals the hand computation", {
  skip_if_no_engine()
  corpus <- sim_corpus(n = 60, seed = 3)
  coded <- code_sample(corpus, sample_for_coding(corpus, n = 25, seed = 1))
  est <- estimate_prevalence(corpus, coded, label, method = "ppi", level = 0.9)
  est <- est[est$class == "protest", ]
  yhat <- as.numeric(corpus$.pred_class == "protest")
  at <- match(coded$path, corpus$path)
  err <- as.numeric(coded$label == "protest") - yhat[at]
  sd_pop <- function(x) sqrt(mean((x - mean(x))^2))
  # the mean prediction over the 35 uncoded images plus the mean error on the 25 coded
  se <- sqrt(sd_pop(yhat[-at])^2 / 35 + sd_pop(err)^2 / 25)
  expect_equal(est$.estimate, mean(yhat[-at]) + mean(err))
  expect_equal(c(est$.lower, est$.upper), mean(yhat[-at]) + mean(err) + c(-1, 1) * qnorm(0.95) * se)
  expect_identical(attr(est, "prediction"), "class")
})

test_that("grouped predictions give one estimate per group", {
  skip_if_no_engine()
  corpus <- sim_corpus(n = 2000)
  corpus$source <- rep(c("press", "social"), each = 1000)
  coded <- code_sample(corpus, sample_for_coding(corpus, n = 200))
  est <- estimate_prevalence(dplyr::group_by(corpus, source), coded, label)
  expect_named(est, c("source", "class", ".estimate", ".lower", ".upper", "method", "n_coded", "n_predicted"))
  expect_equal(est$n_predicted, rep(1000L, 4))
  expect_equal(sum(unique(est[c("source", "n_coded")])$n_coded), 200)
})

test_that("sample_for_coding() draws reproducibly, stratified samples are weighted", {
  corpus <- sim_corpus(n = 1000)
  a <- sample_for_coding(corpus, n = 50, seed = 4)
  expect_identical(a, sample_for_coding(corpus, n = 50, seed = 4))
  expect_false(identical(a$path, sample_for_coding(corpus, n = 50, seed = 5)$path))
  expect_named(a, c("path", ".inclusion_prob", ".weight"))  # no predictions shown to coders
  expect_equal(unique(a$.inclusion_prob), 50 / 1000)
  s <- sample_for_coding(corpus, n = 60, strata = .pred_class)
  n_h <- table(corpus$.pred_class)
  expect_equal(as.vector(table(s$.pred_class)), c(30, 30))
  expect_equal(s$.weight, as.vector(n_h[as.character(s$.pred_class)]) / 30)
  expect_equal(tidyvision:::equal_allocation(10, c(2, 50, 50)), c(2L, 4L, 4L))
  expect_error(sample_for_coding(corpus, n = 5000), class = "tidyvision_error_bad_argument")
})

test_that("a stratified sample is weighted back to the corpus", {
  skip_if_no_engine()
  corpus <- sim_corpus(n = 3000, share = 0.1)
  s <- code_sample(corpus, sample_for_coding(corpus, n = 200, strata = .pred_class, seed = 3))
  est <- estimate_prevalence(corpus, s, label, method = c("classical"))
  y <- s$label == "protest"
  expect_equal(est$.estimate[est$class == "protest"], sum(s$.weight * y) / sum(s$.weight))
  expect_identical(attr(est, "sampling"), "stratified")
  # unweighted, the oversampled predicted protests would inflate the share
  expect_lt(est$.estimate[est$class == "protest"], mean(y))
})

test_that("estimate_regression() equals lm() and glm() when every image is coded", {
  skip_if_no_engine()
  corpus <- sim_corpus(n = 400, seed = 8)
  meta <- tibble::tibble(path = corpus$path, x = withr::with_seed(1, rnorm(400)))
  all_coded <- corpus
  all_coded$label <- corpus$truth
  all_coded$.inclusion_prob <- 1
  y <- as.numeric(corpus$truth == "protest")
  lin <- estimate_regression(label ~ x, corpus, all_coded, data = meta, event = "protest", method = "all")
  expect_named(lin, c("term", "estimate", "std.error", "conf.low", "conf.high", "method"))
  ols <- stats::lm(y ~ meta$x)
  for (m in c("classical", "ppi", "ppi++")) {
    expect_equal(lin$estimate[lin$method == m], unname(coef(ols)), tolerance = 1e-8)
  }
  # classical standard errors are HC0 sandwich errors
  X <- stats::model.matrix(ols)
  bread <- solve(crossprod(X))
  hc0 <- sqrt(diag(bread %*% crossprod(X * residuals(ols)) %*% bread))
  expect_equal(lin$std.error[lin$method == "classical"], unname(hc0), tolerance = 1e-6)
  logit <- estimate_regression(label ~ x, corpus, all_coded, data = meta, family = "binomial",
                               event = "protest", method = "classical")
  expect_equal(logit$estimate, unname(coef(stats::glm(y ~ meta$x, family = binomial()))), tolerance = 1e-4)
  expect_equal(logit$term, c("(Intercept)", "x"))
})

# The researcher's data: retweets rise with protest images and followers.
sim_retweets <- function(corpus, seed = 2) {
  withr::with_seed(seed, {
    z <- as.numeric(corpus$truth == "protest")
    followers <- rnorm(nrow(corpus)) + 0.5 * z
    tibble::tibble(path = corpus$path, followers = followers,
                   retweets = 1 + 0.5 * z + 0.3 * followers + rnorm(nrow(corpus)),
                   viral = as.numeric(retweets > 1.5))
  })
}

test_that("estimate_regression() takes the image label as a covariate", {
  skip_if_no_engine()
  corpus <- sim_corpus(n = 2000, seed = 4)
  meta <- sim_retweets(corpus)
  coded <- code_sample(corpus, sample_for_coding(corpus, n = 200, seed = 1))
  est <- estimate_regression(retweets ~ label + followers, corpus, coded, data = meta, event = "protest",
                             method = "all", times = 200)
  expect_named(est, c("term", "estimate", "std.error", "conf.low", "conf.high", "method"))
  expect_equal(est$term, rep(c("(Intercept)", "label", "followers"), 4))
  expect_equal(est$method, rep(c("naive", "classical", "ppi", "ppi++"), each = 3))
  expect_true(all(est$conf.low < est$estimate & est$estimate < est$conf.high))
  slope <- est[est$term == "label", ]
  # the naive fit: the predicted 0/1 labels as if true, over the corpus
  naive <- stats::lm(meta$retweets ~ I(corpus$.pred_class == "protest") + meta$followers)
  expect_equal(slope$estimate[1], unname(coef(naive)[2]))
  expect_lt(slope$conf.high[1], 0.5)  # attenuated by the model's errors
  # one draw (coverage over many is test_estimates.py's): PPI's interval covers
  # the slope, which one sample in ~15 would miss
  expect_true(slope$conf.low[3] < 0.5 && 0.5 < slope$conf.high[3])
  again <- estimate_regression(retweets ~ label + followers, corpus, coded, data = meta, event = "protest",
                               method = "ppi++", times = 200)
  expect_identical(again, est[est$method == "ppi++", ])
  # an interaction with the label, and a logistic regression
  inter <- estimate_regression(retweets ~ label * followers, corpus, coded, data = meta, event = "protest",
                               method = "ppi", times = 50)
  expect_equal(inter$term, c("(Intercept)", "label", "followers", "label:followers"))
  logit <- estimate_regression(viral ~ label, corpus, coded, data = meta, family = "binomial",
                               event = "protest", method = "ppi", times = 50)
  expect_gt(logit$estimate[2], 0)
})

test_that("with every image coded, the label as a covariate gives lm() and glm()", {
  skip_if_no_engine()
  corpus <- sim_corpus(n = 300, seed = 6)
  meta <- sim_retweets(corpus)
  all_coded <- corpus
  all_coded$label <- corpus$truth
  all_coded$.inclusion_prob <- 1
  z <- as.numeric(corpus$truth == "protest")
  lin <- estimate_regression(retweets ~ label * followers, corpus, all_coded, data = meta, event = "protest",
                             method = "all", times = 50)
  ols <- unname(coef(stats::lm(meta$retweets ~ z * meta$followers)))
  for (m in c("classical", "ppi", "ppi++")) {
    expect_equal(lin$estimate[lin$method == m], ols, tolerance = 1e-8)
  }
  logit <- estimate_regression(viral ~ label + followers, corpus, all_coded, data = meta, family = "binomial",
                               event = "protest", method = c("ppi"), times = 50)
  glm <- stats::glm(meta$viral ~ z + meta$followers, family = binomial())
  expect_equal(logit$estimate, unname(coef(glm)), tolerance = 1e-6)
})

test_that("bad formulas for the label as a covariate are classed errors", {
  skip_if_no_engine()
  corpus <- sim_corpus(n = 500)
  meta <- sim_retweets(corpus)
  coded <- code_sample(corpus, sample_for_coding(corpus, n = 60))
  reg <- function(formula, ..., data = meta) {
    estimate_regression(formula, corpus, coded, data = data, event = "protest", ...)
  }
  expect_error(reg(label ~ label + followers), class = "tidyvision_error_bad_argument")
  expect_error(reg(retweets ~ label + followers, data = meta["path"]), class = "tidyvision_error_missing_column")
  with_followers <- coded
  with_followers$followers <- 1
  expect_error(estimate_regression(retweets ~ label + followers, corpus, with_followers, data = meta[c("path", "retweets")]),
               class = "tidyvision_error_missing_column")
  expect_error(reg(retweets ~ followers), class = "tidyvision_error_missing_column")
  expect_error(reg(retweets ~ I(label^2) + followers), class = "tidyvision_error_bad_argument")
  expect_error(reg(retweets ~ label, family = "binomial"), class = "tidyvision_error_bad_argument")
  expect_error(reg(retweets ~ label, times = 0), class = "tidyvision_error_bad_argument")
  strat <- code_sample(corpus, sample_for_coding(corpus, n = 60, strata = .pred_class))
  expect_error(estimate_regression(retweets ~ label, corpus, strat, data = meta, times = 20),
               class = "tidyvision_error_stratified_sample")
})

test_that("bad coded samples are classed errors", {
  skip_if_no_engine()
  corpus <- sim_corpus(n = 500)
  coded <- code_sample(corpus, sample_for_coding(corpus, n = 40))
  stray <- coded
  stray$path[1] <- "/elsewhere/x.jpg"
  expect_error(estimate_prevalence(corpus, stray, label), class = "tidyvision_error_not_in_corpus")
  expect_error(estimate_prevalence(corpus, coded[1:10, ], label), class = "tidyvision_error_too_few_coded")
  na <- coded
  na$label[3] <- NA
  expect_error(estimate_prevalence(corpus, na, label), class = "tidyvision_error_missing_truth")
  one <- coded
  one$label <- "other"
  expect_error(estimate_prevalence(corpus, one, label), class = "tidyvision_error_class_not_coded")
  # Labels that match the classes only when case is ignored are named as such.
  upper <- coded
  upper$label <- toupper(upper$label)
  err <- expect_error(estimate_prevalence(corpus, upper, label), class = "tidyvision_error_unknown_class")
  msg <- cli::ansi_strip(conditionMessage(err))
  expect_match(msg, "not among the predicted classes")
  for (k in unique(coded$label)) {
    expect_match(msg, toupper(k), fixed = TRUE)
    expect_match(msg, k, fixed = TRUE)
  }
  expect_match(msg, "only in upper and lower case")
  trained <- coded
  trained$split <- "train"
  expect_error(estimate_prevalence(corpus, trained, label), class = "tidyvision_error_not_random")
  expect_error(estimate_prevalence(corpus, coded, label, training = coded$path[1:3]),
               class = "tidyvision_error_not_random")
  expect_error(estimate_prevalence(corpus, rbind(coded, coded[1, ]), label),
               class = "tidyvision_error_duplicate_coded")
  expect_warning(estimate_prevalence(corpus, coded[c("path", "label")], label),
                 class = "tidyvision_warning_sampling_unknown")
  expect_error(estimate_prevalence(corpus, coded, label, method = "bayes"), class = "tidyvision_error_bad_argument")
  expect_error(estimate_prevalence(corpus, coded, label, levle = 0.9), class = "tidyvision_error_bad_argument")
  expect_error(estimate_prevalence(tempfile(), coded, label), class = "tidyvision_error_path_not_found")
  expect_error(estimate_regression(~ x, corpus, coded), class = "tidyvision_error_bad_argument")
})

test_that("plan_coding() needs fewer images with a better model, from a pilot or an assumption", {
  skip_if_no_engine()
  corpus <- sim_corpus(n = 5000, sens = 0.95, spec = 0.95)
  weak <- plan_coding(corpus, correlation = 0.3)
  strong <- plan_coding(corpus, correlation = 0.9)
  expect_s3_class(strong, "tv_plan")
  expect_true(all(strong$n_ppi < weak$n_ppi))
  expect_true(all(weak$n_ppi <= weak$n_classical))
  pilot <- code_sample(corpus, sample_for_coding(corpus, n = 60))
  from_pilot <- plan_coding(corpus, pilot, label, width = 0.04)
  expect_gt(min(from_pilot$correlation), 0.6)
  expect_lt(max(from_pilot$n_ppi), max(from_pilot$n_classical))
  expect_s3_class(ggplot2::autoplot(from_pilot), "ggplot")
  expect_error(plan_coding(corpus), class = "tidyvision_error_bad_argument")
})

test_that("autoplot() of an estimate shows every method per class", {
  skip_if_no_engine()
  corpus <- sim_corpus()
  coded <- code_sample(corpus, sample_for_coding(corpus, n = 100))
  p <- ggplot2::autoplot(estimate_prevalence(corpus, coded, label, method = "all"))
  expect_s3_class(p, "ggplot")
  built <- ggplot2::ggplot_build(p)
  expect_equal(nrow(built$data[[1]]), 8)
  expect_setequal(levels(p$data$method), c("naive", "classical", "ppi", "ppi++"))
})

test_that("coded images that trained the model, or resized copies of them, are refused by content", {
  skip_if_no_engine()
  got <- trained_corpus()
  truth_of <- function(paths) ifelse(grepl("/blue/", paths), "blue", "red")
  coded <- suppressMessages(sample_for_coding(got, n = 30, seed = 2))
  coded$truth <- truth_of(coded$path)
  half <- got$path[grepl("red_005_half.png", got$path, fixed = TRUE)]
  with_copy <- rbind(coded[-1, ], tibble::tibble(path = half, .inclusion_prob = coded$.inclusion_prob[1],
                                                 .weight = coded$.weight[1], truth = "red"))
  expect_error(suppressWarnings(estimate_prevalence(got, with_copy, truth, .pred_class)),
               "1 coded image trained or validated.*smaller than on the rest of the corpus.*too narrow",
               class = "tidyvision_error_coded_trained")
  expect_error(suppressWarnings(estimate_regression(truth ~ 1, got, with_copy, event = "red")),
               "1 coded image trained or validated", class = "tidyvision_error_coded_trained")
  # the path-based `training =` still works
  expect_error(suppressWarnings(estimate_prevalence(got[names(got) != "trained"], coded, truth, .pred_class,
                                                    training = coded$path[1:2])),
               "2 coded images were used", class = "tidyvision_error_not_random")

  est <- suppressWarnings(estimate_prevalence(got, coded, truth, .pred_class))
  expect_match(format(describe(est)), "simple random sample of the corpus, none of them among the classifier's training", all = FALSE)
  unchecked <- suppressWarnings(estimate_prevalence(got[names(got) != "trained"], coded, truth, .pred_class))
  text <- paste(format(describe(unchecked)), collapse = " ")
  expect_no_match(text, "simple random")
  expect_match(text, "whether any of them trained or validated the classifier was not checked")
})
