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
#' `split` of train or val (in `coded` or `predictions`), any in
#' `training`, and, by content, any whose prediction row has `trained = TRUE`
#' (the output of [classify_folder()] flags the classifier's own images and
#' their resized or re-encoded copies): an error of class
#' `tidyvision_error_coded_trained` (also `tidyvision_error_not_random`).
#' [describe()] calls the sample simple random only when that content check
#' covered every coded image. A `coded` without the `.inclusion_prob` column of
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
  attr(out, "trained_checked") <- prep$trained_checked
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
  check_coded_labels(coded[[truth_col]], estimate_classes(predictions[[est_col]], NULL), call)
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
       trained_checked = rows$trained_checked,
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
  check_not_trained(predictions[row, , drop = FALSE], call)
  keep <- !unpredicted[row]
  weight <- if (".weight" %in% names(coded)) as.numeric(coded$.weight)[keep]
  sampling <- if (!".inclusion_prob" %in% names(coded)) "unknown" else
    if (length(unique(coded$.inclusion_prob)) > 1) "stratified" else "random"
  if (sampling == "unknown") warn_sampling_unknown()
  list(coded = tibble::tibble(row = row[keep], truth = truth[keep], weight = weight),
       sampling = sampling, trained_checked = trained_checked(predictions[row, , drop = FALSE]))
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
