# The label file written by label_images(): a log of every key that changed a
# label, appended one line at a time, never rewritten. Its first line marks the
# format and records the mode and classes; the current labels are the log
# replayed (read_labels()).

LABEL_MARKER <- "#tidyvision-labels"
LABEL_COLUMNS <- c("path", "coder", "action", "label", "time")
LABEL_MODES <- c("classes", "multi", "scores")

#' Read the labels written by label_images()
#'
#' [label_images()] appends one line to its label file for every key that
#' changes a label, before the app shows the key as saved, so no key shown
#' as saved is lost when R or the browser dies. This
#' replays that log and returns the labels as they stand: one row per image
#' and coder.
#'
#' @section The label file:
#' A CSV file with two header lines:
#'
#' 1. A format marker, `#tidyvision-labels` followed by JSON giving the
#'    format `version`, the `mode` and the `classes`, e.g.
#'    `#tidyvision-labels {"version":1,"mode":"classes","classes":["cat","dog"]}`.
#' 2. The column names `path,coder,action,label,time`.
#'
#' Then one row per key: `path` (absolute), `coder`, `action` (`label`,
#' `skip` or `undo`), `label` and `time` (ISO 8601, UTC, to the
#' millisecond). Every field is quoted; an empty field is missing. `label` is
#' the class for `mode = "classes"`, the chosen classes joined by `|` for
#' `mode = "multi"` (`"cat|dog"`), and the scores for `mode = "scores"` as
#' `class=score` pairs joined by `;` (`"cat=7;dog="`, an empty score not yet
#' given). `skip` and `undo` rows have no label. An `undo` row cancels the
#' latest row of the same path and coder that is not cancelled yet; the
#' current label of an image for a coder is the latest row left.
#'
#' To read the file elsewhere, skip its first line (in R,
#' `read.csv(file, skip = 1)`) and keep the last non-undone row per path and
#' coder.
#'
#' @param output The label file written by [label_images()].
#' @param coder Optional: the coders whose labels to return (all by default).
#' @return A tibble with one row per image and coder: `path`, `coder`, then
#'   `label` (character: the class, or for `mode = "multi"` the classes
#'   joined by `|`) or, for `mode = "scores"`, one numeric column per class
#'   (0-10, `NA` where not scored; ready for [binarize_scores()]), then
#'   `skipped` (`TRUE` when the coder skipped the image; its label is `NA`)
#'   and `time` (of the label, POSIXct UTC). Images whose every action was
#'   undone have no row.
#' @seealso [label_images()] to label images.
#' @export
#' @examples
#' file <- tempfile(fileext = ".csv")
#' writeLines(c(
#'   '#tidyvision-labels {"version":1,"mode":"classes","classes":["cat","dog"]}',
#'   "path,coder,action,label,time",
#'   '"/img/a.jpg","ana","label","cat","2024-05-01T10:00:00.000Z"',
#'   '"/img/a.jpg","ana","label","dog","2024-05-01T10:00:02.000Z"',
#'   '"/img/b.jpg","ana","skip",,"2024-05-01T10:00:03.000Z"',
#'   '"/img/a.jpg","ben","label","cat","2024-05-01T10:01:00.000Z"',
#'   '"/img/b.jpg","ben","label","dog","2024-05-01T10:01:01.000Z"',
#'   '"/img/b.jpg","ben","undo",,"2024-05-01T10:01:02.000Z"'
#' ), file)
#' read_labels(file)
#' read_labels(file, coder = "ana")
read_labels <- function(output, coder = NULL) {
  call <- rlang::current_env()
  check_label_output(output, call)
  if (!is.null(coder) && (!is.character(coder) || anyNA(coder))) {
    tv_abort("{.arg coder} must be coder names, not {.obj_type_friendly {coder}}.",
             class = "bad_argument", call = call)
  }
  log <- read_label_log(output, call)
  if (!is.null(coder)) log$rows <- log$rows[log$rows$coder %in% coder, ]
  label_table(label_current(log$rows), log$meta)
}

# The current row per path and coder, as the documented tibble.
label_table <- function(rows, meta) {
  skipped <- rows$action == "skip"
  out <- tibble::tibble(path = rows$path, coder = rows$coder)
  if (meta$mode == "scores") {
    scores <- label_scores(rows$label, meta$classes)
    for (k in meta$classes) out[[k]] <- scores[, k]
  } else {
    out$label <- rows$label
  }
  out$skipped <- skipped
  out$time <- as.POSIXct(rows$time, format = "%Y-%m-%dT%H:%M:%OSZ", tz = "UTC")
  out
}

# Undo rows cancel the latest uncancelled row of their path and coder; what is
# left, in file order, is what each coder did.
label_effective <- function(rows) {
  key <- paste(rows$coder, rows$path, sep = "\r")
  keep <- rep(FALSE, nrow(rows))
  stacks <- new.env(hash = TRUE, parent = emptyenv())
  for (r in seq_len(nrow(rows))) {
    s <- stacks[[key[[r]]]]
    if (rows$action[[r]] == "undo") {
      if (length(s)) keep[s[[length(s)]]] <- FALSE
      s <- s[-length(s)]
    } else {
      keep[[r]] <- TRUE
      s <- c(s, r)
    }
    assign(key[[r]], s, envir = stacks)
  }
  rows[keep, , drop = FALSE]
}

label_current <- function(rows) {
  eff <- label_effective(rows)
  eff[!duplicated(paste(eff$coder, eff$path, sep = "\r"), fromLast = TRUE), , drop = FALSE]
}

# Scores "a=7;b=" as a numeric matrix with one column per class.
label_scores <- function(label, classes) {
  out <- matrix(NA_real_, length(label), length(classes), dimnames = list(NULL, classes))
  for (r in which(!is.na(label))) {
    pairs <- strsplit(strsplit(label[[r]], ";", fixed = TRUE)[[1]], "=", fixed = TRUE)
    values <- suppressWarnings(as.numeric(vapply(pairs, function(p) p[2], "")))
    out[r, vapply(pairs, `[[`, "", 1)] <- values
  }
  out
}

label_encode <- function(mode, classes, value) {
  switch(mode,
    classes = value,
    multi = paste(classes[classes %in% value], collapse = "|"),
    scores = paste0(classes, "=", ifelse(is.na(value), "", value), collapse = ";")
  )
}

# The marker line, its JSON and the column names, or a classed error naming the
# file: a file we did not write is never appended to, let alone overwritten.
read_label_meta <- function(output, call) {
  head <- readLines(output, n = 2, warn = FALSE, encoding = "UTF-8")
  meta <- NULL
  if (length(head) == 2 && startsWith(head[[1]], paste0(LABEL_MARKER, " ")) &&
      identical(head[[2]], paste(LABEL_COLUMNS, collapse = ","))) {
    meta <- tryCatch(jsonlite::fromJSON(sub(LABEL_MARKER, "", head[[1]], fixed = TRUE)),
                     error = function(e) NULL)
  }
  if (!is.list(meta) || !isTRUE(meta$mode %in% LABEL_MODES) || !is.character(meta$classes)) {
    tv_abort(c("{.path {output}} is not a tidyvision label file.",
               x = "Its first line is not {.code {LABEL_MARKER} {{...}}} followed by the columns {.field {LABEL_COLUMNS}}.",
               i = "Give {.arg output} a new file name: label files are written by {.fn label_images}, which never overwrites another file."),
             class = "labels_file", call = call)
  }
  meta
}

# The header and every row. A last line without its newline is kept when it
# is a whole row (some editors save files so); one that is not is the key
# being written when R died: it is dropped with a warning.
read_label_log <- function(output, call) {
  meta <- read_label_meta(output, call)
  lines <- readLines(output, warn = FALSE, encoding = "UTF-8")[-1]
  if (!ends_with_newline(output) && length(lines) > 1 && !label_row_whole(lines[[length(lines)]])) {
    tv_warn("Dropped the unfinished last line of {.path {output}} (R stopped while writing it).",
            class = "labels_file")
    lines <- lines[-length(lines)]
  }
  rows <- read_label_rows(lines)
  bad <- if (is.null(rows)) NA else label_bad_rows(rows)
  if (length(bad)) {
    tv_abort(c("{.path {output}} is a damaged label file.",
               x = if (anyNA(bad)) "Its rows can't be read as CSV." else "Line{?s} {bad + 2} {?is/are} not a label, skip or undo row with a path, coder and time.",
               i = "Restore it from a copy, or remove the damaged lines by hand."),
             class = "labels_file", call = call)
  }
  check_label_values(rows, meta, output, call)
  list(meta = meta, rows = rows)
}

# The column-names line and rows as a character data frame; NULL when they
# are not CSV with those columns.
read_label_rows <- function(lines) {
  rows <- tryCatch(
    utils::read.csv(text = lines, colClasses = "character", na.strings = "", encoding = "UTF-8"),
    error = function(e) NULL, warning = function(w) NULL
  )
  if (is.null(rows) || !identical(names(rows), LABEL_COLUMNS)) NULL else rows
}

# The rows that are not a label, skip or undo with a path, coder and time.
label_bad_rows <- function(rows) {
  which(!rows$action %in% c("label", "skip", "undo") | is.na(rows$path) | is.na(rows$coder) |
          is.na(as.POSIXct(rows$time, format = "%Y-%m-%dT%H:%M:%OSZ", tz = "UTC")))
}

label_row_whole <- function(line) {
  rows <- read_label_rows(c(paste(LABEL_COLUMNS, collapse = ","), line))
  !is.null(rows) && nrow(rows) == 1 && !length(label_bad_rows(rows))
}

ends_with_newline <- function(path) {
  size <- file.size(path)
  con <- file(path, "rb")
  on.exit(close(con))
  seek(con, size - 1)
  identical(readBin(con, "raw", 1), as.raw(10))
}

# Every label must be one of the file's classes (scores: 0-10 per class).
check_label_values <- function(rows, meta, output, call) {
  lab <- rows$label[rows$action == "label"]
  known <- switch(meta$mode,
    classes = lab %in% meta$classes,
    multi = vapply(strsplit(lab, "|", fixed = TRUE), function(v) length(v) > 0 && all(v %in% meta$classes), TRUE),
    scores = scores_valid(lab, meta$classes)
  )
  if (all(known)) return(invisible())
  tv_abort(c("{.path {output}} has labels that are not among its classes ({.val {meta$classes}}).",
             x = "Unknown: {.val {unique(lab[!known])}}.",
             i = "Fix or remove those rows; to label with other classes, start a new {.arg output} file."),
           class = "unknown_label", call = call)
}

scores_valid <- function(label, classes) {
  vapply(label, function(l) {
    pairs <- strsplit(strsplit(l, ";", fixed = TRUE)[[1]], "=", fixed = TRUE)
    cats <- vapply(pairs, `[[`, "", 1)
    values <- suppressWarnings(as.numeric(vapply(pairs, function(p) if (length(p) > 1) p[[2]] else "", "")))
    setequal(cats, classes) && !anyDuplicated(cats) &&
      all(is.na(values) | values %in% 0:10) && !all(is.na(values))
  }, TRUE, USE.NAMES = FALSE)
}

# `output` of label_images(): one file path, not a folder.
check_label_file_arg <- function(output, call) {
  if (!rlang::is_string(output) || !nzchar(output)) {
    tv_abort(c("{.arg output} must be the path of the label file, not {shown_value(output)}.",
               i = "Give a file name such as {.file labels.csv}."), class = "bad_argument", call = call)
  }
  if (dir.exists(output)) {
    tv_abort(c("{.arg output} must be a file, but {.path {output}} is a folder.",
               i = "Give a file in it, such as {.path {file.path(output, 'labels.csv')}}."),
             class = "bad_argument", call = call)
  }
}

# `output` of read_labels(): as above, and the file must exist.
check_label_output <- function(output, call) {
  check_label_file_arg(output, call)
  if (!file.exists(output)) abort_not_found(output, call)
}

# Opens the label file for label_images(): checks an existing one holds the
# same mode and classes, or creates it with its header (atomically).
open_label_file <- function(output, mode, classes, call) {
  output <- expand_paths(output)
  if (file.exists(output)) {
    meta <- read_label_meta(output, call)
    if (!identical(meta$mode, mode) || !identical(as.character(meta$classes), classes)) {
      tv_abort(c("{.path {output}} holds {.val {meta$mode}} labels for the classes {.val {meta$classes}}.",
                 x = "You asked for {.val {mode}} labels for {.val {classes}}.",
                 i = "Use the same {.arg mode} and {.arg classes} to continue it, or give a new {.arg output} file."),
               class = "labels_file", call = call)
    }
    log <- read_label_log(output, call)
    if (!ends_with_newline(output)) end_label_file(output, nrow(log$rows) + 2)
    return(output)
  }
  if (!dir.exists(dirname(output))) abort_not_found(dirname(output), call)
  meta <- jsonlite::toJSON(list(version = 1L, mode = mode, classes = I(classes)), auto_unbox = TRUE)
  write_atomic(c(paste(LABEL_MARKER, meta), paste(LABEL_COLUMNS, collapse = ",")), output)
  output
}

# So that the next row starts on its own line: a whole last row gets its
# newline appended (nothing in the file changes); a row cut short is dropped.
end_label_file <- function(output, n_lines) {
  lines <- readLines(output, warn = FALSE, encoding = "UTF-8")
  if (length(lines) == n_lines) {
    cat("\n", file = output, append = TRUE)
  } else {
    write_atomic(lines[seq_len(n_lines)], output)
  }
}

# One row, appended and flushed at once: the file is opened, written and
# closed for every key; the page counts a key as saved only after this returns.
append_label_row <- function(output, path, coder, action, label = NA) {
  fields <- c(path, coder, action, label, format(Sys.time(), "%Y-%m-%dT%H:%M:%OS3Z", tz = "UTC"))
  line <- paste(ifelse(is.na(fields), "", paste0('"', gsub('"', '""', fields, fixed = TRUE), '"')),
                collapse = ",")
  con <- file(output, open = "a", encoding = "UTF-8")
  on.exit(close(con))
  writeLines(line, con)
  flush(con)
}
