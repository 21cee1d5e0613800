#' Agreement between coders
#'
#' How far several coders who labelled the same images agree, the check that
#' comes before their labels are trusted for training or validation.
#' `labels` has one row per image and coder, as [read_labels()] returns it
#' (columns `path`, `coder` and `label`, or one numeric score column per
#' category). Images coded by a single coder don't count; a missing label
#' (a skipped image) is a missing value, as Krippendorff's alpha allows.
#'
#' **Metrics.** Krippendorff's alpha (computed by the `krippendorff` Python
#' package; checked against Krippendorff's own worked example in the tests)
#' handles any number of coders, missing values and the `level` of
#' measurement. For classes (`level = "nominal"`) there are also Fleiss'
#' kappa (generalised to a varying number of coders per image; Fleiss 1971
#' when every coder coded every image), Cohen's kappa for each pair of coders
#' (on the images both coded), and percent agreement (the share of coder
#' pairs that agree, averaged over images). Kappas and percent agreement are
#' nominal whatever `level` says.
#'
#' **Scores.** Numeric columns (the book's 0-10 rating per category, from
#' `label_images(mode = "scores")`) get the interval alpha, one row per
#' category. When `labels` has no `label` column and `label` is left at its
#' default, every numeric column except `time` is taken as a score column.
#' To judge agreement on the book's rule instead, apply [binarize_scores()]
#' to the scores and pass a `.label_<category>` column as `label`.
#'
#' **Intervals.** Percentile intervals from `times` resamples of the images
#' (all coders' labels of an image move together). The seed is applied
#' locally.
#'
#' @param labels A data frame with a `path` column, a coder column and one or
#'   more label columns, one row per image and coder.
#' @param coder The column (tidyselect) naming the coder.
#' @param label The label column(s) (tidyselect): classes (character,
#'   factor, logical) or scores (numeric). With more than one column each
#'   gets its own rows, named in a `.category` column.
#' @param level Level of measurement: `"nominal"`, `"ordinal"`,
#'   `"interval"` or `"ratio"`. `NULL` means `"nominal"` for classes and
#'   `"interval"` for numeric scores. Ordinal classes are ordered as in
#'   `classes` (or their factor levels).
#' @param classes Optional: the classes the coders could choose from. A label
#'   outside them is an error (`tidyvision_error_unknown_class`); classes
#'   nobody chose still count for Cohen's kappa.
#' @param conf_level Level of the intervals.
#' @param times Bootstrap resamples; `0` skips the intervals (`NA`).
#' @param seed Random seed of the resamples.
#' @return A tibble with `.metric` (`"krippendorff_alpha"`,
#'   `"fleiss_kappa"`, `"cohen_kappa"`, `"percent_agreement"`), `.estimate`,
#'   `.lower`, `.upper`, `n_units` (images coded by at least two of the
#'   coders in the row), `n_coders` and `coders` (which coders the row is
#'   about: all for the panel metrics, a pair for Cohen's kappa); plus
#'   `.category` first with several label columns.
#' @seealso [label_disagreements()] for the images to adjudicate.
#' @references Krippendorff, K. (2011). Computing Krippendorff's
#'   alpha-reliability. Fleiss, J. L. (1971). Measuring nominal scale
#'   agreement among many raters. *Psychological Bulletin*, 76(5), 378-382.
#' @export
#' @examplesIf tv_available()
#' paths <- image_files(system.file("extdata", "images", package = "tidyvision"))$path[1:6]
#' labels <- data.frame(
#'   path = rep(paths, 2),
#'   coder = rep(c("ann", "bob"), each = 6),
#'   label = c("cat", "cat", "dog", "dog", "cat", "dog",
#'             "cat", "dog", "dog", "dog", "cat", "dog")
#' )
#' label_agreement(labels, times = 200)
#'
#' # Scores, one interval alpha per category
#' scores <- data.frame(path = rep(paths, 2), coder = rep(c("ann", "bob"), each = 6),
#'                      protest = c(8, 0, 5, 9, 2, 0, 7, 1, 6, 9, 0, 0),
#'                      riot = c(0, 0, 4, 1, 8, 0, 1, 0, 2, 0, 9, 1))
#' label_agreement(scores, times = 200)
label_agreement <- function(labels, coder = coder, label = label, level = NULL, classes = NULL,
                            conf_level = 0.95, times = 1000, seed = 1) {
  call <- environment()
  check_conf_level(conf_level, call)
  check_times(times, call)
  check_seed(seed)
  if (!is.null(level)) level <- check_choice(level, c("nominal", "ordinal", "interval", "ratio"))
  coded <- coded_labels(labels, rlang::enquo(coder), rlang::enquo(label))
  tables <- lapply(coded$cols, function(col) {
    x <- reliability_values(labels[[col]], col, level, classes, call = call)
    res <- engine_call("agreement.agreement", reliability_rows(coded, x$values), as.list(coded$coders),
                       level = x$level, n_values = x$n_values, times = as.integer(times),
                       conf_level = conf_level, seed = as.integer(seed), call = call)
    as_schema(res, "agreement")
  })
  if (length(coded$cols) == 1) return(tables[[1]])
  out <- vctrs::vec_rbind(!!!tables)
  tibble::add_column(out, .category = rep(coded$cols, vapply(tables, nrow, 1L)), .before = 1)
}

#' Images the coders disagree on, for adjudication
#'
#' One row per image that at least two coders labelled differently, most
#' disputed first, for a third coder or a meeting to settle. Pass the paths
#' to [label_images()] (`order = ...`) to review them in the app.
#'
#' For scores, apply [binarize_scores()] first and pass a `.label_<category>`
#' column: coders disagree when the book's rule gives different labels.
#'
#' @inheritParams label_agreement
#' @param label The one label column (tidyselect).
#' @return A tibble with `path`, `n_coders` (coders who labelled the image),
#'   `n_labels` (distinct labels given), `majority` (the label most coders
#'   gave; `NA` on a tie), `agreement` (the share of its coders that gave
#'   the majority label) and `labels` (each label with its coders, e.g.
#'   `"cat (ann, cy); dog (bob)"`), ordered by `agreement`, then as in
#'   `labels`.
#' @export
#' @examples
#' labels <- data.frame(
#'   path = rep(c("a.jpg", "b.jpg", "c.jpg"), 3),
#'   coder = rep(c("ann", "bob", "cy"), each = 3),
#'   label = c("cat", "cat", "dog", "cat", "dog", "dog", "cat", "bird", "dog")
#' )
#' label_disagreements(labels)
label_disagreements <- function(labels, coder = coder, label = label) {
  coded <- coded_labels(labels, rlang::enquo(coder), rlang::enquo(label), max = 1)
  value <- as.character(labels[[coded$cols]])
  keep <- !is.na(value)
  units <- split(seq_along(value)[keep], coded$unit[keep])
  rows <- lapply(units, function(i) unit_disagreement(value[i], coded$coder_names[i]))
  out <- tibble::tibble(path = coded$units[as.integer(names(units))],
                        !!!vctrs::vec_rbind(!!!rows))
  out <- out[out$n_labels > 1, , drop = FALSE]
  out[order(out$agreement), , drop = FALSE]
}

unit_disagreement <- function(value, coders) {
  by_label <- split(coders, factor(value, levels = unique(value)))
  n <- lengths(by_label)
  top <- names(n)[n == max(n)]
  vctrs::data_frame(n_coders = length(coders), n_labels = length(n),
       majority = if (length(top) == 1) top else NA_character_,
       agreement = max(n) / length(coders),
       labels = paste0(names(n), " (", vapply(by_label, paste, "", collapse = ", "), ")", collapse = "; "))
}

# The coded table's shape: its images (units), coders and label columns,
# checked. Each row's unit and coder as indices.
coded_labels <- function(labels, coder, label, max = Inf, call = caller_env()) {
  check_images_df(labels, call = call)
  image_paths(labels, arg = "labels", call = call)
  coder_col <- select_columns(labels, coder, "coder", max = 1, call = call)
  cols <- label_columns(labels, label, max, call)
  who <- labels[[coder_col]]
  if (anyNA(who)) {
    tv_abort("{.arg labels} has {sum(is.na(who))} row{?s} with no {.field {coder_col}}.",
             class = "bad_argument", call = call)
  }
  coders <- if (is.factor(who)) levels(droplevels(who)) else sort(unique(as.character(who)))
  if (length(coders) < 2) {
    tv_abort(c("{.arg labels} has labels from {if (length(coders)) 'one coder' else 'no coder'} only{if (length(coders)) paste0(' (', coders, ')')}.",
               i = "Agreement needs at least two coders who labelled the same images."),
             class = "one_coder", call = call)
  }
  key <- paste(labels$path, who, sep = "\r")
  if (anyDuplicated(key)) {
    dup <- unique(labels$path[duplicated(key)])
    tv_abort(c("{.arg labels} has more than one row for the same image and coder:", bullets_of(dup),
               i = "Keep one label per image and coder; {.fn read_labels} keeps each coder's last."),
             class = "duplicate_labels", call = call)
  }
  units <- unique(labels$path)
  list(units = units, coders = coders, cols = cols, unit = match(labels$path, units),
       coder = match(as.character(who), coders), coder_names = as.character(who))
}

label_columns <- function(labels, label, max, call) {
  if (rlang::quo_is_symbol(label) && rlang::as_name(label) == "label" && !"label" %in% names(labels)) {
    numeric <- names(labels)[vapply(labels, is.numeric, logical(1))]
    cols <- setdiff(numeric, c("time", "path", "coder"))
    if (length(cols) == 0) {
      tv_abort(c("{.arg labels} has no {.field label} column and no numeric score columns.",
                 i = "Name the label column with {.arg label}, e.g. {.code label = category}."),
               class = "missing_column", call = call)
    }
  } else {
    cols <- select_columns(labels, label, "label", max = max, call = call)
  }
  if (length(cols) == 0 || length(cols) > max) {
    tv_abort("{.arg label} must select {if (max == 1) 'one column' else 'at least one column'}.",
             class = "bad_argument", call = call)
  }
  cols
}

# A label column as numbers for the engine: scores as they are, classes as
# indices 0..K-1 into `classes`.
reliability_values <- function(x, col, level, classes, call) {
  if (is.numeric(x) && !identical(level, "nominal")) {
    return(list(values = as.double(x), level = level %||% "interval", n_values = NULL))
  }
  level <- level %||% "nominal"
  if (level %in% c("interval", "ratio")) {
    tv_abort(c("{.arg level} {.val {level}} needs numeric scores, but {.field {col}} holds classes.",
               i = "Use {.code level = \"nominal\"} or {.code \"ordinal\"}."), class = "bad_argument", call = call)
  }
  classes <- coding_classes(x, col, classes, call)
  list(values = match(as.character(x), classes) - 1, level = level, n_values = length(classes))
}

coding_classes <- function(x, col, classes, call) {
  if (is.null(classes)) return(as.character(coded_classes(x)))
  seen <- unique(as.character(x[!is.na(x)]))
  unknown <- setdiff(seen, as.character(classes))
  if (length(unknown)) {
    tv_abort(c("{.field {col}} has {length(unknown)} label{?s} not in {.arg classes}:", bullets_of(unknown),
               i = "The classes are {.val {classes}}."), class = "unknown_class", call = call)
  }
  as.character(classes)
}

# One list per coder, one value per image (NA where not coded).
reliability_rows <- function(coded, values) {
  m <- matrix(NA_real_, length(coded$coders), length(coded$units))
  m[cbind(coded$coder, coded$unit)] <- values
  matrix_rows(m)
}
