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
#' @return A tibble in coding order: `path`, the strata columns,
#'   `.inclusion_prob` and `.weight`. Add the coders' labels as a column.
#' @export
#' @examples
#' corpus <- tibble::tibble(path = sprintf("img%03d.jpg", 1:500),
#'                          .pred_class = rep(c("protest", "other"), c(50, 450)))
#' sample_for_coding(corpus, n = 40)
#' table(sample_for_coding(corpus, n = 40, strata = .pred_class)$.pred_class)
sample_for_coding <- function(predictions, n, strata = NULL, seed = 1) {
  predictions <- as_predictions(predictions)
  check_count(n)
  check_seed(seed)
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
  out <- tibble::tibble(path = paths[picked], !!!predictions[picked, strata_cols, drop = FALSE])
  out$.inclusion_prob <- take[stratum[picked]] / sizes[stratum[picked]]
  out$.weight <- 1 / out$.inclusion_prob
  out
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
