#' Draw the images to hand-code
#'
#' A random sample of the corpus for coders to label, with each image's
#' inclusion probability recorded so [estimate_prevalence()] and
#' [estimate_regression()] can weight it and check it was drawn at random.
#'
#' **Why random.** PPI corrects the model's predictions by its average error
#' on the coded images; that average stands for the whole corpus only when
#' the coded images are a random draw from it. Hand-picked images, the first
#' folder, or the classifier's training and validation images (which the
#' model has seen, or which were chosen as clear examples) give an error
#' rate that is not the corpus's, and the interval loses its guarantee.
#' Code the images in the order given, and don't show coders the model's
#' predictions (the returned tibble leaves them out).
#'
#' **The model's own images.** Rows of `predictions` with `trained = TRUE`
#' (from [read_corpus()]: the image, or a resized or re-encoded copy of it,
#' trained or validated the classifier) are left out of the draw, with a
#' message saying how many: the model's errors on them are smaller than on
#' the rest of the corpus, so coding them would make the interval too
#' narrow. They then have no chance of being drawn; when they are more than
#' a sliver of the corpus, estimate the share among the other images.
#'
#' **Strata.** With `strata` (e.g. `.pred_class`), `n` is shared equally
#' among the strata (a stratum smaller than its share is coded whole), so a
#' rare predicted class still gets coded images. Inclusion probabilities then
#' differ; the estimators weight each coded image by `.weight` (1 /
#' inclusion probability), which keeps them unbiased.
#'
#' @param predictions The corpus's predictions (see [estimate_prevalence()]).
#' @param n How many images to code (see [plan_coding()]).
#' @param strata Columns of `predictions` to stratify by, or `NULL` for a
#'   simple random sample.
#' @param seed Random seed: the same seed draws the same sample.
#' @param include_trained `TRUE` to draw from the rows with `trained = TRUE`
#'   too ([estimate_prevalence()] then refuses them).
#' @return A tibble in coding order: `path`, the strata columns,
#'   `.inclusion_prob` and `.weight`. Add the coders' labels as a column.
#' @export
#' @examples
#' corpus <- tibble::tibble(path = sprintf("img%03d.jpg", 1:500),
#'                          .pred_class = rep(c("protest", "other"), c(50, 450)))
#' sample_for_coding(corpus, n = 40)
#' table(sample_for_coding(corpus, n = 40, strata = .pred_class)$.pred_class)
sample_for_coding <- function(predictions, n, strata = NULL, seed = 1, include_trained = FALSE) {
  predictions <- as_predictions(predictions)
  check_count(n)
  check_seed(seed)
  check_flag(include_trained)
  if (!include_trained) predictions <- drop_trained(predictions)
  paths <- image_paths(predictions, "predictions")
  strata_cols <- select_columns(predictions, rlang::enquo(strata), "strata")
  if (n > length(paths)) {
    tv_abort("{.arg n} is {n}, but the corpus has only {length(paths)} image{?s}.",
             class = "bad_argument")
  }
  stratum <- if (length(strata_cols)) vctrs::vec_group_id(predictions[strata_cols]) else rep(1L, length(paths))
  sizes <- tabulate(stratum)
  take <- equal_allocation(n, sizes)
  picked <- withr::with_seed(seed, {
    rows <- unlist(lapply(seq_along(sizes), function(h) {
      idx <- which(stratum == h)
      idx[sample.int(length(idx), take[h])]
    }))
    rows[sample.int(length(rows))]
  })
  # the paths as the user wrote them, so the codes join back to their own tables
  out <- tibble::tibble(path = as.character(predictions$path[picked]), !!!predictions[picked, strata_cols, drop = FALSE])
  out$.inclusion_prob <- take[stratum[picked]] / sizes[stratum[picked]]
  out$.weight <- 1 / out$.inclusion_prob
  out
}

# The rows whose image trained or validated the classifier, left out of a
# draw: the model's errors there are not the corpus's.
drop_trained <- function(predictions) {
  seen <- if ("trained" %in% names(predictions)) predictions$trained %in% TRUE else FALSE
  if (!any(seen)) return(predictions)
  n <- sum(seen)
  cli::cli_inform(c(i = "Left out {n} image{?s} that trained or validated the classifier ({.code trained = TRUE}): the model's errors on {?it/them} are smaller than on the corpus.",
                    " " = "Use {.code include_trained = TRUE} to draw from {cli::qty(n)}{?it/them} too."),
                  class = "tidyvision_message_trained")
  predictions[!seen, , drop = FALSE]
}

# `n` shared equally among strata of `sizes`; a stratum smaller than its
# share is taken whole and the rest shared among the others.
equal_allocation <- function(n, sizes) {
  take <- integer(length(sizes))
  open <- seq_along(sizes)
  while (length(open)) {
    share <- (n - sum(take)) / length(open)
    full <- open[sizes[open] <= share]
    if (!length(full)) break
    take[full] <- sizes[full]
    open <- setdiff(open, full)
  }
  left <- n - sum(take)
  if (length(open)) {
    take[open] <- left %/% length(open)
    extra <- open[order(-sizes[open])][seq_len(left %% length(open))]
    take[extra] <- take[extra] + 1L
  }
  take
}

# The smallest coded sample the estimators accept: PPI's intervals rest on
# the central limit theorem over the coded images.
MIN_CODED <- 20

check_coded_sample <- function(truth, classes, group, call) {
  where <- if (!is.null(group)) paste0(" in ", group) else ""
  if (length(truth) < MIN_CODED) {
    tv_abort(c("Only {length(truth)} coded image{?s}{where}; valid intervals need at least {MIN_CODED}.",
               i = "Code more images drawn with {.fn sample_for_coding}; {.fn plan_coding} says how many."),
             class = "too_few_coded", call = call)
  }
  missing <- setdiff(classes, truth)
  if (length(missing)) {
    tv_abort(c("No coded image{where} is of class {.val {missing}}.",
               i = "The error of the model on a class can't be measured without coded images of it.",
               i = "Code more images, or draw them stratified by {.field .pred_class} with {.fn sample_for_coding}."),
             class = "class_not_coded", call = call)
  }
}

# Coded labels that are not among the predicted classes: a class the model
# never predicts is allowed, but a case-only difference ("Ants" for "ants"),
# or no coded label a predicted class at all, is a naming mismatch, not a
# class with no coded images.
check_coded_labels <- function(truth, classes, call) {
  truth <- unique(stats::na.omit(as.character(truth)))
  unknown <- setdiff(truth, classes)
  case_only <- unknown[tolower(unknown) %in% tolower(classes)]
  if (!length(case_only) && (!length(unknown) || length(intersect(truth, classes)))) return(invisible())
  tv_abort(c("Coded labels {.val {unknown}} are not among the predicted classes {.val {classes}}.",
             i = if (length(case_only)) "Coded labels {.val {case_only}} differ from a class only in upper and lower case: recode them (e.g. with {.fn tolower}).",
             i = "The coded labels must use the classes' names exactly, as the predictions do."),
           class = "unknown_class", call = call)
}

check_in_corpus <- function(paths, row, call) {
  if (!anyNA(row)) return(invisible())
  tv_abort(c("{sum(is.na(row))} coded image{?s} {?is/are} not in {.arg predictions}:",
             bullets_of(paths[is.na(row)]),
             i = "Code images drawn from the corpus with {.fn sample_for_coding}; paths must match."),
           class = "not_in_corpus", call = call)
}

check_unique_paths <- function(paths, call) {
  dup <- unique(paths[duplicated(paths)])
  if (!length(dup)) return(invisible())
  tv_abort(c("{length(dup)} image{?s} {?is/are} coded more than once:", bullets_of(dup),
             i = "Keep one code per image (e.g. resolve disagreements between coders first)."),
           class = "duplicate_coded", call = call)
}

check_truths <- function(truth, col, paths, call) {
  bad <- is.na(truth) | trimws(truth) == ""
  if (!any(bad)) return(invisible())
  tv_abort(c("{sum(bad)} coded image{?s} ha{?s/ve} no {.field {col}}:", bullets_of(paths[bad]),
             i = "Finish coding them, or drop the rows if they were never coded (the rest must stay a random sample)."),
           class = "missing_truth", call = call)
}

# Coded images that are the classifier's own (or copies of them), by
# content: classify_folder()'s `trained` column.
check_not_trained <- function(predicted, call) {
  if (!"trained" %in% names(predicted)) return(invisible())
  seen <- predicted$trained %in% TRUE
  if (!any(seen)) return(invisible())
  n <- sum(seen)
  tv_abort(c("{n} coded image{?s} trained or validated the classifier ({.code trained = TRUE} in the predictions: the image or a resized or re-encoded copy of it).",
             x = "The model has seen {cli::qty(n)}{?it/them}, so its errors there are smaller than on the rest of the corpus: the correction would be too small and the interval too narrow.",
             i = "Code a fresh sample drawn with {.fn sample_for_coding}, which leaves such images out."),
           class = c("coded_trained", "not_random"), call = call)
}

# Did the content check see every coded image? (No `trained` column, or NA
# for an image, leaves it open.)
trained_checked <- function(predicted) {
  "trained" %in% names(predicted) && !anyNA(predicted$trained)
}

# Training and validation images are not a random sample of the corpus.
check_not_training <- function(paths, coded, predicted, training, call) {
  split <- c(if ("split" %in% names(coded)) coded$split, if ("split" %in% names(predicted)) predicted$split)
  seen <- normalize_split(split) %in% c("train", "val")
  if (!is.null(training)) seen <- c(seen, paths %in% image_paths(training, "training", call))
  if (!any(seen)) return(invisible())
  tv_abort(c("{sum(seen)} coded image{?s} {?was/were} used to train or validate the classifier.",
             x = "Those are not a random sample of the corpus: the model has seen them or they were picked as clear examples.",
             i = "Code a fresh random sample drawn with {.fn sample_for_coding}."),
           class = "not_random", call = call)
}

warn_unpredicted <- function(unpredicted) {
  if (!any(unpredicted)) return(invisible())
  tv_warn("{sum(unpredicted)} image{?s} with no prediction (unreadable?) {?is/are} left out of the corpus.",
          class = "unpredicted")
}

warn_sampling_unknown <- function() {
  tv_warn(c("{.arg coded} has no {.field .inclusion_prob} column, so its sampling can't be checked.",
            i = "The estimate assumes a simple random sample of the corpus; draw it with {.fn sample_for_coding}."),
          class = "sampling_unknown")
}

# "source = press" for the group holding `rows` of grouped data, else NULL.
group_label <- function(data, rows) {
  if (!dplyr::is_grouped_df(data)) return(NULL)
  keys <- data[rows[1], dplyr::group_vars(data), drop = FALSE]
  paste0("group ", paste(names(keys), vapply(keys, as.character, ""), sep = " = ", collapse = ", "))
}

#' How many images to hand-code
#'
#' The coded sample size that gives each class's share an interval of about
#' `width` (e.g. 0.05: plus or minus 2.5 points), by PPI's power analysis
#' (`ppi_py`'s `ppi_mean_power()` and `ppi_power()`; Broska, Howes & van
#' Loon 2024). The classical sample size `n_classical` gives the width from
#' the share's binomial variance; PPI needs fewer coded images the more the
#' model's predictions correlate with the truth (`correlation`), and the
#' more images are predicted. Estimate the correlation from a small random
#' pilot (`coded`, 20 or more images from [sample_for_coding()]), or assume
#' one (`correlation`; for a 0/1 prediction it is the phi coefficient, for
#' example about 0.6 for 80% sensitivity and specificity at a 30% share).
#'
#' @inheritParams estimate_prevalence
#' @param coded A random pilot sample with the coders' classes, or `NULL`
#'   with `correlation` given.
#' @param truth The column of `coded` with the class (with `coded`).
#' @param width The target width of the interval (upper minus lower bound).
#' @param correlation Without a pilot: the assumed PPI correlation between
#'   the truth and the model's prediction, in \[0, 1).
#' @return A `tv_plan` tibble, one row per class: `class, prevalence,
#'   correlation, n_classical, n_ppi, n_predicted, width, level`. The
#'   largest `n_ppi` is the number to code for every class; it is never
#'   below 20, the fewest coded images the estimators accept (with few
#'   coded images a good model may show no error at all, and the interval
#'   would then miss its own uncertainty: code more than the minimum). `autoplot()`
#'   draws the expected width against the number coded.
#' @export
#' @examplesIf tv_available()
#' corpus <- tibble::tibble(path = sprintf("img%04d.jpg", 1:5000),
#'                          .pred_class = rep(c("protest", "other"), c(1500, 3500)))
#' plan <- plan_coding(corpus, correlation = 0.7, width = 0.05)
#' plan
#' ggplot2::autoplot(plan)
plan_coding <- function(predictions, coded = NULL, truth = NULL, estimate = .pred_class, ...,
                        width = 0.05, level = 0.95, correlation = NULL) {
  check_dots_known(rlang::enquos(...), c("width", "level", "correlation"), "plan_coding")
  check_scalar(width, function(v) v > 0 && v < 1, "a number between 0 and 1, such as 0.05", "width", caller_env())
  check_level(level)
  predictions <- dplyr::ungroup(as_predictions(predictions))
  if (is.null(coded) == is.null(correlation)) {
    tv_abort(c("Give either a random pilot sample {.arg coded} or an assumed {.arg correlation}.",
               i = "Draw a pilot of 20 to 50 images with {.fn sample_for_coding} and code it."),
             class = "bad_argument")
  }
  if (is.null(coded) && !rlang::quo_is_null(rlang::enquo(truth))) {
    tv_abort(c("{.arg truth} is a column of {.arg coded}, but no {.arg coded} sample was given.",
               i = "With an assumed {.arg correlation}, leave {.arg truth} out."), class = "bad_argument")
  }
  if (!is.null(correlation)) check_scalar(correlation, function(v) v >= 0 && v < 1, "a number in [0, 1)", "correlation", caller_env())
  prep <- if (!is.null(coded)) {
    prepare_estimate(predictions, coded, rlang::enquo(truth), rlang::enquo(estimate), NULL)
  } else plan_assumed(predictions, rlang::enquo(estimate))
  if (!is.null(coded)) check_coded_sample(prep$coded$truth, prep$classes, NULL, caller_env())
  keep <- !prep$unpredicted
  rows <- lapply(prep$classes, function(k) plan_row(prep, keep, k, width, level, correlation))
  out <- dplyr::bind_rows(rows)
  tibble::new_tibble(out, class = "tv_plan")
}

# Without a pilot, the share is the model's own count of each class.
plan_assumed <- function(predictions, estimate, call = caller_env()) {
  col <- select_columns(predictions, estimate, "estimate", max = 1, call = call)
  check_one_column(col, "estimate", call)
  labels <- as.character(predictions[[col]])
  list(classes = estimate_classes(predictions[[col]], character()), labels = labels,
       unpredicted = is.na(labels), coded = NULL)
}

plan_row <- function(prep, keep, k, width, level, correlation) {
  n_corpus <- sum(keep)
  res <- if (is.null(correlation)) {
    coded <- prep$coded
    engine_call("estimates.power", as.list(as.numeric(coded$truth == k)),
                as.list(prep$yhat[coded$row, k]), n_corpus, width, level = level)
  } else {
    engine_call("estimates.power", list(), list(), n_corpus, width, level = level,
                correlation = correlation, prevalence = mean(prep$labels[keep] == k))
  }
  tibble::tibble(class = k, prevalence = res$prevalence, correlation = res$correlation,
                 n_classical = as.integer(res$n_classical), n_ppi = as.integer(max(res$n_ppi, MIN_CODED)),
                 n_predicted = n_corpus, width = width, level = level)
}

#' @export
autoplot.tv_plan <- function(object, ...) {
  curves <- dplyr::bind_rows(lapply(seq_len(nrow(object)), function(i) {
    row <- object[i, ]
    sizes <- unique(round(exp(seq(log(10), log(max(20, min(row$n_predicted, 1.5 * row$n_classical))), length.out = 80))))
    cols <- engine_call("estimates.width_curve", as.list(sizes), row$prevalence, row$correlation,
                        row$n_predicted, level = row$level)
    tibble::tibble(class = row$class, n = rep(col_of(cols$n, "dbl"), 2),
                   width = c(col_of(cols$classical, "dbl"), col_of(cols$ppi, "dbl")),
                   method = rep(c("Classical (coded images only)", "PPI (coded + predictions)"), each = length(sizes)))
  }))
  ggplot2::ggplot(curves, ggplot2::aes(.data$n, .data$width, colour = .data$method)) +
    ggplot2::geom_hline(yintercept = object$width[1], linetype = "dashed", colour = "grey50") +
    ggplot2::geom_line(linewidth = 0.8) +
    ggplot2::geom_vline(data = object, ggplot2::aes(xintercept = .data$n_ppi), colour = "grey30", linetype = "dotted") +
    ggplot2::geom_label(data = object, ggplot2::aes(x = .data$n_ppi, y = Inf, label = format_count(.data$n_ppi)),
                        inherit.aes = FALSE, vjust = 1.2, size = 3, label.size = 0, colour = "grey20") +
    ggplot2::facet_wrap(~class) +
    # Decades only, with thousands marks: neighbouring panels' end labels
    # ran together ("100010") with the default breaks.
    ggplot2::scale_x_log10(breaks = 10^(1:7), labels = function(x) ifelse(is.na(x), NA, format_count(x)),
                           expand = ggplot2::expansion(mult = 0.03)) +
    ggplot2::labs(x = "Images hand-coded (log scale)", y = sprintf("Expected width of the %g%% interval", 100 * object$level[1]),
                  colour = NULL, title = "How many images to hand-code",
                  subtitle = sprintf("Dashed: target width %g; dotted: images PPI needs", object$width[1])) +
    ggplot2::theme_minimal() +
    ggplot2::theme(legend.position = "bottom", panel.spacing.x = ggplot2::unit(1.5, "lines"))
}
