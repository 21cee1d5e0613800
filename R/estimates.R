#' Valid corpus-level shares: prediction-powered inference
#'
#' The share of images in each class over a whole corpus, with an interval
#' that holds however good or bad the classifier is. Counting the model's
#' labels (the `"naive"` estimate) is biased whenever the model errs, and its
#' interval, narrow from thousands of images, then covers the truth almost
#' never. Prediction-powered inference (PPI; Angelopoulos et al., *Science*
#' 2023) corrects the count with a random hand-coded sample: the mean
#' prediction over the images not coded, plus the average error of the model
#' on the coded images (the coded and uncoded images are then independent
#' samples, as PPI assumes). With every image coded it is the classical
#' estimate.
#' PPI++ (Angelopoulos, Duchi & Zrnic 2023) weighs the predictions by how
#' much they help (a tuned lambda in \[0, 1\]), so its interval is never
#' wider than the classical one that uses the coded sample alone. The
#' estimators are those of the `ppi_py` Python package; intervals are
#' two-sided CLT intervals.
#'
#' **Predictions.** When `predictions` has a `.pred_<class>` probability
#' column for every class, PPI uses the probabilities (valid, and more
#' precise than 0/1 labels); otherwise the 0/1 of `estimate`. The naive
#' estimate always counts `estimate`, as the usual practice does. Images
#' whose prediction is missing (unreadable) are left out of the corpus, with
#' a warning.
#'
#' **The coded sample must be random.** PPI's guarantee rests on the coded
#' images being a random sample of the corpus: draw them with
#' [sample_for_coding()]. Images the classifier was trained or validated on
#' are not a random sample of the corpus (the model has seen them, or they
#' were chosen to be clear examples), so they are refused: coded rows with a
#' `split` of train or val (in `coded` or `predictions`), and any in
#' `training`. A `coded` without the `.inclusion_prob` column of
#' [sample_for_coding()] gets a warning (`tidyvision_warning_sampling_unknown`)
#' and is treated as a simple random sample. A stratified sample's `.weight`
#' column (1 / inclusion probability) weights the coded rows, so
#' oversampling a rare predicted class stays unbiased; its interval ignores
#' the gain from stratifying, so it is conservative.
#'
#' @param predictions The model's predictions for every image of the corpus:
#'   a data frame with `path`, the `estimate` column and optionally
#'   `.pred_<class>` probabilities (e.g. `augment()` of a classifier), or the
#'   output of [classify_folder()] (read with `read_corpus()`). Group it with
#'   `dplyr::group_by()` for one estimate per group.
#' @param coded The hand-coded random sample: a data frame with `path` and
#'   the `truth` column, e.g. from [sample_for_coding()] with the codes added.
#' @param truth The column of `coded` with the hand-coded class.
#' @param estimate The column of `predictions` with the predicted class.
#' @param ... Must be empty.
#' @param training Images the classifier was trained or validated on (a
#'   data frame with `path`, such as the one given to [fine_tune()], or a
#'   character vector of paths): coded images among them are an error.
#' @param level Confidence level of the intervals.
#' @param method `"ppi++"`, `"ppi"`, `"classical"` (the coded sample only),
#'   `"naive"` (the model's labels as if true), or `"all"` for all four side
#'   by side.
#' @return A `tv_estimate` tibble: group columns, then `class, .estimate,
#'   .lower, .upper, method, n_coded, n_predicted`. Use `autoplot()` and
#'   [describe()].
#' @seealso [sample_for_coding()], [plan_coding()], [estimate_regression()].
#' @export
#' @examplesIf tv_available()
#' # A corpus of 2,000 images whose classifier over-calls "protest"
#' set.seed(1)
#' truth <- sample(c("protest", "other"), 2000, replace = TRUE, prob = c(0.3, 0.7))
#' pred <- ifelse(runif(2000) < ifelse(truth == "protest", 0.9, 0.8), truth,
#'                ifelse(truth == "protest", "other", "protest"))
#' corpus <- tibble::tibble(path = sprintf("img%04d.jpg", 1:2000),
#'                          .pred_class = factor(pred, c("other", "protest")))
#' coded <- sample_for_coding(corpus, n = 200)
#' coded$label <- truth[match(coded$path, corpus$path)]
#' est <- estimate_prevalence(corpus, coded, label, method = "all")
#' est
#' describe(est)
estimate_prevalence <- function(predictions, coded, truth, estimate = .pred_class, ...,
                                training = NULL, level = 0.95,
                                method = c("ppi++", "ppi", "classical", "naive", "all")) {
  check_dots_known(rlang::enquos(...), c("training", "level", "method"), "estimate_prevalence")
  method <- check_choice(method)
  check_level(level)
  prep <- prepare_estimate(predictions, coded, rlang::enquo(truth), rlang::enquo(estimate), training)
  methods <- if (method == "all") ESTIMATE_METHODS else method
  out <- by_group(prep$predictions, function(rows) {
    prevalence_rows(prep, rows, methods, level)
  })
  new_estimate(out, prep, level)
}

ESTIMATE_METHODS <- c("naive", "classical", "ppi", "ppi++")

# One group's estimates: a row per class and method.
prevalence_rows <- function(prep, rows, methods, level, call = caller_env()) {
  rows <- rows[!prep$unpredicted[rows]]
  coded <- prep$coded[prep$coded$row %in% rows, , drop = FALSE]
  check_coded_sample(coded$truth, prep$classes, group_label(prep$predictions, rows), call)
  at <- match(coded$row, rows)
  res <- lapply(prep$classes, function(k) {
    yhat <- prep$yhat[rows, k]
    cols <- engine_call("estimates.prevalence", as.list(as.numeric(coded$truth == k)),
                        as.list(yhat[at]), as.list(yhat[-at]), as.list(as.numeric(prep$labels[rows] == k)),
                        w = if (!is.null(coded[["weight"]])) as.list(coded[["weight"]]), level = level,
                        methods = as.list(methods), call = call)
    tibble::tibble(class = k, .estimate = col_of(cols$estimate, "dbl"),
                   .lower = col_of(cols$lower, "dbl"), .upper = col_of(cols$upper, "dbl"),
                   method = col_of(cols$method))
  })
  out <- dplyr::bind_rows(res)
  out$n_coded <- nrow(coded)
  out$n_predicted <- length(rows)
  out
}

new_estimate <- function(out, prep, level) {
  out <- tibble::new_tibble(out, class = "tv_estimate")
  attr(out, "level") <- level
  attr(out, "prediction") <- prep$prediction
  attr(out, "sampling") <- prep$sampling
  attr(out, "groups") <- dplyr::group_vars(prep$predictions)
  out
}

estimate_groups <- function(x) intersect(attr(x, "groups"), names(x))

# Predictions and coded rows joined by path and checked; `yhat` holds the
# prediction PPI uses for each class (probability or 0/1), one column per class.
prepare_estimate <- function(predictions, coded, truth, estimate, training, call = caller_env()) {
  predictions <- as_predictions(predictions, call)
  est_col <- select_columns(predictions, estimate, "estimate", max = 1, call = call)
  check_one_column(est_col, "estimate", call)
  if (!is.data.frame(coded)) {
    tv_abort("{.arg coded} must be a data frame of hand-coded images (with {.field path}), not {.obj_type_friendly {coded}}.",
             class = "bad_argument", call = call)
  }
  truth_col <- select_columns(coded, truth, "truth", max = 1, call = call)
  check_one_column(truth_col, "truth", call)
  paths <- image_paths(predictions, "predictions", call)
  labels <- as.character(predictions[[est_col]])
  classes <- estimate_classes(predictions[[est_col]], coded[[truth_col]])
  probs <- paste0(".pred_", classes)
  use_prob <- all(probs %in% names(predictions))
  yhat <- if (use_prob) as.matrix(predictions[probs]) else outer(labels, classes, "==") * 1
  colnames(yhat) <- classes
  unpredicted <- is.na(labels) | !stats::complete.cases(yhat)
  warn_unpredicted(unpredicted)
  rows <- coded_rows(coded, truth_col, paths, unpredicted, predictions, training, call)
  list(predictions = predictions, labels = labels, classes = classes, yhat = yhat,
       unpredicted = unpredicted, coded = rows$coded, sampling = rows$sampling,
       prediction = if (use_prob) "probability" else "class")
}

# The classes: `estimate`'s levels (or values), then any only the coders used.
estimate_classes <- function(estimate, truth) {
  base <- if (is.factor(estimate)) levels(estimate) else sort(unique(stats::na.omit(as.character(estimate))))
  c(base, setdiff(sort(unique(stats::na.omit(as.character(truth)))), base))
}

# The coded rows as `row` (in `predictions`), `truth` and `weight`, after the
# checks that make PPI valid.
coded_rows <- function(coded, truth_col, paths, unpredicted, predictions, training, call) {
  coded_paths <- image_paths(coded, "coded", call)
  row <- match(coded_paths, paths)
  check_in_corpus(coded_paths, row, call)
  check_unique_paths(coded_paths, call)
  truth <- as.character(coded[[truth_col]])
  check_truths(truth, truth_col, coded_paths, call)
  check_not_training(coded_paths, coded, predictions[row, , drop = FALSE], training, call)
  keep <- !unpredicted[row]
  weight <- if (".weight" %in% names(coded)) as.numeric(coded$.weight)[keep]
  sampling <- if (!".inclusion_prob" %in% names(coded)) "unknown" else
    if (length(unique(coded$.inclusion_prob)) > 1) "stratified" else "random"
  if (sampling == "unknown") warn_sampling_unknown()
  list(coded = tibble::tibble(row = row[keep], truth = truth[keep], weight = weight),
       sampling = sampling)
}

# A character path is the output of classify_folder(), read with read_corpus().
as_predictions <- function(predictions, call = caller_env()) {
  if (is.character(predictions) && length(predictions) == 1) predictions <- read_corpus(predictions)
  if (!is.data.frame(predictions)) {
    tv_abort(c("{.arg predictions} must be a data frame of predictions or a corpus output, not {.obj_type_friendly {predictions}}.",
               i = "Use {.fn augment} on a classifier, or {.fn classify_folder} then {.fn read_corpus}."),
             class = "bad_argument", call = call)
  }
  predictions
}

check_level <- function(level, call = caller_env()) {
  check_scalar(level, function(v) v > 0 && v < 1, "a number between 0 and 1, such as 0.95", "level", call)
}

check_one_column <- function(col, arg, call) {
  if (length(col) != 1) {
    tv_abort("{.arg {arg}} must select one column.", class = "bad_argument", call = call)
  }
}

#' @export
format.tv_estimate <- function(x, ...) {
  lvl <- attr(x, "level") %||% 0.95
  c(sprintf("%g%% intervals; PPI uses the model's %s.", 100 * lvl,
            if (identical(attr(x, "prediction"), "probability")) "probabilities" else "0/1 labels"),
    NextMethod())
}

#' @export
print.tv_estimate <- function(x, ...) {
  print_titled(x, "tidyvision estimate")
}

#' Regressions on image labels: prediction-powered inference
#'
#' A linear or logistic regression with the image's class as the outcome
#' (`protest ~ year + party`), fitted over the whole corpus with the model's
#' predictions and corrected by the hand-coded random sample, so that the
#' coefficients' intervals stay valid when the model errs (PPI and PPI++,
#' through `ppi_py`'s `ppi_ols_ci()` and `ppi_logistic_ci()`). The outcome
#' is 1 when the image is of class `event` and 0 otherwise (a linear
#' probability model with `family = "gaussian"`).
#'
#' The formula's left-hand side names the column of `coded` holding the
#' coders' class; the model's prediction of it is `estimate` (or the
#' `.pred_<event>` probability, when `predictions` has it). Covariates come
#' from `predictions` or from `data`, the researcher's own table joined by
#' `path`; corpus images with a missing covariate are left out with a
#' warning. The coded sample must be random: see [estimate_prevalence()] for
#' the checks and [sample_for_coding()] for drawing it.
#'
#' Intervals are two-sided CLT intervals with sandwich (heteroskedasticity-
#' robust, HC0) variances; `std.error` is the interval's half-width divided
#' by the normal quantile, `(conf.high - conf.low) / (2 * qnorm(1 - (1 - level) / 2))`.
#' With every image coded, the point estimates equal those of [stats::lm()]
#' or [stats::glm()] on the coded data. `"naive"` regresses the predicted
#' labels over the corpus as if they were true; `"classical"` uses the coded
#' sample alone.
#'
#' @inheritParams estimate_prevalence
#' @param formula `class_column ~ covariates`.
#' @param data The researcher's data, with a `path` column, joined to
#'   `predictions` by path; `NULL` when the covariates are in `predictions`.
#' @param family `"gaussian"` (linear probability model) or `"binomial"`
#'   (logistic regression).
#' @param estimate The column of `predictions` with the predicted class.
#' @param event The class that is the outcome's 1; by default the first
#'   class (the first level of `estimate`).
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
#' meta <- tibble::tibble(path = corpus$path, year = year - 2018)
#' coded <- sample_for_coding(corpus, n = 300)
#' coded$label <- truth[match(coded$path, corpus$path)]
#' estimate_regression(label ~ year, corpus, coded, data = meta, family = "binomial")
estimate_regression <- function(formula, predictions, coded, data = NULL,
                                family = c("gaussian", "binomial"), ..., estimate = .pred_class,
                                event = NULL, training = NULL, level = 0.95,
                                method = c("ppi++", "ppi", "classical", "naive", "all")) {
  check_dots_known(rlang::enquos(...), c("estimate", "event", "training", "level", "method"),
                   "estimate_regression")
  family <- check_choice(family)
  method <- check_choice(method)
  check_level(level)
  outcome <- regression_outcome(formula, coded)
  predictions <- dplyr::ungroup(as_predictions(predictions))
  prep <- prepare_estimate(predictions, coded, rlang::quo(!!rlang::sym(outcome)),
                           rlang::enquo(estimate), training)
  event <- check_event(event, prep$classes)
  design <- regression_design(formula, prep, data)
  coded_rows <- prep$coded[match(design$rows, prep$coded$row, nomatch = 0), , drop = FALSE]
  check_coded_sample(coded_rows$truth, prep$classes, NULL, caller_env())
  at <- match(coded_rows$row, design$rows)
  yhat <- prep$yhat[design$rows, event]
  cols <- engine_call("estimates.regression", matrix_columns(design$x[at, , drop = FALSE]),
                      as.list(as.numeric(coded_rows$truth == event)), as.list(yhat[at]),
                      matrix_columns(design$x[-at, , drop = FALSE]), as.list(yhat[-at]),
                      as.list(as.numeric(prep$labels[design$rows] == event)), matrix_columns(design$x),
                      family = family, w = if (!is.null(coded_rows[["weight"]])) as.list(coded_rows[["weight"]]),
                      level = level, methods = as.list(if (method == "all") ESTIMATE_METHODS else method))
  z <- stats::qnorm(1 - (1 - level) / 2)
  lower <- col_of(cols$lower, "dbl")
  upper <- col_of(cols$upper, "dbl")
  tibble::tibble(term = colnames(design$x)[col_of(cols$term, "int") + 1L],
                 estimate = col_of(cols$estimate, "dbl"), std.error = (upper - lower) / (2 * z),
                 conf.low = lower, conf.high = upper, method = col_of(cols$method))
}

# The formula's outcome: one column of `coded`, the coders' class.
regression_outcome <- function(formula, coded, call = caller_env()) {
  lhs <- if (inherits(formula, "formula") && length(formula) == 3) all.vars(formula[[2]])
  if (length(lhs) != 1) {
    tv_abort(c("{.arg formula} must have one column on its left-hand side: the coders' class, as in {.code protest ~ year}.",
               i = "Image labels as covariates are not supported yet; put the label on the left."),
             class = "bad_argument", call = call)
  }
  if (!is.data.frame(coded) || !lhs %in% names(coded)) {
    tv_abort("{.arg coded} has no column {.field {lhs}}, the outcome of {.arg formula}.",
             class = "missing_column", call = call)
  }
  lhs
}

check_event <- function(event, classes, call = caller_env()) {
  if (is.null(event)) return(classes[1])
  if (is.character(event) && length(event) == 1 && event %in% classes) return(event)
  tv_abort("{.arg event} must be one of the classes {.val {classes}}, not {shown_value(event)}.",
           class = "bad_argument", call = call)
}

# The model matrix over the corpus rows with a prediction and every covariate.
regression_design <- function(formula, prep, data, call = caller_env()) {
  frame <- prep$predictions
  if (!is.null(data)) {
    data$path <- image_paths(data, "data", call)
    frame$path <- image_paths(frame, "predictions", call)
    frame <- dplyr::left_join(frame[setdiff(names(frame), setdiff(names(data), "path"))], data, by = "path")
  }
  rhs <- stats::delete.response(stats::terms(formula))
  missing <- setdiff(all.vars(rhs), names(frame))
  if (length(missing)) {
    tv_abort("Can't find the covariate{?s} {.field {missing}} in {.arg predictions} or {.arg data}.",
             class = "missing_column", call = call)
  }
  mf <- stats::model.frame(rhs, frame, na.action = stats::na.pass)
  ok <- !prep$unpredicted & stats::complete.cases(mf)
  if (any(!ok & !prep$unpredicted)) {
    tv_warn("{sum(!ok & !prep$unpredicted)} image{?s} with a missing covariate {?is/are} left out.",
            class = "missing_covariate")
  }
  x <- stats::model.matrix(rhs, mf[ok, , drop = FALSE])
  list(x = unname_matrix(x), rows = which(ok))
}

# A matrix as a list of its columns (reticulate 1.28 can't hand NumPy 2 a matrix).
matrix_columns <- function(x) lapply(seq_len(ncol(x)), function(j) as.list(unname(x[, j])))

unname_matrix <- function(x) {
  attr(x, "assign") <- NULL
  attr(x, "contrasts") <- NULL
  x
}

#' @export
autoplot.tv_estimate <- function(object, ...) {
  data <- tibble::as_tibble(object)
  groups <- estimate_groups(object)
  data$method <- factor(data$method, rev(intersect(ESTIMATE_METHODS, data$method)))
  ggplot2::ggplot(data, ggplot2::aes(x = .data$.estimate, y = .data$method, colour = .data$method)) +
    ggplot2::geom_errorbarh(ggplot2::aes(xmin = .data$.lower, xmax = .data$.upper), height = 0.25) +
    ggplot2::geom_point(size = 2.5) +
    ggplot2::facet_wrap(c("class", groups), scales = "free_x", labeller = ggplot2::label_both) +
    ggplot2::scale_x_continuous(labels = function(x) paste0(round(100 * x, 1), "%"), n.breaks = 4) +
    ggplot2::scale_colour_manual(values = c(naive = "#D55E00", classical = "#999999", ppi = "#56B4E9", `ppi++` = "#0072B2"),
                                 guide = "none") +
    ggplot2::labs(x = sprintf("Share of the corpus (%g%% interval)", 100 * (attr(object, "level") %||% 0.95)),
                  y = NULL, title = "Estimated share by class",
                  subtitle = sprintf("%s coded of %s predicted images", format_count(data$n_coded[1]), format_count(data$n_predicted[1]))) +
    ggplot2::theme_minimal() +
    ggplot2::theme(panel.spacing.x = ggplot2::unit(1.5, "lines"))
}

format_count <- function(x) formatC(x, format = "d", big.mark = ",")
