#' Label images by keyboard in a local app
#'
#' Opens a small local Shiny app (a gadget in RStudio, a browser tab
#' elsewhere) that shows one image at a time, large, with its file name and
#' how far this coder has got, and takes a label per key. Several coders can
#' label the same images into one file; [label_agreement()] compares them.
#'
#' **Keys** (`?` in the app shows them):
#' * `mode = "classes"`: `1`-`9` pick a class and go to the next image.
#' * `mode = "multi"`: `1`-`9` toggle classes, `Enter` saves them and goes
#'   on.
#' * `mode = "scores"`, the book's 0-10 rating of each class: the selected
#'   class is highlighted; `0`-`9` give it that score and `t` gives it 10,
#'   then the selection moves to the next class; once every class has a
#'   score, the app goes to the next image. `Tab`/`Down` and `Shift+Tab`/`Up` move the selection;
#'   `Enter` scores the classes not yet scored 0 and goes on.
#' * In every mode: `Left`/`Right` go back and forward, `s` skips the image
#'   (recorded as skipped), `u` undoes this coder's last label or skip (and
#'   shows that image again), `?` shows the keys.
#'
#' **Nothing is lost that the page shows as saved.** Every key that changes
#' a label appends one line to `output` (see [read_labels()] for the format)
#' before the page is told it is saved; the page sends the next key only then
#' and shows "N keys pending" meanwhile. So when R dies (or is killed), every
#' key the page no longer counts as pending is in the file; keys still
#' pending are lost, and the page keeps showing how many. Run the same call
#' again to continue: the app opens at the first image this coder has
#' neither labelled nor skipped. An existing `output` is only appended to,
#' and only when it is a label file with the same `mode` and `classes`. If
#' the label file is deleted or replaced while the app runs, the app stops
#' with an error of class `tidyvision_error_labels_file` rather than write a
#' file without its header.
#'
#' **A key labels the image it was pressed on.** Each key carries the image
#' its tab shows, and each tab keeps its own place, so two tabs never label
#' each other's images; a key pressed before the next image appeared (typed
#' ahead) is refused, and the page says so.
#'
#' **Review queues.** `order` sets which images are shown and in what order:
#' give the output of [find_label_issues()] or [suggest_labels()] (ranked
#' tibbles with a `path` column) to review the labels the model disputes or
#' label the images it would learn most from. When this coder has labelled
#' every image in the queue, the app opens at its first image.
#'
#' **Privacy.** The app listens on 127.0.0.1 only, so only this machine can
#' reach it, and answers only its own page: the page and the images are
#' refused to a request whose `Host` is not `127.0.0.1:port` or
#' `localhost:port` (a DNS-rebinding page gets nothing), a websocket whose
#' `Host` or `Origin` is not the app's own is closed before it gets any output
#' or can send a key, and image URLs and key messages must carry a random
#' token made for this run, which only the app's page holds. Images are
#' served by their number in the queue: no file path from a URL ever reaches
#' the file system.
#'
#' @param images Image paths, a tibble with a `path` column (from
#'   [image_files()]), or a folder. A missing file is an error; files that are
#'   empty or not images (by their first bytes, or `readable = FALSE` in a
#'   tibble from [image_files()]) are left out with a warning of class
#'   `tidyvision_warning_unreadable` naming them.
#' @param classes The class names, in key order (at most 9 for `"classes"`
#'   and `"multi"`). Names may not contain `|`, `;` or `=`.
#' @param output The label file (one path, not a folder): created if
#'   missing, appended to otherwise.
#' @param coder The coder's name, stored with each label; by default the
#'   user name of this session.
#' @param mode `"classes"` (one class per image), `"multi"` (any number of
#'   classes per image) or `"scores"` (a 0-10 score per class).
#' @param order Optional: the images to show, in order, as paths or a tibble
#'   with a `path` column; each must be among `images`.
#' @param port The port to listen on (on 127.0.0.1), a whole number from 1
#'   to 65535; a free one by default.
#' @param launch.browser Open the app: a gadget in RStudio, the default web
#'   browser elsewhere. `FALSE` only prints its address.
#' @param ... Not used; a misspelt argument is an error.
#' @return The labels of this coder, as [read_labels()] returns them,
#'   invisibly, when you press Done (or stop the app).
#' @seealso [read_labels()], [label_agreement()], [find_label_issues()],
#'   [suggest_labels()].
#' @export
#' @examples
#' images <- image_files(system.file("extdata", "images", package = "tidyvision"))
#' if (interactive()) {
#'   label_images(images, classes = c("animals", "buildings", "tools"),
#'                output = "labels.csv", coder = "ana")
#'   read_labels("labels.csv")
#' }
label_images <- function(images, classes, output = "labels.csv", coder = NULL,
                         mode = c("classes", "multi", "scores"), order = NULL,
                         port = NULL, launch.browser = interactive(), ...) {
  call <- rlang::current_env()
  check_dots_known(list(...), names(formals())[names(formals()) != "..."], "label_images", call)
  check_flag(launch.browser, call = call)
  port <- check_port(port %||% getOption("shiny.port"), call)
  app <- label_app(images, classes, output, coder, mode, order, port = port, call = call)
  result <- if (launch.browser && identical(Sys.getenv("RSTUDIO"), "1")) {
    withr::local_options(shiny.host = "127.0.0.1")
    shiny::runGadget(app, port = port, viewer = shiny::paneViewer(minHeight = "maximize"))
  } else {
    shiny::runApp(app, host = "127.0.0.1", port = port, launch.browser = launch.browser)
  }
  # The app stops with the error that ended it (a label file deleted under it).
  if (inherits(result, "error")) rlang::cnd_signal(result)
  invisible(read_labels(app$tv_state$output, coder = app$tv_state$coder))
}

# A whole number from 1 to 65535; by default a free port (known before the
# app starts, as the Host and Origin checks need it).
check_port <- function(port, call) {
  if (is.null(port)) return(httpuv::randomPort(host = "127.0.0.1"))
  check_scalar(port, function(v) v == round(v) && v >= 1 && v <= 65535,
               "a port number from 1 to 65535 (or NULL for a free one)", "port", call)
  as.integer(port)
}

# The app object, its arguments checked; `tv_state` holds the labelling state.
label_app <- function(images, classes, output = "labels.csv", coder = NULL,
                      mode = c("classes", "multi", "scores"), order = NULL, port = NULL, call = caller_env()) {
  mode <- check_choice(mode, LABEL_MODES, arg = "mode", call = call)
  check_label_classes(classes, mode, call)
  coder <- coder %||% Sys.info()[["user"]]
  if (!rlang::is_string(coder) || !nzchar(coder)) {
    tv_abort("{.arg coder} must be a name, not {shown_value(coder)}.", class = "bad_argument", call = call)
  }
  check_label_file_arg(output, call)
  paths <- label_queue(images, order, call)
  output <- open_label_file(output, mode, classes, call)
  state <- label_state(paths, classes, mode, output, coder, port, call)
  app <- shiny::shinyApp(label_page(state), function(input, output, session) label_server(state, input, output, session))
  app$tv_state <- state
  app
}

check_label_classes <- function(classes, mode, call) {
  ok <- is.character(classes) && length(classes) >= 1 && !anyNA(classes) && all(nzchar(classes)) &&
    !anyDuplicated(classes) && !any(grepl("[|;=]", classes))
  if (!ok) {
    tv_abort(c("{.arg classes} must be distinct, non-empty class names without {.code |}, {.code ;} or {.code =}.",
               x = "You gave {.obj_type_friendly {classes}}."), class = "bad_argument", call = call)
  }
  if (mode != "scores" && length(classes) > 9) {
    tv_abort(c("{.arg classes} has {length(classes)} classes, but keys 1-9 pick at most 9.",
               i = "Label in rounds of at most 9 classes, or use {.code mode = \"scores\"}."),
             class = "bad_argument", call = call)
  }
  reserved <- intersect(classes, c("path", "coder", "label", "skipped", "time"))
  if (mode == "scores" && length(reserved)) {
    tv_abort("{.arg classes} can't be named {.val {reserved}} in scores mode (they name other columns).",
             class = "bad_argument", call = call)
  }
}

# The images to show, in order: `order` (checked against `images`) or
# `images`, less the files that are not images (reported, never served).
label_queue <- function(images, order, call) {
  paths <- unique(image_paths(images, arg = "images", call = call))
  if (length(paths) == 0) {
    tv_abort("{.arg images} has no images to label.", class = "bad_argument", call = call)
  }
  queue <- paths
  if (!is.null(order)) {
    queue <- unique(image_paths(order, arg = "order", call = call))
    unknown <- setdiff(queue, paths)
    if (length(unknown)) {
      tv_abort(c("{.arg order} has {length(unknown)} image{?s} that {?is/are} not in {.arg images}:", bullets_of(unknown),
                 i = "The app only serves the images it was given; add them to {.arg images}."),
               class = "bad_argument", call = call)
    }
  }
  label_readable(queue, arg = if (is.null(order)) "images" else "order", known_unreadable(images), call)
}

# Rows of an image_files() tibble already found unreadable (it decoded them),
# as problems named by path.
known_unreadable <- function(images) {
  if (!is.data.frame(images) || !is.logical(images$readable)) return(character())
  bad <- !images$readable %in% TRUE
  problem <- if (is.character(images$problem)) images$problem[bad] else "unreadable"
  stats::setNames(ifelse(is.na(problem), "unreadable", problem), expand_paths(images$path[bad]))
}

# Missing files are an error; files that are empty or not images (by their
# first bytes, or as image_files() found) are left out with one warning naming
# them, and an error when none is left.
label_readable <- function(paths, arg, known, call) {
  gone <- !file.exists(paths) | dir.exists(paths)
  if (any(gone)) {
    tv_abort(c("{.arg {arg}} has {sum(gone)} file{?s} that {?does/do} not exist:", bullets_of(paths[gone]),
               i = "Check the paths, or list the images again with {.fn image_files}."),
             class = "path_not_found", call = call)
  }
  problem <- vapply(paths, image_problem, "", USE.NAMES = FALSE)
  problem[paths %in% names(known)] <- known[paths[paths %in% names(known)]]
  bad <- !is.na(problem)
  if (all(bad)) {
    tv_abort(c("{.arg {arg}} has no readable images:", bullets_of(paste0(paths, ": ", problem)),
               i = "Give image files (jpg, png, gif, bmp, tiff or webp)."), class = "unreadable", call = call)
  }
  if (any(bad)) {
    tv_warn(c("Left out {sum(bad)} file{?s} that {?is/are} not {?an image/images}:",
              bullets_of(paste0(paths[bad], ": ", problem[bad]))), class = "unreadable")
  }
  paths[!bad]
}

# Why a file can't be shown (NA when it can): empty, or its first bytes are
# not those of an image format browsers show.
image_problem <- function(path) {
  if (isTRUE(file.size(path) == 0)) return("empty file")
  head <- readBin(path, "raw", 12L)
  if (image_signature(head)) return(NA_character_)
  sprintf("not an image (first bytes: %s)", paste(format(utils::head(head, 4)), collapse = " "))
}

image_signature <- function(head) {
  starts <- function(hex) {
    sig <- as.raw(strtoi(strsplit(hex, " ")[[1]], 16L))
    length(head) >= length(sig) && identical(head[seq_along(sig)], sig)
  }
  starts("ff d8 ff") || starts("89 50 4e 47") || starts("47 49 46 38") || starts("42 4d") ||
    starts("49 49 2a 00") || starts("4d 4d 00 2a") ||
    (starts("52 49 46 46") && length(head) >= 12 && identical(head[9:12], charToRaw("WEBP")))
}
