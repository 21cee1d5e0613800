#' List image files, reading their headers, with labels from folders or a table
#'
#' One row per image file: the unit of every later step. Files are
#' recognised by extension (jpg, jpeg, png, gif, bmp, tif, tiff, webp, in any
#' case); other files are ignored, and so is the metadata macOS leaves in
#' zip files (`._name.jpg` files, `__MACOSX/` folders, `.DS_Store`). Only
#' headers are read (plus a cheap end-of-file check), so large folders list
#' quickly.
#'
#' Files that can't be read (empty, truncated, not an image, or larger than
#' Pillow's decompression-bomb limit) are kept with `readable = FALSE` and a
#' `problem` saying why, and one warning names them. Later verbs skip them.
#'
#' **Labels from a spreadsheet.** Hand labels usually live in a table, one
#' row per image. Give it as `labels` (a CSV file or a data frame) and
#' `label` is taken from it instead of from folder names: its column `by`
#' names the images, either by file name (`"img001.jpg"`) or by path
#' relative to `path` (`"batch1/img001.jpg"`; absolute paths work too), and
#' its column `label_col` holds the label. To use another column as the
#' label, say so: `label_col = "coder_1"`. Blank cells of a CSV are `NA`.
#' Images without a label row get `NA`, and one warning lists some of them
#' and some of the label rows that name no image file.
#'
#' @param path A folder, or a character vector of image files. In a folder,
#'   class folders become `label`; `train`, `val` (or `valid`, `validation`)
#'   and `test` folders anywhere in the path set `split`, e.g.
#'   `path/train/protest/img.jpg`. For files, folders count from the files'
#'   deepest common folder. Paths may start with `~`.
#' @param labels Optional: a CSV file or a data frame with one row per
#'   image, holding the labels.
#' @param by The column of `labels` that names the images, by file name or
#'   by relative path. By default the first of `path`, `file`, `filename`,
#'   `file_name` or `image` that `labels` has.
#' @param label_col The column of `labels` holding the label.
#' @param recursive Look in sub-folders too.
#' @return A tibble with `path` (absolute), `label`, `split`, `file_size`
#'   (bytes), `width` and `height` (pixels as displayed, after the EXIF
#'   orientation), `format`, `readable` and `problem`.
#' @export
#' @examplesIf tv_available()
#' folder <- system.file("extdata", "images", package = "tidyvision")
#' imgs <- image_files(folder)
#' imgs
#' table(imgs$label)
#'
#' # Labels from a table, joined by file name:
#' coded <- data.frame(file = basename(imgs$path[1:6]),
#'                     label = c("yes", "no", "yes", "", "no", "yes"))
#' image_files(folder, labels = coded)
#'
#' # ... or by relative path, from a CSV, with the label in another column:
#' csv <- tempfile(fileext = ".csv")
#' write.csv(data.frame(path = file.path(imgs$label, basename(imgs$path)),
#'                      coder_1 = imgs$label), csv, row.names = FALSE)
#' image_files(folder, labels = csv, label_col = "coder_1")
#'
#' # A vector of files instead of a folder:
#' image_files(imgs$path[1:3])
image_files <- function(path, labels = NULL, by = NULL, label_col = "label", recursive = TRUE) {
  check_flag(recursive)
  check_string(label_col, "a column name")
  if (!is.null(by)) check_string(by, "a column name")
  where <- image_source(path)
  cols <- if (is.null(where$files)) {
    engine_call("images.list_images", where$root, recursive = recursive)
  } else {
    engine_call("images.list_files", as.list(where$files))
  }
  skipped <- as_schema(cols$skipped, "skipped_files")
  cols$skipped <- NULL
  out <- listing_tibble(cols)
  if (nrow(out) == 0) {
    tv_warn("No image files found in {.path {path}}.", class = "no_images")
  }
  if (!is.null(labels)) out <- join_labels(out, labels, by, label_col, where$root)
  warn_unreadable(out$path, ifelse(out$readable, NA, out$problem), "kept with {.code readable = FALSE}")
  inform_skipped(skipped)
  out
}

# Files that are not images are named, by kind, never dropped without a word.
inform_skipped <- function(skipped) {
  if (!nrow(skipped)) return(invisible())
  kinds <- vapply(split(skipped$extension, factor(skipped$kind, c("video", "other"))), function(ext) {
    if (!length(ext)) return("")
    counts <- sort(table(ifelse(nzchar(ext), ext, "no extension")), decreasing = TRUE)
    paste(paste0(counts, " ", names(counts)), collapse = ", ")
  }, "")
  kinds <- kinds[nzchar(kinds)]
  cli::cli_inform(c(i = "Skipped {nrow(skipped)} file{?s} that {?is/are} not an image: {paste(paste0(names(kinds), ' (', kinds, ')'), collapse = '; ')}.",
                    bullets_of(skipped$path, 3)),
                  class = c("tidyvision_message_skipped", "tidyvision_message"), skipped = skipped)
}

listing_tibble <- function(cols) as_schema(cols, "images")

# A folder (`root`), or files (`files`, with `root` their deepest common folder).
image_source <- function(path, call = caller_env()) {
  if (!is.character(path) || length(path) == 0 || anyNA(path)) {
    tv_abort("{.arg path} must be a folder or image file paths, not {.obj_type_friendly {path}}.",
             class = "bad_argument", call = call)
  }
  full <- expand_paths(path)
  if (length(path) == 1 && dir.exists(full)) return(list(root = full))
  gone <- !file.exists(full)
  if (any(gone)) abort_not_found(path[gone], call)
  if (any(dir.exists(full))) {
    tv_abort(c("{.arg path} must be one folder or image files, not several folders.",
               x = "Folders: {.path {path[dir.exists(full)]}}."), class = "bad_argument", call = call)
  }
  list(files = full, root = common_parent(dirname(full)))
}

abort_not_found <- function(path, call) {
  tv_abort(c("Can't find {.path {path}}.", i = "Check the spelling and the working directory ({.path {getwd()}})."),
           class = "path_not_found", call = call)
}

check_folder <- function(path, arg = rlang::caller_arg(path), call = caller_env()) {
  if (!rlang::is_string(path) || is.na(path) || !nzchar(path)) {
    tv_abort("{.arg {arg}} must be a single folder path, not {.obj_type_friendly {path}}.",
             class = "bad_argument", call = call)
  }
  if (!file.exists(path)) abort_not_found(path, call)
  if (!dir.exists(path)) {
    tv_abort(c("{.arg {arg}} must be a folder, but {.path {path}} is a file.",
               i = "Give the folder that holds the images."),
             class = "not_a_directory", call = call)
  }
  normalizePath(path)
}

# Paths from a character vector, a data frame with a `path` column, or one
# folder (its images, listed by the engine without reading them).
image_paths <- function(x, arg = rlang::caller_arg(x), call = caller_env()) {
  if (is.character(x) && length(x) == 1 && !is.na(x) && dir.exists(x)) {
    return(expand_paths(as.character(engine_call("images.find_image_paths", expand_paths(x), call = call))))
  }
  if (is.data.frame(x)) {
    if (!"path" %in% names(x)) {
      tv_abort(c("{.arg {arg}} has no {.field path} column.",
                 i = "Use a tibble from {.fn image_files} or a character vector of paths."),
               class = "missing_column", call = call)
    }
    x <- x$path
  }
  if (is.factor(x)) x <- as.character(x)
  if (!is.character(x)) {
    tv_abort("{.arg {arg}} must be image paths or a tibble from {.fn image_files}, not {.obj_type_friendly {x}}.",
             class = "bad_argument", call = call)
  }
  if (anyNA(x)) {
    tv_abort("{.arg {arg}} has {sum(is.na(x))} missing path{?s}.", class = "bad_argument", call = call)
  }
  expand_paths(x)
}

# Every user path enters through here: `~` expanded, made absolute and
# normalised, so the engine (which knows no `~`) and every join see one
# spelling of each file.
expand_paths <- function(x) {
  x <- normalizePath(path.expand(as.character(x)), winslash = "/", mustWork = FALSE)
  relative <- !is.na(x) & !grepl("^(/|[A-Za-z]:/)", x)
  x[relative] <- file.path(normalizePath(getwd(), winslash = "/"), x[relative])
  x
}

# Thumbnails as R rasters (NULL where unreadable), decoded in Python.
read_thumbnails <- function(paths, size = 128L) {
  arrays <- engine_call("images.thumbnails", as.list(paths), size = as.integer(size))
  lapply(arrays, function(a) if (is.null(a)) NULL else grDevices::as.raster(a / 255))
}

# image_files()'s `label` from a table: one row per image, keyed by file
# name or by path (relative to `root`, or absolute).
join_labels <- function(images, labels, by, label_col, root, call = caller_env()) {
  labels <- read_label_table(labels, call)
  by <- by %||% guess_key_column(labels, call)
  for (col in c(by, label_col)) {
    if (!rlang::is_string(col) || !col %in% names(labels)) {
      tv_abort(c("{.arg labels} has no column {.field {col}}.", i = "Columns: {.field {names(labels)}}.",
                 i = "Name the columns with {.arg by} (images) and {.arg label_col} (labels)."),
               class = "missing_column", call = call)
    }
  }
  keys <- label_keys(as.character(labels[[by]]), root)
  image_keys <- if (keys$by_name) basename(images$path) else images$path
  check_unique_keys(keys$key, image_keys, by, call)
  i <- match(image_keys, keys$key)
  images$label <- blank_to_na(labels[[label_col]])[i]
  warn_unmatched(images$path[is.na(i)], labels[[by]][!keys$key %in% image_keys])
  images
}

read_label_table <- function(labels, call) {
  if (is.data.frame(labels)) return(labels)
  if (!rlang::is_string(labels) || !file.exists(expand_paths(labels))) {
    tv_abort("{.arg labels} must be a data frame or the path of a CSV file, not {.obj_type_friendly {labels}}.",
             class = "bad_argument", call = call)
  }
  file <- expand_paths(labels)
  # Every column as text, so codes such as "007" or "1" stay labels, not numbers.
  table <- if (!dir.exists(file) && file.size(file) > 0) tryCatch(
    suppressWarnings(utils::read.csv(file, colClasses = "character", na.strings = c("", "NA"),
                                     strip.white = TRUE, check.names = FALSE, encoding = "UTF-8")),
    error = function(e) NULL
  )
  # binary files (an image given by mistake) read as a table of garbage names
  if (!is.data.frame(table) || !all(validUTF8(names(table)))) {
    tv_abort(c("{.arg labels} must be a CSV file of labels, but {.path {labels}} is {label_file_problem(file, table)}.",
               i = "Give a CSV with a column naming the images (such as {.field path}) and a label column."),
             class = "bad_labels", call = call)
  }
  table
}

label_file_problem <- function(file, table) {
  if (dir.exists(file)) return("a folder")
  if (file.size(file) == 0) return("empty")
  "not readable as CSV"
}

guess_key_column <- function(labels, call) {
  known <- c("path", "file", "filename", "file_name", "image")
  hit <- names(labels)[tolower(names(labels)) %in% known]
  if (length(hit) == 0) {
    tv_abort(c("Which column of {.arg labels} names the images?",
               i = "Say it with {.arg by}, e.g. {.code by = \"photo_id\"}; columns: {.field {names(labels)}}."),
             class = "missing_column", call = call)
  }
  hit[order(match(tolower(hit), known))][1]
}

# File names when no key has a folder in it; otherwise full paths.
label_keys <- function(x, root) {
  x <- gsub("\\\\", "/", trimws(x))
  if (!any(grepl("/", x))) return(list(key = x, by_name = TRUE))
  x <- sub("^\\./", "", x)
  absolute <- grepl("^(/|~|[A-Za-z]:/)", x)
  x[!absolute & !is.na(x)] <- file.path(root, x[!absolute & !is.na(x)])
  list(key = expand_paths(x), by_name = FALSE)
}

check_unique_keys <- function(keys, image_keys, by, call) {
  twice <- unique(keys[duplicated(keys) & !is.na(keys)])
  if (length(twice)) {
    tv_abort(c("{.arg labels} has more than one row for some images:", bullets_of(twice, 3),
               i = "Keep one row per image in {.field {by}}."), class = "duplicate_labels", call = call)
  }
  shared <- unique(image_keys[duplicated(image_keys) & image_keys %in% keys])
  if (length(shared)) {
    tv_abort(c("Some file names in {.field {by}} are in more than one folder:", bullets_of(shared, 3),
               i = "Give paths relative to {.arg path} instead, e.g. {.val cat/img1.jpg}."),
             class = "duplicate_labels", call = call)
  }
}

blank_to_na <- function(x) {
  if (is.character(x)) x[!is.na(x) & trimws(x) == ""] <- NA
  x
}

warn_unmatched <- function(files, rows) {
  if (length(files) == 0 && length(rows) == 0) return(invisible())
  n_files <- length(files)
  n_rows <- length(rows)
  tv_warn(c(
    "Some images and label rows don't match:",
    if (n_files) c(i = "{n_files} image file{?s} without a label row (label {.code NA}):", bullets_of(files, 3)),
    if (n_rows) c(i = "{n_rows} label row{?s} naming no image file:", bullets_of(rows, 3))
  ), class = "unmatched_labels")
}

# The one warning for images that couldn't be read (or written): how many,
# what became of them (`consequence`, cli markup, may pluralise), and a few
# of them with their problem. `problems` is NA where all went well.
warn_unreadable <- function(paths, problems, consequence, what = "can't be read") {
  bad <- !is.na(problems)
  if (!any(bad)) return(invisible())
  tv_warn(c(paste0("{sum(bad)} image{?s} ", what, "; ", consequence, ":"),
            bullets_of(paste0(paths[bad], ": ", problems[bad]))), class = "unreadable")
}
