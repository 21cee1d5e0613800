#' Regressions on image labels: prediction-powered inference
#'
#' A linear or logistic regression in which the image's class is the outcome
#' (`protest ~ year + party`) or a covariate (`retweets ~ protest +
#' followers`), fitted over the whole corpus with the model's predictions and
#' corrected by the hand-coded random sample, so that the coefficients'
#' intervals stay valid when the model errs. The label is 1 when the image is
#' of class `event` and 0 otherwise.
#'
#' @details
#' **Which column is the label.** The image label is the column of `coded`
#' holding the coders' class: the one column of the formula found in `coded`
#' but in neither `predictions` nor `data` (or, failing that, a left-hand side
#' found in `coded`). Where it stands decides the case. On coded images it is
#' the coders' class; elsewhere the model's prediction of it, `estimate` (or
#' the `.pred_<event>` probability for PPI, when `predictions` has it). The
#' other columns come from `predictions` or from `data`, the researcher's own
#' table joined by `path`; corpus images with a missing value in them are left
#' out with a warning. The coded sample must be random: see
#' [estimate_prevalence()] for the checks and [sample_for_coding()] for
#' drawing it.
#'
#' **The label as the outcome** (`label ~ year`): PPI and PPI++ are `ppi_py`'s
#' `ppi_ols_ci()` and `ppi_logistic_ci()`, two-sided CLT intervals with
#' sandwich (heteroskedasticity-robust, HC0) variances. With `family =
#' "gaussian"` it is a linear probability model. A stratified sample's
#' `.weight` weights the coded rows.
#'
#' **The label as a covariate** (`retweets ~ label + followers`): the outcome
#' and the other covariates are the researcher's (numbers, or 0/1 for
#' `family = "binomial"`), and the label enters as a 0/1 number (or the
#' probability, for PPI), so it may appear in interactions (`label *
#' followers`) but not transformed. PPI and PPI++ are `ppi_py`'s
#' prediction-powered bootstrap, `ppboot()` (Zrnic 2024): the regression is
#' refitted on `times` resamples of the coded and of the uncoded images, drawn
#' independently from `seed`, and the intervals are its percentile intervals.
#' The estimate is the fit with the predicted labels on the uncoded images,
#' plus lambda times the difference between the fits with the coders' and
#' the predicted labels on the coded images; lambda is 1 for PPI and, for
#' PPI++, tuned from 50 resamples as `ppboot()` tunes it (not clipped to
#' \[0, 1\]). The bootstrap has no sampling weights, so a stratified coded
#' sample is an error here.
#'
#' In both cases `"naive"` fits the predicted labels over the corpus as if
#' they were true and `"classical"` the coded sample alone, with sandwich CLT
#' intervals. `std.error` is the interval's half-width divided by the normal
#' quantile, `(conf.high - conf.low) / (2 * qnorm(1 - (1 - level) / 2))` (for
#' the bootstrap, a normal reading of its spread). With every image coded,
#' the point estimates equal those of [stats::lm()] or [stats::glm()] on the
#' coded data.
#'
#' @inheritParams estimate_prevalence
#' @param formula `label ~ covariates` or `outcome ~ label + covariates`,
#'   where `label` is the column of `coded` with the coders' class.
#' @param data The researcher's data, with a `path` column, joined to
#'   `predictions` by path; `NULL` when the other columns are in
#'   `predictions`.
#' @param family `"gaussian"` (linear regression) or `"binomial"` (logistic
#'   regression).
#' @param estimate The column of `predictions` with the predicted class.
#' @param event The class that is the label's 1; by default the first class
#'   (the first level of `estimate`).
#' @param times,seed The label as a covariate: the number of bootstrap
#'   resamples and the seed they are drawn from (the same seed gives the same
#'   intervals). Keep the default: with 200 resamples 95% intervals covered
#'   the slope in about 92% of simulated corpora, with 1,000 in about 95%.
#' @return A tibble `term, estimate, std.error, conf.low, conf.high, method`,
#'   as `broom::tidy()` gives.
#' @export
#' @examplesIf tv_available()
#' set.seed(1)
#' n <- 2000
#' year <- sample(2016:2020, n, replace = TRUE)
#' truth <- ifelse(runif(n) < plogis(-1 + 0.3 * (year - 2018)), "protest", "other")
#' pred <- ifelse(runif(n) < 0.85, truth, ifelse(truth == "protest", "other", "protest"))
#' corpus <- tibble::tibble(path = sprintf("img%04d.jpg", 1:n),
#'                          .pred_class = factor(pred, c("protest", "other")))
#' meta <- tibble::tibble(path = corpus$path, year = year - 2018,
#'                        retweets = 10 + 5 * (truth == "protest") + rnorm(n, sd = 4))
#' coded <- sample_for_coding(corpus, n = 300)
#' coded$label <- truth[match(coded$path, corpus$path)]
#' # the label as the outcome
#' estimate_regression(label ~ year, corpus, coded, data = meta, family = "binomial")
#' # the label as a covariate: protest images get 5 more retweets
#' estimate_regression(retweets ~ label + year, corpus, coded, data = meta,
#'                     method = "all", times = 200)
estimate_regression <- function(formula, predictions, coded, data = NULL,
                                family = c("gaussian", "binomial"), ..., estimate = .pred_class,
                                event = NULL, training = NULL, level = 0.95,
                                method = c("ppi++", "ppi", "classical", "naive", "all"),
                                times = 1000, seed = 1) {
  check_dots_known(rlang::enquos(...), c("estimate", "event", "training", "level", "method", "times", "seed"),
                   "estimate_regression")
  family <- check_choice(family)
  method <- check_choice(method)
  check_level(level); check_count(times); check_seed(seed)
  if (!is.null(data) && !is.data.frame(data)) {
    tv_abort(c("{.arg data} must be a data frame of covariates with a {.field path} column, or NULL, not {shown_value(data)}.",
               i = "Covariates already in {.arg predictions} need no {.arg data}."),
             class = "bad_argument")
  }
  predictions <- dplyr::ungroup(as_predictions(predictions))
  label <- regression_label(formula, coded, predictions, data)
  prep <- prepare_estimate(predictions, coded, rlang::quo(!!rlang::sym(label$name)),
                           rlang::enquo(estimate), training)
  event <- check_event(event, prep$classes)
  design <- regression_design(formula, prep, data, if (label$covariate) label$name)
  coded_rows <- prep$coded[match(design$rows, prep$coded$row, nomatch = 0), , drop = FALSE]
  check_coded_sample(coded_rows$truth, prep$classes, NULL, caller_env())
  fit <- list(at = match(coded_rows$row, design$rows), truth = as.numeric(coded_rows$truth == event),
              yhat = prep$yhat[design$rows, event], naive = as.numeric(prep$labels[design$rows] == event),
              weight = coded_rows[["weight"]], family = family, level = level,
              methods = as.list(if (method == "all") ESTIMATE_METHODS else method))
  cols <- if (label$covariate) {
    label_covariate_fit(formula, label$name, design, fit, times, seed)
  } else {
    label_outcome_fit(design, fit)
  }
  z <- stats::qnorm(1 - (1 - level) / 2)
  lower <- col_of(cols$lower, "dbl")
  upper <- col_of(cols$upper, "dbl")
  tibble::tibble(term = design$terms[col_of(cols$term, "int") + 1L],
                 estimate = col_of(cols$estimate, "dbl"), std.error = (upper - lower) / (2 * z),
                 conf.low = lower, conf.high = upper, method = col_of(cols$method))
}

# The image label: the one column of the formula that only `coded` has (the
# coders' class), else a left-hand side found in `coded`; `covariate` when it
# stands on the right.
regression_label <- function(formula, coded, predictions, data, call = caller_env()) {
  if (!inherits(formula, "formula") || length(formula) != 3) {
    tv_abort(c("{.arg formula} must have two sides, with the coders' class as the outcome or a covariate.",
               i = "As in {.code protest ~ year} or {.code retweets ~ protest + followers}."),
             class = "bad_argument", call = call)
  }
  lhs <- all.vars(formula[[2]])
  rhs <- all.vars(formula[[3]])
  coded_cols <- if (is.data.frame(coded)) setdiff(names(coded), "path")
  label <- setdiff(intersect(c(lhs, rhs), coded_cols), c(names(predictions), names(data)))
  if (!length(label)) label <- intersect(lhs, coded_cols)
  if (!length(label)) {
    tv_abort(c("No column of {.arg formula} is the image label: a column of {.arg coded} that {.arg predictions} and {.arg data} don't have.",
               i = "Name the column of {.arg coded} with the coders' class, as the outcome or a covariate."),
             class = "missing_column", call = call)
  }
  if (length(label) > 1) {
    tv_abort(c("{.field {label}} {?is/are} only in {.arg coded}, but only the image label may come from there.",
               i = "Add the other columns to {.arg data} (joined by {.field path}) or {.arg predictions}."),
             class = "missing_column", call = call)
  }
  if (label %in% lhs && (label %in% rhs || length(lhs) != 1)) {
    tv_abort("The image label {.field {label}} must stand alone on one side of {.arg formula}, not on both.",
             class = "bad_argument", call = call)
  }
  list(name = label, covariate = label %in% rhs)
}

check_event <- function(event, classes, call = caller_env()) {
  if (is.null(event)) return(classes[1])
  if (is.character(event) && length(event) == 1 && event %in% classes) return(event)
  tv_abort("{.arg event} must be one of the classes {.val {classes}}, not {shown_value(event)}.",
           class = "bad_argument", call = call)
}

# The model matrix over the corpus rows with a prediction and every column
# of the formula, and those rows of the joined frame. With the label as a
# covariate (`label`), the formula includes the outcome and the matrix has
# the label at 0.
regression_design <- function(formula, prep, data, label = NULL, call = caller_env()) {
  frame <- prep$predictions
  if (!is.null(data)) {
    data$path <- image_paths(data, "data", call)
    frame$path <- image_paths(frame, "predictions", call)
    frame <- dplyr::left_join(frame[setdiff(names(frame), setdiff(names(data), "path"))], data, by = "path")
  }
  tt <- stats::terms(formula)
  if (is.null(label)) tt <- stats::delete.response(tt) else frame[[label]] <- 0
  missing <- setdiff(all.vars(tt), names(frame))
  if (length(missing)) {
    tv_abort("Can't find the column{?s} {.field {missing}} in {.arg predictions} or {.arg data}.",
             class = "missing_column", call = call)
  }
  mf <- stats::model.frame(tt, frame, na.action = stats::na.pass)
  ok <- !prep$unpredicted & stats::complete.cases(mf)
  if (any(!ok & !prep$unpredicted)) {
    tv_warn("{sum(!ok & !prep$unpredicted)} image{?s} with a missing value in the formula's columns {?is/are} left out.",
            class = "missing_covariate")
  }
  x <- stats::model.matrix(tt, mf[ok, , drop = FALSE])
  list(x = unname_matrix(x), terms = colnames(x), rows = which(ok), frame = frame[ok, , drop = FALSE])
}

# The label as the outcome: ppi_py's CLT estimators.
label_outcome_fit <- function(design, fit) {
  at <- fit$at
  engine_call("estimates.regression", matrix_columns(design$x[at, , drop = FALSE]),
              as.list(fit$truth), as.list(fit$yhat[at]),
              matrix_columns(design$x[-at, , drop = FALSE]), as.list(fit$yhat[-at]),
              as.list(fit$naive), matrix_columns(design$x),
              family = fit$family, w = if (!is.null(fit$weight)) as.list(fit$weight),
              level = fit$level, methods = fit$methods)
}

# The label as a covariate: ppi_py's prediction-powered bootstrap. The
# design of an image is `design$x + label * d`.
label_covariate_fit <- function(formula, label, design, fit, times, seed, call = caller_env()) {
  if (length(unique(fit$weight)) > 1) {
    tv_abort(c("A stratified coded sample can't be used with the image label as a covariate.",
               i = "The prediction-powered bootstrap has no sampling weights: code a simple random sample, {.code sample_for_coding(strata = NULL)}."),
             class = "stratified_sample", call = call)
  }
  y <- unname(stats::model.response(stats::model.frame(formula, design$frame)))
  y <- check_regression_outcome(y, fit$family, call)
  engine_call("estimates.regression_covariate", as.list(y), matrix_columns(design$x),
              matrix_columns(label_step(formula, label, design, call)), as.list(fit$at - 1L),
              as.list(fit$truth), as.list(fit$yhat), as.list(fit$naive), family = fit$family,
              level = fit$level, methods = fit$methods, times = as.integer(times),
              seed = as.integer(seed), call = call)
}

# What a label of 1 adds to the design; a label at 1/2 must add half of it
# (the label enters linearly), as PPI's probabilities need.
label_step <- function(formula, label, design, call) {
  at <- function(value) {
    design$frame[[label]] <- value
    unname_matrix(stats::model.matrix(stats::terms(formula), design$frame))
  }
  d <- at(1) - design$x
  if (max(abs(at(0.5) - design$x - d / 2)) > 1e-8) {
    tv_abort(c("The image label {.field {label}} must enter {.arg formula} as a plain 0/1 number.",
               i = "Use it as a term or in interactions ({.code {label} * x}), not transformed."),
             class = "bad_argument", call = call)
  }
  d
}

check_regression_outcome <- function(y, family, call) {
  if (is.logical(y)) y <- as.numeric(y)
  ok <- is.numeric(y) && (family == "gaussian" || all(y %in% c(0, 1)))
  if (!ok) {
    tv_abort("The outcome of {.arg formula} must be {if (family == 'gaussian') 'numeric' else '0/1 or logical'} for {.code family = \"{family}\"}.",
             class = "bad_argument", call = call)
  }
  y
}

# A matrix as a list of its columns (reticulate 1.28 can't hand NumPy 2 a matrix).
matrix_columns <- function(x) lapply(seq_len(ncol(x)), function(j) as.list(unname(x[, j])))

unname_matrix <- function(x) {
  attr(x, "assign") <- NULL
  attr(x, "contrasts") <- NULL
  x
}
