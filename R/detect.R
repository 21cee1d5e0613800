#' Detect and locate objects with YOLO
#'
#' Runs a YOLO detector (ultralytics) over images and returns one row per
#' object found: its class, confidence and box. Boxes are in pixels of the
#' image as displayed (after its EXIF orientation), with the origin at the
#' top left. Images are decoded once, upright, and sent in batches.
#'
#' Every image appears in the result: an image with no object is one row
#' with `object`, `class`, `confidence` and the box `NA`, so that
#' [count_objects()] reports zero for it. An image that can't be read is
#' such a row too, with `image_width` and `image_height` also `NA`, and one
#' warning names them.
#'
#' **Weights and the network.** `model` is a `.pt` file, a detector from
#' [train_detector()], or the name of a model ultralytics publishes, such as
#' `"yolov8n.pt"` (trained on the 80 COCO classes: person, car, dog, ...).
#' A bare name means the published weights: it is never looked up in the
#' working directory (where a file of that name may have come with someone
#' else's data; give `"./yolov8n.pt"` to use such a file on purpose). The
#' weights are looked for in tidyvision's cache folder, and downloaded into
#' it only if they are missing and the machine is online; a message says
#' where they were found. Offline (or with the environment variable
#' `TIDYVISION_OFFLINE=1` or `YOLO_OFFLINE=1` set before tidyvision starts
#' Python, e.g. in `.Renviron`), a missing file is an error of class
#' `tidyvision_error_weights_missing` that says where to put it. Apart from
#' such a download, nothing here uses the network: ultralytics runs with
#' `YOLO_OFFLINE=1`, its settings in tidyvision's cache folder
#' (`~/.cache/tidyvision` on Linux; `TIDYVISION_CACHE_DIR` moves it), and no
#' analytics, update checks, package installs or font downloads.
#'
#' **No file runs code.** A `.pt` file is a Python pickle, which ultralytics
#' itself would load in full, running any code it names. tidyvision reads
#' every `.pt` weights-only, allowing only the classes a YOLO model is made
#' of: a file that names anything else (such as `os.system`) is an error of
#' class `tidyvision_error_weights_unsafe`, raised before any of it runs.
#'
#' @param paths Image paths, or a tibble with a `path` column (e.g. from
#'   [image_files()]).
#' @param model A `.pt` file, a model name such as `"yolov8n.pt"`, or a
#'   `tv_detector` from [train_detector()].
#' @param confidence Keep objects with at least this confidence (0 to 1).
#' @param iou Overlap (intersection over union, 0 to 1) above which
#'   non-maximum suppression keeps only the more confident of two boxes of a
#'   class.
#' @param classes `NULL` for every class, or the names of the classes to
#'   keep, e.g. `c("person", "car")`.
#' @param image_size Side in pixels the images are resized to for the
#'   network; by default the size the model was trained at.
#' @param batch_size Images per forward pass.
#' @param device `"auto"`, `"cpu"`, `"cuda"` or `"mps"`.
#' @param verbose Show a progress bar.
#' @return A tibble with `path`, `object` (1, 2, ... within an image, most
#'   confident first), `class`, `confidence` (0 to 1), `xmin`, `ymin`,
#'   `xmax`, `ymax` (pixels) and `image_width`, `image_height` (pixels as
#'   displayed).
#' @seealso [count_objects()], [plot_detections()], [train_detector()].
#' @export
#' @examplesIf tv_available()
#' imgs <- image_files(system.file("extdata", "images", "animals", package = "tidyvision"))
#' # YOLOv8n trained on COCO: downloaded once when online; offline and not
#' # on disk, a classed error that says how to get it.
#' found <- tryCatch(
#'   detect_objects(imgs[1:6, ], model = "yolov8n.pt"),
#'   tidyvision_error_weights_missing = function(e) {
#'     message(conditionMessage(e))
#'     NULL
#'   }
#' )
#' if (!is.null(found)) {
#'   print(count_objects(found, class = c("dog", "cat", "bird")))
#'   plot_detections(found)
#' }
detect_objects <- function(paths, model = "yolov8n.pt", confidence = 0.25, iou = 0.7,
                           classes = NULL, image_size = NULL, batch_size = 16,
                           device = "auto", verbose = tv_verbose()) {
  paths <- image_paths(paths)
  check_probability(confidence)
  check_probability(iou)
  check_count(batch_size)
  if (!is.null(image_size)) check_count(image_size)
  if (!is.null(classes) && (!is.character(classes) || anyNA(classes))) {
    tv_abort("{.arg classes} must be class names such as {.code c(\"person\", \"car\")}, or NULL.",
             class = "bad_argument")
  }
  cols <- engine_call("detect.detect", as.list(paths), detector_weights(model),
                      confidence = confidence, iou = iou,
                      classes = if (!is.null(classes)) as.list(classes),
                      image_size = if (!is.null(image_size)) as.integer(image_size),
                      batch_size = as.integer(batch_size), device = device,
                      progress = progress_callback(verbose, "Detecting objects"))
  out <- as_schema(cols, "detections")
  warn_unreadable(out$path, col_of(cols$problem), "kept with {.code NA} boxes and sizes")
  out
}


# The weights file (or model name) behind `model`, for the engine. A bare
# name is a published model (the engine finds it in its cache), never a file
# in the working directory: see detect.resolve_weights().
detector_weights <- function(model, arg = rlang::caller_arg(model), call = caller_env()) {
  if (inherits(model, "tv_detector")) return(check_detector(model, arg, call))
  if (!rlang::is_string(model) || !nzchar(model)) {
    tv_abort("{.arg {arg}} must be a .pt file, a model name such as {.val yolov8n.pt}, or a detector from {.fn train_detector}.",
             class = "bad_argument", call = call)
  }
  if (is_bare_name(model)) {
    if (grepl("\\.pt$", model)) announce_weights(model, call)
    return(model)
  }
  if (file.exists(model)) normalizePath(model) else model
}

is_bare_name <- function(path) basename(path) == path && !startsWith(path, "~")

# Where the published weights behind a bare name were found, once a session.
announce_weights <- function(name, call) {
  path <- engine_call("detect.resolve_weights", name, call = call)
  cli::cli_inform(c(i = "Using {.val {name}} from {.path {path}}."),
                  class = "tidyvision_message_weights", .frequency = "once",
                  .frequency_id = paste0("tidyvision-weights-", path))
}

# A weights file of the detector `x` that the engine can read (weights.R).
check_detector <- function(x, arg = rlang::caller_arg(x), call = caller_env()) {
  live <- live_weights(x)
  if (is.null(live)) {
    tv_abort(c("The weights of this detector are gone: {.path {x$weights}}.",
               i = "Train it again, or give {.fn train_detector} a {.arg dir} to keep one on disk."),
             class = "weights_missing", call = call)
  }
  live
}

#' Count the objects found in each image
#'
#' Turns the boxes of [detect_objects()] into counts per image and class:
#' the number of people at a protest, of police cars in a street, of flags
#' on a stage. Images where nothing was found count as zero, and images that
#' could not be read as `NA`.
#'
#' @param detections A tibble from [detect_objects()] (columns `path` and
#'   `class`; rows with `class` `NA` are images without objects).
#' @param class `NULL` to count every class found, one row per image and
#'   class (an image without objects is one row with `class` `NA` and
#'   `n = 0`); or class names, to get one row per image and named class,
#'   zeros included.
#' @return A tibble with `path`, `class` and `n` (integer), images in the
#'   order of `detections`.
#' @export
#' @examples
#' found <- tibble::tibble(
#'   path = c("a.jpg", "a.jpg", "a.jpg", "b.jpg"),
#'   object = c(1L, 2L, 3L, NA), class = c("person", "person", "car", NA),
#'   confidence = c(0.9, 0.8, 0.6, NA)
#' )
#' count_objects(found)
#' count_objects(found, class = c("person", "dog"))
count_objects <- function(detections, class = NULL) {
  check_detections(detections)
  if (!is.null(class) && (!is.character(class) || anyNA(class) || length(class) == 0)) {
    tv_abort("{.arg class} must be class names, or NULL for every class found.", class = "bad_argument")
  }
  paths <- unique(detections$path)
  unreadable <- if ("image_width" %in% names(detections)) {
    unique(detections$path[is.na(detections$image_width)])
  } else character()
  found <- detections[!is.na(detections$class), c("path", "class")]
  if (is.null(class)) {
    counts <- dplyr::count(found, .data$path, .data$class, name = "n")
    empty <- tibble::tibble(path = setdiff(paths, found$path), class = NA_character_, n = 0L)
    out <- dplyr::bind_rows(counts, empty)
    out <- out[order(match(out$path, paths), out$class), ]
  } else {
    out <- tibble::tibble(path = rep(paths, each = length(class)), class = rep(class, length(paths)))
    key <- paste(found$path, found$class, sep = "\r")
    out$n <- as.integer(tabulate(match(key, paste(out$path, out$class, sep = "\r")), nrow(out)))
  }
  out$n[out$path %in% unreadable] <- NA_integer_
  out$n <- as.integer(out$n)
  out
}

check_detections <- function(x, arg = rlang::caller_arg(x), call = caller_env()) {
  if (!is.data.frame(x) || !all(c("path", "class") %in% names(x))) {
    tv_abort(c("{.arg {arg}} must be a data frame with {.field path} and {.field class} columns.",
               i = "Make one with {.fn detect_objects}."), class = "bad_argument", call = call)
  }
}

#' Draw the detected boxes on the images
#'
#' Each image with its boxes, coloured by class and labelled with the class
#' and confidence: the quickest check that a detector finds what you think
#' it finds. A class has the same colour in every figure; labels of crowded
#' boxes are pushed apart (with a line to their box); the legend only
#' appears when there are several classes. Panels take the images' common
#' shape, so `ggsave(width = 7, height = 5)` of 6 photos leaves little blank
#' space.
#'
#' @param detections A tibble from [detect_objects()].
#' @param path Paths of the images to draw (they must be in `detections`);
#'   by default the first `n` images of `detections`.
#' @param n How many images to draw when `path` is `NULL`.
#' @param size Size in pixels (longer side) the images are read at: 768 is
#'   sharp for 3 panels across a 7-inch figure at 300 dpi.
#' @param ncol Images per row; by default up to 3.
#' @param caption A caption under the figure (wrapped to fit), e.g. the
#'   model and confidence threshold.
#' @return A ggplot, one panel per image.
#' @export
#' @examplesIf tv_available()
#' imgs <- image_files(system.file("extdata", "images", "animals", package = "tidyvision"))
#' dog <- imgs[basename(imgs$path) == "dog.jpg", ]
#' # A box as detect_objects() returns it, here drawn by hand:
#' found <- tibble::tibble(
#'   path = dog$path, object = 1L, class = "dog", confidence = 0.91,
#'   xmin = 0.25 * dog$width, ymin = 0.1 * dog$height,
#'   xmax = 0.75 * dog$width, ymax = 0.95 * dog$height,
#'   image_width = dog$width, image_height = dog$height
#' )
#' plot_detections(found, caption = "A box drawn by hand.")
plot_detections <- function(detections, path = NULL, n = 6, size = 768, ncol = NULL, caption = NULL) {
  check_detections(detections)
  check_count(n)
  check_count(size)
  paths <- unique(detections$path)
  if (!is.null(path)) {
    missing <- setdiff(path, paths)
    if (length(missing)) {
      tv_abort(c("{length(missing)} image{?s} in {.arg path} {?is/are} not in {.arg detections}:",
                 bullets_of(missing)),
               class = "bad_argument")
    }
    paths <- unique(path)
  } else {
    paths <- utils::head(paths, n)
  }
  if (length(paths) == 0) {
    tv_abort("{.arg detections} has no images to draw.", class = "no_images")
  }
  boxes <- detections[detections$path %in% paths & !is.na(detections$class), , drop = FALSE]
  boxes$label <- sprintf("%s %.2f", boxes$class, boxes$confidence)
  draw_boxes(paths, boxes, image_sizes(detections, paths), panel_titles(paths), size, ncol, caption,
             classes = detections$class)
}

# Displayed size of each image from its first row (NA when not recorded).
image_sizes <- function(rows, paths) {
  first <- match(paths, rows$path)
  pick <- function(col) if (col %in% names(rows)) as.numeric(rows[[col]][first]) else rep(NA_real_, length(paths))
  list(width = pick("image_width"), height = pick("image_height"))
}
