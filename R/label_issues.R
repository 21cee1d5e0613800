#' Find images whose label is probably wrong
#'
#' Confident learning (Northcutt, Jiang & Chuang 2021) through the `cleanlab`
#' Python package: every image is classified by a model that never saw it
#' (out-of-fold probabilities from `folds` logistic-regression heads on
#' pretrained embeddings, see [image_embeddings()]), and an image is an issue
#' when the model is confident it belongs to another class, by more than the
#' noise that each pair of classes shows overall (cleanlab's defaults:
#' `prune_by_noise_rate`). This takes seconds once the embeddings are cached,
#' so run it whenever a batch of labels comes in.
#'
#' **Review queue.** `label_quality` (cleanlab's self-confidence: the
#' out-of-fold probability of the given label) ranks every image, issue or
#' not: sort by it and review from the top, e.g.
#' `dplyr::arrange(issues, label_quality)`, or hand that order to
#' `label_images(order = ...)`. On the shipped photos with 10% of labels
#' flipped, the issues held about 90% of the flips, and the lowest
#' `label_quality` images as many as were flipped were 80-100% flips (see
#' the tests).
#'
#' @param images A data frame with a `path` column and a label column, one
#'   row per image (e.g. [image_files()], or `read_labels()` after
#'   adjudication).
#' @param label The label column (tidyselect). Rows with a missing label are
#'   kept, with `NA` results.
#' @param folds Number of cross-validation folds; every class needs at least
#'   this many images.
#' @param backbone The backbone whose embeddings the heads are fitted on.
#' @param seed Random seed of the folds and heads.
#' @param image_size,resize,batch_size Preprocessing and batch size of the
#'   embeddings, as in [image_embeddings()].
#' @param verbose Show a progress bar.
#' @return A tibble with one row per row of `images`, in input order: `path`,
#'   `label` (as given), `label_quality` (0 to 1, low is suspect),
#'   `is_issue`, `suggested_label` (the class the out-of-fold model finds
#'   most likely) and one `.pred_<class>` column per class. Unreadable images
#'   get `NA` and one warning.
#' @references Northcutt, C., Jiang, L., & Chuang, I. (2021). Confident
#'   learning: Estimating uncertainty in dataset labels. *Journal of
#'   Artificial Intelligence Research*, 70, 1373-1411.
#' @export
#' @examplesIf tv_available()
#' imgs <- image_files(system.file("extdata", "images", package = "tidyvision"))
#' imgs$label[c(3, 40, 70)] <- c("tools", "animals", "buildings")  # three wrong labels
#' issues <- find_label_issues(imgs, image_size = 128)
#' # the review queue: most suspect first
#' head(issues[order(issues$label_quality), c("path", "label", "label_quality", "suggested_label")])
find_label_issues <- function(images, label = label, folds = 5, backbone = "efficientnet_lite0",
                              seed = 1, image_size = 224, resize = c("rescale_crop", "squish", "crop", "pad"),
                              batch_size = 64, verbose = tv_verbose()) {
  check_images_df(images)
  paths <- image_paths(images)
  col <- select_columns(images, rlang::enquo(label), "label", max = 1)
  if (length(col) == 0) tv_abort("{.arg label} must select one column.", class = "bad_argument")
  lab <- images[[col]]
  classes <- coded_classes(lab)
  check_count(folds)
  check_fold_sizes(lab, classes, folds)
  check_seed(seed)
  check_flag(verbose)
  check_count(image_size)
  check_count(batch_size)
  model <- embedding_model(backbone, image_size, check_choice(resize), environment())
  y <- match(lab, classes) - 1L
  y[is.na(y)] <- -1L  # no label: embedded, not fitted
  res <- do.call(engine_call, c(
    list("label_issues.find_label_issues", as.list(paths), as.list(y),
         length(classes), folds = as.integer(folds), seed = as.integer(seed)),
    model, list(batch_size = as.integer(batch_size), progress = progress_callback(verbose, "Embedding images"))
  ))
  warn_unreadable(paths, col_of(res$problem), "{?its/their} label issues are NA")
  suggested <- col_of(res$suggested, "int") + 1L
  out <- tibble::tibble(path = paths, label = lab, label_quality = col_of(res$label_quality, "dbl"),
                        is_issue = col_of(res$is_issue, "lgl"), suggested_label = classes[suggested])
  if (is.factor(lab)) out$suggested_label <- factor(out$suggested_label, levels = classes)
  tibble::as_tibble(cbind(out, prob_columns(res$prob, classes)))
}

# The classes of a label column, in the order users expect: factor levels,
# else sorted values (logicals FALSE, TRUE).
coded_classes <- function(x) {
  if (is.factor(x)) levels(x) else sort(unique(x[!is.na(x)]))
}

check_fold_sizes <- function(lab, classes, folds, call = caller_env()) {
  n <- table(factor(as.character(lab), levels = as.character(classes)))
  small <- n[n < folds]
  if (length(classes) < 2 || length(small)) {
    tv_abort(c("{.arg label} needs at least two classes with {folds} or more labelled images each.",
               x = if (length(small)) "Too few: {paste0(names(small), ' (', small, ')')}.",
               x = if (length(classes) < 2) "Found {length(classes)} class{?es}.",
               i = "Label more images of these classes, or lower {.arg folds}."),
             class = "too_few_images", call = call)
  }
}

# Probabilities from the engine as `.pred_<class>` columns (NA where NaN).
prob_columns <- function(prob, classes) {
  if (!is.matrix(prob)) prob <- matrix(prob, ncol = length(classes))
  prob[is.nan(prob)] <- NA_real_
  colnames(prob) <- paste0(".pred_", classes)
  tibble::as_tibble(as.data.frame(prob, check.names = FALSE))
}
