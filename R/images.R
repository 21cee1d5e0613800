#' List the images in a folder, reading their headers
#'
#' One row per image file below `path`: the unit of every later step. Files
#' are recognised by extension (jpg, jpeg, png, gif, bmp, tif, tiff, webp, in
#' any case); other files are ignored. Only headers are read (plus a cheap
#' end-of-file check), so large folders list quickly.
#'
#' Files that can't be read (empty, truncated, not an image, or larger than
#' Pillow's decompression-bomb limit) are kept with `readable = FALSE` and a
#' `problem` saying why, and one warning names them. Later verbs skip them.
#'
#' @param path A folder. Class folders become `label`; `train`, `val`
#'   (or `valid`, `validation`) and `test` folders anywhere in the path set
#'   `split`, e.g. `path/train/protest/img.jpg`.
#' @param recursive Look in sub-folders too.
#' @return A tibble with `path` (absolute), `label`, `split`, `file_size`
#'   (bytes), `width` and `height` (pixels as displayed, after the EXIF
#'   orientation), `format`, `readable` and `problem`.
#' @export
#' @examplesIf tv_available()
#' imgs <- image_files(system.file("extdata", "images", package = "tidyvision"))
#' imgs
#' table(imgs$label)
image_files <- function(path, recursive = TRUE) {
  path <- check_folder(path)
  check_flag(recursive)
  cols <- engine_call("images.list_images", path, recursive = recursive)
  out <- tibble::tibble(
    path = col_of(cols$path),
    label = col_of(cols$label),
    split = col_of(cols$split),
    file_size = col_of(cols$file_size, "dbl"),
    width = col_of(cols$width, "int"),
    height = col_of(cols$height, "int"),
    format = col_of(cols$format),
    readable = col_of(cols$readable, "lgl"),
    problem = col_of(cols$problem)
  )
  if (nrow(out) == 0) {
    tv_warn("No image files found in {.path {path}}.", class = "no_images")
  }
  warn_unreadable(out)
  out
}

warn_unreadable <- function(images) {
  bad <- images[!images$readable, , drop = FALSE]
  if (nrow(bad) == 0) return(invisible())
  tv_warn(c(
    "{nrow(bad)} image file{?s} can't be read; kept with {.code readable = FALSE}:",
    bullets_of(paste0(bad$path, ": ", bad$problem))
  ), class = "unreadable")
}

check_folder <- function(path, arg = rlang::caller_arg(path), call = caller_env()) {
  if (!rlang::is_string(path)) {
    tv_abort("{.arg {arg}} must be a single folder path, not {.obj_type_friendly {path}}.",
             class = "bad_argument", call = call)
  }
  if (!file.exists(path)) {
    tv_abort(c("Can't find {.path {path}}.", i = "Check the spelling and the working directory ({.path {getwd()}})."),
             class = "path_not_found", call = call)
  }
  if (!dir.exists(path)) {
    tv_abort(c("{.arg {arg}} must be a folder, but {.path {path}} is a file.",
               i = "Give the folder that holds the images."),
             class = "not_a_directory", call = call)
  }
  normalizePath(path)
}

check_flag <- function(x, arg = rlang::caller_arg(x), call = caller_env()) {
  if (!rlang::is_bool(x)) {
    tv_abort("{.arg {arg}} must be TRUE or FALSE, not {.obj_type_friendly {x}}.",
             class = "bad_argument", call = call)
  }
}

# Paths from a character vector or a data frame with a `path` column.
image_paths <- function(x, arg = rlang::caller_arg(x), call = caller_env()) {
  if (is.data.frame(x)) {
    if (!"path" %in% names(x)) {
      tv_abort(c("{.arg {arg}} has no {.field path} column.",
                 i = "Use a tibble from {.fn image_files} or a character vector of paths."),
               class = "missing_column", call = call)
    }
    x <- x$path
  }
  if (!is.character(x)) {
    tv_abort("{.arg {arg}} must be image paths or a tibble from {.fn image_files}, not {.obj_type_friendly {x}}.",
             class = "bad_argument", call = call)
  }
  if (anyNA(x)) {
    tv_abort("{.arg {arg}} has {sum(is.na(x))} missing path{?s}.", class = "bad_argument", call = call)
  }
  path.expand(x)
}

# Thumbnails as R rasters (NULL where unreadable), decoded in Python.
read_thumbnails <- function(paths, size = 128L) {
  arrays <- engine_call("images.thumbnails", as.list(paths), size = as.integer(size))
  lapply(arrays, function(a) if (is.null(a)) NULL else grDevices::as.raster(a / 255))
}
