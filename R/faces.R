# Faces with dlib's models (engine: faces.py): detection, counts, crops,
# embeddings, and anonymised copies. Identities are in identities.R.

box_columns <- c("xmin", "ymin", "xmax", "ymax")

#' Find faces in images
#'
#' Runs one of dlib's face detectors on each image, upright as displayed
#' (the EXIF orientation is applied), in threads over all cores. `"hog"`
#' (the default) is dlib's HOG + linear SVM detector: fast, best on frontal
#' faces. `"cnn"` is dlib's MMOD CNN: finds more turned and partly hidden
#' faces but is about 20 to 50 times slower on a CPU.
#'
#' **Small faces.** Both detectors look for faces of at least about 80
#' pixels; each `upsample` doubles the image first, so the default `1` finds
#' faces down to about 40 pixels, `2` to about 20 (4 times slower again).
#' With `upsample = 1` HOG takes about 0.07 s for a 500-pixel photo and 10 s
#' (and 1.3 GB of memory) for a 24-megapixel one on one CPU core; images are
#' processed in parallel on all cores.
#'
#' **Confidence.** dlib gives each detection a score (an SVM margin; dlib's
#' own cut-off is 0), kept in `score`. `confidence` is its logistic,
#' `1 / (1 + exp(-score))`: a score of 0 is 0.5, 1 is 0.73, 2 is 0.88. It
#' ranks detections but is not a calibrated probability. The default
#' `confidence = 0.6` (score 0.4) drops dlib's weakest hits, which are
#' mostly false: on the shipped photos every face scores above 1 (0.73) and
#' the one false detection (a patch of the astronaut's suit) 0.13 (0.53).
#' Faces of 36 to 60 pixels pasted into a test image scored 1 to 2.4.
#'
#' @param paths Image paths, or a tibble with a `path` column such as
#'   [image_files()].
#' @param model `"hog"` or `"cnn"`.
#' @param upsample How many times to double the image before looking
#'   (0 to 3).
#' @param confidence Keep faces with at least this confidence (0 to 1).
#' @param verbose Show a progress bar.
#' @return A tibble with one row per face: `path`, `face` (1, 2, ... per
#'   image, by decreasing confidence), `confidence`, `xmin`, `ymin`,
#'   `xmax`, `ymax` (pixel edges of the image as displayed, clipped to it:
#'   a face covering columns 10 to 19 has `xmin = 10` and `xmax = 20`),
#'   `image_width`, `image_height`, `score` (dlib's raw score) and
#'   `problem`. An image without a face keeps one row with `face` and the
#'   box `NA`, so [count_faces()] reports it with `n = 0`; an image that
#'   can't be read keeps one such row with `problem` saying why, and one
#'   warning names them.
#' @seealso [count_faces()], [crop_faces()], [face_embeddings()],
#'   [anonymize_faces()].
#' @export
#' @examplesIf tv_available()
#' photos <- list.files(system.file("extdata", "faces", package = "tidyvision"),
#'                      full.names = TRUE)
#' faces <- detect_faces(photos)
#' faces
#' count_faces(faces)
detect_faces <- function(paths, model = c("hog", "cnn"), upsample = 1, confidence = 0.6,
                         verbose = tv_verbose()) {
  paths <- image_paths(paths)
  model <- check_choice(model)
  check_upsample(upsample)
  check_confidence(confidence)
  check_flag(verbose)
  cols <- engine_call("faces.detect", as.list(paths), model = model,
                      upsample = as.integer(upsample), confidence = confidence,
                      progress = progress_callback(verbose, "Finding faces"))
  faces <- as_schema(cols, "faces")
  bad <- !is.na(faces$problem)
  warn_unreadable(faces$path[bad], faces$problem[bad], "kept as rows without a face")
  faces
}

#' Count faces per image
#'
#' @param faces A tibble from [detect_faces()].
#' @param confidence Count only faces with at least this confidence; `NULL`
#'   counts every row with a face.
#' @return A tibble with one row per image, in order of first appearance:
#'   `path` and `n`, the number of faces (0 for images without one, `NA`
#'   for images that couldn't be read).
#' @export
#' @examplesIf tv_available()
#' photos <- list.files(system.file("extdata", "faces", package = "tidyvision"),
#'                      full.names = TRUE)
#' count_faces(detect_faces(photos), confidence = 0.8)
count_faces <- function(faces, confidence = NULL) {
  check_faces(faces, c("path", "face"))
  if (!is.null(confidence)) check_confidence(confidence)
  counted <- !is.na(faces$face)
  if (!is.null(confidence)) counted <- counted & (faces$confidence >= confidence) %in% TRUE
  paths <- unique(faces$path)
  n <- tabulate(match(faces$path[counted], paths), nbins = length(paths))
  if ("problem" %in% names(faces)) n[paths %in% faces$path[!is.na(faces$problem)]] <- NA
  tibble::tibble(path = paths, n = n)
}

#' Save each face as its own image
#'
#' Cuts a square around each face, grown by `margin` on every side (moved
#' rather than cut where the face is near the border), and writes it to
#' `dir`, keeping the images' sub-folders below their common parent folder.
#' Files are named after the image and the face number
#' (`speech_face2.jpg`); JPEG images give JPEG crops (quality 95), all
#' others PNG. Each crop is written to a temporary file and renamed, so an
#' interruption leaves no half-written file. No metadata is copied.
#'
#' @param faces A tibble from [detect_faces()] (or any with `path`, `xmin`,
#'   `ymin`, `xmax` and `ymax`).
#' @param dir The folder to write to; created if needed.
#' @param margin Added on each side, as a share of the face's size.
#' @param size `NULL` to keep the crops' own size, or a number of pixels to
#'   resize them to (`size` x `size`), e.g. to train a classifier on faces.
#' @param overwrite Replace existing files. Without it, nothing is written
#'   when any crop already exists (a `tidyvision_error_exists` error).
#' @param verbose Show a progress bar.
#' @return `faces` with a `crop` column: the file written, `NA` for rows
#'   without a face.
#' @export
#' @examplesIf tv_available()
#' photos <- list.files(system.file("extdata", "faces", package = "tidyvision"),
#'                      full.names = TRUE)
#' crops <- crop_faces(detect_faces(photos), file.path(tempdir(), "crops"),
#'                     size = 150, overwrite = TRUE)
#' crops$crop
crop_faces <- function(faces, dir, margin = 0.2, size = NULL, overwrite = FALSE,
                       verbose = tv_verbose()) {
  check_faces(faces, c("path", box_columns))
  check_output_dir(dir)
  check_number(margin)
  if (!is.null(size)) check_count(size)
  check_flag(overwrite)
  check_flag(verbose)
  has_box <- stats::complete.cases(faces[box_columns])
  out <- rep(NA_character_, nrow(faces))
  out[has_box] <- crop_names(faces[has_box, ], dir)
  check_outputs(faces$path[has_box], out[has_box], overwrite)
  res <- engine_call("faces.crop", as.list(faces$path), box_lists(faces),
                     as.list(ifelse(has_box, out, "")), margin = margin,
                     size = if (!is.null(size)) as.integer(size), overwrite = overwrite,
                     progress = progress_callback(verbose, "Cropping faces"))
  problems <- col_of(res$problem)
  bad <- !is.na(problems)
  warn_unreadable(out[bad], problems[bad], "not written", what = "can't be read or written")
  out[bad] <- NA
  faces$crop <- out
  faces
}

crop_names <- function(faces, dir) {
  number <- faces$face
  within <- stats::ave(seq_along(faces$path), faces$path, FUN = seq_along)
  number <- if (is.null(number)) within else ifelse(is.na(number), within, number)
  copies <- mirror_paths(faces$path, dir)
  ext <- ifelse(grepl("[.]jpe?g$", faces$path, ignore.case = TRUE), ".jpg", ".png")
  paste0(sub("[.][^./]*$", "", copies), "_face", number, ext)
}

#' Face embeddings: 128 numbers per face
#'
#' dlib's face recognition network (a ResNet trained on about 3 million
#' faces; 99.38% on the LFW benchmark) turns each face into a point in 128
#' dimensions, after aligning it on five landmarks (eye corners and nose)
#' as dlib intends. Photos of one person land close together: dlib
#' documents that a Euclidean distance below 0.6 usually means the same
#' person. [fit_identities()] builds on this.
#'
#' Embeddings are biometric data under the GDPR (art. 4(14) and 9): see
#' `vignette("faces", package = "tidyvision")` before you compute them on
#' people who did not agree to it.
#'
#' @param faces A tibble from [detect_faces()], or image paths (faces are
#'   then detected first, with `...` passed to [detect_faces()]).
#' @param num_jitters Also embed this many randomly jittered copies of each
#'   face and average them: slightly more robust, `num_jitters + 1` times
#'   slower.
#' @param ... Passed to [detect_faces()] when `faces` are paths.
#' @param verbose Show a progress bar.
#' @return `faces` with an `embedding` column: a numeric matrix with one
#'   row per face and 128 columns (`faces$embedding[i, ]` is face `i`);
#'   rows without a face are `NA`. `dist(faces$embedding)` gives all the
#'   pairwise distances.
#' @export
#' @examplesIf tv_available()
#' photos <- list.files(system.file("extdata", "faces", package = "tidyvision"),
#'                      full.names = TRUE)
#' faces <- face_embeddings(photos)
#' dim(faces$embedding)
#' round(as.matrix(dist(faces$embedding)), 2)
face_embeddings <- function(faces, num_jitters = 0, ..., verbose = tv_verbose()) {
  check_flag(verbose)
  if (is.data.frame(faces) && all(box_columns %in% names(faces))) {
    rlang::check_dots_empty()
  } else {
    faces <- detect_faces(faces, ..., verbose = verbose)
  }
  check_faces(faces, c("path", box_columns))
  check_whole(num_jitters)
  res <- engine_call("faces.embed", as.list(faces$path), box_lists(faces),
                     num_jitters = as.integer(num_jitters),
                     progress = progress_callback(verbose, "Embedding faces"))
  embedding <- matrix(res$embedding, nrow = nrow(faces))
  embedding[is.nan(embedding)] <- NA_real_
  problems <- col_of(res$problem)
  known <- if ("problem" %in% names(faces)) !is.na(faces$problem) else FALSE
  bad <- !is.na(problems) & !known
  warn_unreadable(faces$path[bad], problems[bad], "{?its embedding is/their embeddings are} NA")
  faces$embedding <- embedding
  faces
}

#' Copies of images with every face found obscured
#'
#' For sharing images under data protection rules: writes a copy of each
#' image to `dir` (keeping sub-folders below the images' common parent)
#' with every detected face, grown by `margin`, blurred, pixelated or
#' filled black. The originals are never touched. Copies are written to a
#' temporary file and renamed, and keep no metadata (EXIF, including GPS
#' position and camera serial numbers, is dropped); images without a face
#' are copied too, so `dir` holds the whole set.
#'
#' **Detection can miss faces.** A copy is only as anonymous as the
#' detector was thorough, so the defaults are the most sensitive detector
#' tidyvision has: dlib's CNN (`model = "cnn"`) on the image doubled twice
#' (`upsample = 2`, faces down to about 20 pixels), keeping every face dlib
#' reports (`confidence = 0.5`, dlib's own cut-off). On a press photo of
#' 13 people, HOG at `upsample = 1` found 5 faces, the CNN at
#' `upsample = 2` 11. The price is time: on one CPU core the CNN at
#' `upsample = 2` took 80 s for the five shipped photos (250 to 512 pixels
#' wide), 20 s at `upsample = 1`, where HOG at `upsample = 1` took 0.7 s.
#' Time grows with the pixels, so a 12-megapixel photo takes many minutes
#' at `upsample = 2`: shrink large photos first, or pass
#' `model = "hog", upsample = 1` for a fast first pass. Even so, small,
#' turned, covered or blurred faces get missed: look at every copy with
#' [plot_faces()] before you share them, and give the boxes of faces you
#' found by hand: `paths` may be a tibble from [detect_faces()] to which you
#' added rows. `status` says what was done, never that an image is
#' anonymous. Blurring and pixelation hide a face from people and from face
#' recognition at the strength used here, but neither is proven
#' irreversible; `"fill"` is.
#'
#' @param paths Image paths or a tibble with a `path` column, such as
#'   [image_files()]: faces are detected. Or a tibble from [detect_faces()]
#'   (columns `path`, `xmin`, `ymin`, `xmax`, `ymax`): exactly those boxes
#'   are obscured (rows with `NA` boxes: none).
#' @param dir The folder for the copies. It must not be the images' own
#'   folder.
#' @param method `"blur"` (a Gaussian blur with a radius of a sixth of the
#'   box), `"pixelate"` (about 7 blocks across the box) or `"fill"`
#'   (black).
#' @param margin Grow each face box by this share of its size on each side,
#'   to cover hair, ears and chin.
#' @param overwrite Replace existing files in `dir`. Without it, nothing is
#'   written when any copy already exists (a `tidyvision_error_exists`
#'   error).
#' @param model,upsample,confidence How faces are detected; see
#'   [detect_faces()]. The defaults differ from [detect_faces()]'s: here a
#'   missed face costs more than a blurred patch of background.
#' @param verbose Show a progress bar.
#' @return A tibble with one row per image: `path`, `output` (the copy;
#'   `NA` when nothing was written), `n_faces` (how many faces were
#'   obscured in it), `status` (`"faces_obscured"`, `"no_face_found"`,
#'   `"unreadable"`, or `"failed"` when the copy couldn't be written) and
#'   `problem`. Unreadable images never stop the others; one warning names
#'   them. [plot_faces()] shows the copies with their counts.
#' @seealso [plot_faces()] to check the copies by eye.
#' @export
#' @examplesIf tv_available()
#' faces_dir <- system.file("extdata", "faces", package = "tidyvision")
#' # HOG for a quick example; the default CNN is slower and finds more faces.
#' done <- anonymize_faces(list.files(faces_dir, full.names = TRUE),
#'                         file.path(tempdir(), "anonymized"), model = "hog",
#'                         upsample = 1, overwrite = TRUE)
#' done
#' plot_faces(done)
anonymize_faces <- function(paths, dir, method = c("blur", "pixelate", "fill"), margin = 0.3,
                            overwrite = FALSE, model = c("cnn", "hog"), upsample = 2,
                            confidence = 0.5, verbose = tv_verbose()) {
  method <- check_choice(method)
  model <- check_choice(model)
  check_output_dir(dir)
  check_number(margin)
  check_flag(overwrite)
  check_upsample(upsample)
  check_confidence(confidence)
  check_flag(verbose)
  given <- is.data.frame(paths) && all(box_columns %in% names(paths))
  images <- unique(image_paths(paths))
  outputs <- mirror_paths(images, dir)
  check_outputs(images, outputs, overwrite)
  res <- engine_call("faces.anonymize", as.list(images), as.list(outputs),
                     boxes = if (given) boxes_by_image(paths, images),
                     model = model, upsample = as.integer(upsample), confidence = confidence,
                     method = method, margin = margin, overwrite = overwrite,
                     progress = progress_callback(verbose, "Anonymizing"))
  out <- tibble::tibble(path = images, output = outputs, n_faces = col_of(res$n_faces, "int"),
                        status = col_of(res$status), problem = col_of(res$problem))
  out$output[out$status %in% c("unreadable", "failed")] <- NA
  bad <- !is.na(out$problem)
  warn_unreadable(out$path[bad], out$problem[bad], "no copy was written", what = "can't be read or written")
  if (verbose && any(out$status == "no_face_found")) {
    cli::cli_inform(c(i = "{sum(out$status == 'no_face_found')} image{?s} had no face detected and {?was/were} copied unchanged; check {?it/them} by eye with {.fn plot_faces}."))
  }
  out
}

#' A contact sheet of faces to check by eye
#'
#' Detectors miss faces, so a person should look before anonymised images
#' are shared or face counts are trusted. Given the result of
#' [anonymize_faces()], draws the copies as they were written, each titled
#' with how many faces were obscured (or that none was found, or that the
#' image couldn't be read): look for faces that are still recognisable.
#' Given the result of [detect_faces()], draws the images with each found
#' face boxed and numbered: look for faces without a box.
#'
#' @param faces A tibble from [anonymize_faces()] or [detect_faces()].
#' @param n How many images to draw (the first `n`); filter `faces` to
#'   choose others, e.g. `subset(done, status == "no_face_found")`.
#' @param size Size in pixels (longer side) the images are read at: 768 is
#'   sharp for 3 panels across a 7-inch figure at 300 dpi.
#' @param ncol Images per row; by default up to 3.
#' @param caption A caption under the figure (wrapped to fit).
#' @return A ggplot, one panel per image.
#' @seealso [anonymize_faces()], [detect_faces()], [plot_detections()].
#' @export
#' @examplesIf tv_available()
#' photos <- list.files(system.file("extdata", "faces", package = "tidyvision"),
#'                      full.names = TRUE)
#' plot_faces(detect_faces(photos), caption = "dlib HOG, upsample 1, confidence 0.6")
#' done <- anonymize_faces(photos, file.path(tempdir(), "shared"), model = "hog",
#'                         upsample = 1, overwrite = TRUE)
#' plot_faces(done)
plot_faces <- function(faces, n = 12, size = 768, ncol = NULL, caption = NULL) {
  check_faces(faces, "path")
  check_count(n)
  check_count(size)
  check_optional_count(ncol)
  check_caption(caption)
  copies <- all(c("output", "n_faces", "status") %in% names(faces))
  if (!copies) check_faces(faces, c("path", box_columns))
  rows <- faces[faces$path %in% utils::head(unique(faces$path), n), , drop = FALSE]
  if (nrow(rows) == 0) tv_abort("{.arg faces} has no images to draw.", class = "no_images")
  if (copies) return(plot_copies(rows, size, ncol, caption))
  paths <- unique(rows$path)
  boxes <- rows[stats::complete.cases(rows[box_columns]), , drop = FALSE]
  boxes$class <- rep("face", nrow(boxes))
  boxes$label <- as.character(boxes$face %||% seq_len(nrow(boxes)))
  counts <- tabulate(match(boxes$path, paths), length(paths))
  notes <- paste0(counts, " face", ifelse(counts == 1, "", "s"))
  draw_boxes(paths, boxes, image_sizes(rows, paths), panel_titles(paths, notes), size, ncol, caption)
}

# Anonymised copies, titled with what was done to each.
plot_copies <- function(done, size, ncol, caption) {
  notes <- ifelse(done$status == "faces_obscured",
                  paste0(done$n_faces, " face", ifelse(done$n_faces == 1, "", "s"), " obscured"),
                  gsub("_", " ", done$status))
  shown <- ifelse(is.na(done$output), done$path, done$output)
  sizes <- list(width = rep(NA_real_, nrow(done)), height = rep(NA_real_, nrow(done)))
  draw_boxes(shown, tibble::tibble(), sizes, panel_titles(done$path, notes), size, ncol, caption)
}

boxes_by_image <- function(faces, images) {
  ok <- stats::complete.cases(faces[box_columns])
  m <- as.matrix(faces[ok, box_columns])
  rows <- split(seq_len(nrow(m)), factor(faces$path[ok], levels = images))
  unname(lapply(rows, function(r) lapply(r, function(i) unname(m[i, ]))))
}

# Box columns as a dict of four lists of doubles (NA arrives in Python as NaN).
box_lists <- function(faces) {
  lapply(unclass(faces[box_columns]), function(x) as.list(as.double(x)))
}

check_faces <- function(faces, columns, arg = rlang::caller_arg(faces), call = caller_env()) {
  if (!is.data.frame(faces)) {
    tv_abort(c("{.arg {arg}} must be a tibble of faces, not {.obj_type_friendly {faces}}.",
               i = "Make one with {.fn detect_faces}."), class = "bad_argument", call = call)
  }
  missing <- setdiff(columns, names(faces))
  if (length(missing) > 0) {
    tv_abort(c("{.arg {arg}} has no {.field {missing}} column{?s}.",
               i = "Use a tibble from {.fn detect_faces}."), class = "missing_column", call = call)
  }
}

check_upsample <- function(x, call = caller_env()) {
  if (!is.numeric(x) || length(x) != 1 || is.na(x) || !x %in% 0:3) {
    tv_abort(c("{.arg upsample} must be 0, 1, 2 or 3, not {shown_value(x)}.",
               i = "Each step doubles the image: 1 finds faces down to about 40 pixels, 2 to about 20."),
             class = "bad_argument", call = call)
  }
}

