#' Tag images with an off-the-shelf model
#'
#' Automatic tags are a cheap first look at a collection, and a candidate
#' proxy for a concept you care about ("crowd" for protest images). Check
#' the proxy against hand labels with [validate_tags()] before using it.
#'
#' With `model = "imagenet"`, each image gets the `top_k` most probable of
#' the 1000 ImageNet-1k classes from EfficientNet-Lite0, whose weights are
#' installed with tidyvision (no download). Class names are torchvision's,
#' lowercased (`"golden retriever"`, `"hammer"`, `"cardigan welsh corgi"`).
#' Images are resized as [predict()][predict.tv_classifier] does (shorter
#' side 256, centre crop 224), batched, in bf16 where it measured faster on this CPU.
#'
#' With a YOLO detector (a `tv_detector` from [train_detector()], a `.pt`
#' file or a name such as `"yolov8n.pt"`, see [detect_objects()]), an image
#' gets one tag per class found, with the confidence of its most confident
#' box, the `top_k` most confident classes.
#'
#' An image without tags (an unreadable image, or one where the detector
#' found nothing) is one row with `tag` and `confidence` `NA`, so it still
#' counts in [validate_tags()].
#'
#' @param paths Image paths, or a tibble with a `path` column.
#' @param model `"imagenet"`, or a YOLO detector (see Details).
#' @param top_k Tags per image, most confident first.
#' @param batch_size Images decoded together (the next batch decodes while
#'   this one runs) and, on a GPU, per forward pass. On a CPU the forward
#'   pass takes 8 images at a time whatever `batch_size` is: that keeps the
#'   activations in the processor's cache and was ~1.6x faster than 64.
#' @param device `"auto"`, `"cpu"`, `"cuda"` or `"mps"`.
#' @param verbose Show a progress bar.
#' @param ... Passed to [detect_objects()] when `model` is a detector, e.g.
#'   `confidence = 0.5`.
#' @return A tibble with `path`, `tag`, `confidence` (0 to 1) and `source`
#'   (the model: `"efficientnet_lite0 (ImageNet-1k)"`, or the detector).
#' @export
#' @examplesIf tv_available()
#' imgs <- image_files(system.file("extdata", "images", package = "tidyvision"))
#' tags <- autotag(imgs[imgs$label == "tools", ], top_k = 3)
#' tags
autotag <- function(paths, model = "imagenet", top_k = 5, batch_size = 32, device = "auto",
                    verbose = tv_verbose(), ...) {
  paths <- image_paths(paths)
  check_count(top_k)
  check_count(batch_size)
  check_flag(verbose)
  if (identical(model, "imagenet")) {
    rlang::check_dots_empty()
    return(imagenet_tags(paths, top_k, batch_size, device, verbose))
  }
  source <- if (inherits(model, "tv_detector")) {
    paste0("YOLO detector (", paste(model$classes, collapse = ", "), ")")
  } else {
    paste0("YOLO ", basename(detector_weights(model)))
  }
  found <- detect_objects(paths, model = model, batch_size = batch_size, device = device,
                          verbose = verbose, ...)
  detector_tags(found, top_k, source)
}

imagenet_tags <- function(paths, top_k, batch_size, device, verbose) {
  cols <- engine_call("tags.imagenet", as.list(paths), top_k = as.integer(top_k),
                      batch_size = as.integer(batch_size), device = device,
                      progress = progress_callback(verbose, "Tagging"))
  cols$source <- "efficientnet_lite0 (ImageNet-1k)"
  out <- as_schema(cols, "tags")
  warn_unreadable(out$path, col_of(cols$problem), "kept with {.code NA} tags")
  out
}

# One tag per image and class, with its best box's confidence. max_or_na():
# dplyr evaluates the summary once on an empty group when nothing was found.
detector_tags <- function(found, top_k, source) {
  paths <- unique(found$path)
  hit <- found[!is.na(found$class), ]
  best <- dplyr::summarise(dplyr::group_by(hit, .data$path, tag = .data$class),
                           confidence = max_or_na(.data$confidence), .groups = "drop")
  best <- best[order(match(best$path, paths), -best$confidence), ]
  best <- best[stats::ave(best$confidence, best$path, FUN = seq_along) <= top_k, ]
  none <- tibble::tibble(path = setdiff(paths, best$path), tag = NA_character_, confidence = NA_real_)
  out <- dplyr::bind_rows(best, none)
  out <- out[order(match(out$path, paths)), ]
  out$source <- source
  out
}

#' Read Amazon Rekognition output as tags
#'
#' Commercial taggers return labels with a confidence; this reads those of
#' Amazon Rekognition into the tidy shape of [autotag()], ready for
#' [validate_tags()]. Confidence percentages become proportions (0 to 1).
#'
#' Formats, told apart by their content:
#' * Raw JSON responses of `DetectLabels` (tags are the `Labels`' `Name`s
#'   with their `Confidence`) and `RecognizeCelebrities` (tags are the
#'   `CelebrityFaces`' `Name`s with their `MatchConfidence`;
#'   unrecognised faces are not tags). A file holds one response, a JSON
#'   array of them, JSON lines (one per line), or an object of responses
#'   keyed by image name (`{"photo1.jpg": {...}, ...}`). Each response names its
#'   image in a field `path`, `image`, `Image`, `image_id`, `file`,
#'   `filename` or `name` (the first present; `Image` may also be the
#'   request's `{"S3Object": {"Name": ...}}`), with the response itself
#'   either alongside or under `response`. A file with a single unnamed
#'   response, as `aws rekognition detect-labels > photo.jpg.json` writes
#'   it, takes its name from the file: `photo.jpg`.
#' * The CSV files of the book's companion scripts: labels
#'   (`image_id, full_detect_labels_response, label_num, label_str,
#'   label_conf`) and celebrities (`image_id, celeb_full_response,
#'   celeb_num, celeb_urls, celeb_name, celeb_id, celeb_face_data,
#'   celeb_face_conf, celeb_match_conf, celeb_metadata`). Tags come from
#'   `label_str`/`label_conf` and `celeb_name`/`celeb_match_conf`; where
#'   those are empty or missing, from the response column, a Python dict
#'   literal parsed as a literal only (Python's `ast.literal_eval`: nothing
#'   in the file is ever run).
#'
#' An image with no label or no celebrity is one row with `tag` and
#' `confidence` `NA`. Paths are as the file gives them (often file names
#' only); [validate_tags()] matches those to your images by file name.
#'
#' @param file One or more files.
#' @return A tibble with `path`, `tag`, `confidence` (0 to 1) and `source`
#'   (`"Amazon Rekognition DetectLabels"` or
#'   `"Amazon Rekognition RecognizeCelebrities"`).
#' @export
#' @examplesIf tv_available()
#' # Write a DetectLabels response as the AWS command line tool saves it
#' f <- file.path(tempdir(), "protest_01.jpg.json")
#' writeLines('{"Labels": [{"Name": "Crowd", "Confidence": 97.1, "Parents": []},
#'                         {"Name": "Person", "Confidence": 99.5, "Parents": []}],
#'              "LabelModelVersion": "3.0"}', f)
#' read_rekognition(f)
read_rekognition <- function(file) {
  if (!is.character(file) || length(file) == 0 || anyNA(file)) {
    tv_abort("{.arg file} must be paths of Rekognition output files.", class = "bad_argument")
  }
  missing <- file[!file.exists(file)]
  if (length(missing)) {
    tv_abort(c("Can't find {length(missing)} file{?s}:", bullets_of(missing)), class = "path_not_found")
  }
  dplyr::bind_rows(lapply(file, function(f) {
    as_schema(engine_call("tags.read_rekognition", normalizePath(f)), "tags")
  }))
}

#' Check a tag against hand labels
#'
#' Is an automatic tag a good proxy for what you coded by hand? The book's
#' section 6 asks this of a commercial tagger: is "crowd" a protest? This
#' treats "the image has one of `tag` with confidence at least
#' `min_confidence`" as a prediction of `label`, and compares it with the
#' hand labels: the confusion matrix and accuracy, precision, recall and F1
#' of the tag as a classifier, with intervals ([image_metrics()],
#' [confusion()]).
#'
#' **Joining.** `truth` has one row per hand-labelled image: a `path` and
#' the label column. Tags are matched to it by full `path` (`~` expanded)
#' when both sides have folders in their paths; when either side names
#' images by file name only (Rekognition's `image_id`, or a hand-coded
#' table of file names), by file name, which must then name one image on
#' each side. Tag names match without regard to case
#' (`"Crowd"` is `"crowd"`); a tag whose confidence is `NA` never counts.
#' Hand-labelled images with no row at all in `tags` were never tagged;
#' they count as not tagged, and a warning says how many. Tagged images
#' without a hand label are left out.
#'
#' **The label.** A logical column (`TRUE` means the concept is there), or
#' a factor or character column with `event` the value the tag should
#' predict (by default a factor's first level). The classes compared are
#' then `"<event>"` and `"not <event>"` (for a logical column, the column's
#' name and `"not <name>"`). Images whose label is `NA` are left out.
#'
#' @param tags A tibble with `path`, `tag` and `confidence`, from
#'   [autotag()], [read_rekognition()] or your own.
#' @param truth A tibble with `path` and the hand label.
#' @param tag One or more tags that stand for the label, e.g. `"crowd"` or
#'   `c("crowd", "parade")` (any of them counts).
#' @param label The column of `truth` holding the hand label (a bare name).
#' @param min_confidence The confidence (0 to 1) a tag needs to count.
#' @param event For a factor or character `label`: the value the tag
#'   predicts.
#' @inheritParams image_metrics
#' @return A `tv_tag_validation`, a list with `metrics` (the tibble of
#'   [image_metrics()]), `confusion` (of [confusion()]; `autoplot()` draws
#'   it) and `predictions` (one row per hand-labelled image: `path`,
#'   `truth`, `tagged`, `confidence` of its best matching tag).
#' @export
#' @examples
#' # The book's Table 6.1: 815 hand-labelled images, and a tag "protest"
#' truth <- data.frame(path = sprintf("img%03d.jpg", 1:815),
#'                     protest = rep(c(TRUE, FALSE), c(422, 393)))
#' tagged <- seq_len(815) %in% c(1:374, 423:494) # 374 protests and 72 others
#' tags <- data.frame(path = truth$path, tag = ifelse(tagged, "protest", NA),
#'                    confidence = ifelse(tagged, 0.9, NA))
#' v <- validate_tags(tags, truth, tag = "protest", label = protest)
#' v
#' v$metrics
validate_tags <- function(tags, truth, tag, label, min_confidence = 0.5, event = NULL,
                          conf_level = 0.95, times = 2000, seed = 1) {
  if (is.numeric(min_confidence) && length(min_confidence) > 1) {
    tv_abort(c("{.arg min_confidence} must be one number here.",
               i = "For precision and recall at many thresholds use {.fn tag_curve}."),
             class = "bad_argument")
  }
  check_probability(min_confidence)
  m <- tag_matches(tags, truth, tag, rlang::enquo(label), event)
  warn_untagged(m$untagged)
  predictions <- tag_predictions(m, min_confidence)
  structure(list(
    metrics = image_metrics(predictions, truth, tagged, conf_level = conf_level, times = times, seed = seed),
    confusion = confusion(predictions, truth, tagged), predictions = predictions,
    tag = tag, label = m$label, min_confidence = min_confidence
  ), class = "tv_tag_validation")
}

# What validate_tags() and tag_curve() share: each hand-labelled image's
# truth (a two-level factor) and the confidence of its best tag among `tag`
# (NA when it has none), whatever the threshold.
tag_matches <- function(tags, truth, tag, label_quo, event, call = caller_env()) {
  check_tags(tags, call = call)
  if (!is.character(tag) || length(tag) == 0 || anyNA(tag)) {
    tv_abort("{.arg tag} must be one or more tag names, e.g. {.val crowd}.", class = "bad_argument", call = call)
  }
  if (!is.data.frame(truth) || !"path" %in% names(truth)) {
    tv_abort("{.arg truth} must be a data frame with a {.field path} column and the hand label.",
             class = "bad_argument", call = call)
  }
  label_col <- one_column(truth, label_quo, "label", call)
  classes <- label_classes(truth[[label_col]], label_col, event, call)
  keys <- join_keys(tags$path, truth$path, call)
  hit <- tolower(tags$tag) %in% tolower(tag) & !is.na(tags$confidence)
  best <- tapply(ifelse(hit, tags$confidence, NA_real_), keys$tags, max_or_na)
  list(path = truth$path, truth = classes$truth, levels = classes$levels, label = label_col,
       best = as.vector(best[keys$truth]), untagged = truth$path[!keys$truth %in% keys$tags])
}

# One row per hand-labelled image: tagged when its best tag reaches `min_confidence`.
tag_predictions <- function(m, min_confidence) {
  hit <- !is.na(m$best) & m$best >= min_confidence
  tibble::tibble(path = m$path, truth = m$truth,
                 tagged = factor(ifelse(hit, m$levels[1], m$levels[2]), levels = m$levels),
                 confidence = ifelse(hit, m$best, NA_real_))
}

max_or_na <- function(x) if (all(is.na(x))) NA_real_ else max(x, na.rm = TRUE)

check_tags <- function(x, arg = rlang::caller_arg(x), call = caller_env()) {
  missing <- setdiff(c("path", "tag", "confidence"), names(x))
  if (!is.data.frame(x) || length(missing)) {
    tv_abort(c("{.arg {arg}} must be a data frame with {.field path}, {.field tag} and {.field confidence}.",
               i = "Make one with {.fn autotag} or {.fn read_rekognition}."), class = "bad_argument", call = call)
  }
}

# truth as a two-level factor: the event, and "not <event>".
label_classes <- function(x, label_col, event, call = caller_env()) {
  if (is.logical(x)) {
    name <- label_col
    is_event <- x
  } else if (is.factor(x) || is.character(x)) {
    if (is.null(event) && is.character(x)) {
      tv_abort(c("{.arg event} is needed: which value of {.field {label_col}} does the tag stand for?",
                 i = "E.g. {.code event = \"protest\"}, or make {.field {label_col}} logical."),
               class = "bad_argument", call = call)
    }
    name <- event %||% levels(x)[1]
    if (!name %in% as.character(x)) {
      tv_abort("{.field {label_col}} has no {.val {name}}.", class = "bad_argument", call = call)
    }
    is_event <- as.character(x) == name
  } else {
    tv_abort("{.arg label} must be a logical, factor or character column, not {.obj_type_friendly {x}}.",
             class = "bad_argument", call = call)
  }
  levels <- c(name, paste("not", name))
  list(truth = factor(ifelse(is_event, levels[1], levels[2]), levels = levels), levels = levels)
}

# Keys joining tags to truth: full paths when both sides have folders, else
# file names (taggers such as Rekognition name images by file name, and
# hand-coded tables often do too), whichever side has only names.
join_keys <- function(tag_paths, truth_paths, call = caller_env()) {
  tag_paths <- as.character(tag_paths)
  truth_paths <- as.character(truth_paths)
  has_folder <- function(x) any(grepl("[/\\\\]", x))
  by_name <- !has_folder(tag_paths) || !has_folder(truth_paths)
  if (by_name) {
    keys <- list(tags = basename_key(tag_paths), truth = basename_key(truth_paths))
    check_unique_names(truth_paths, keys$truth, "truth", call)
    check_unique_names(tag_paths, keys$tags, "tags", call)
  } else {
    keys <- list(tags = expand_paths(tag_paths), truth = expand_paths(truth_paths))
  }
  if (!any(keys$truth %in% keys$tags)) {
    example <- function(x) x[!is.na(x)][1]
    tv_abort(c("No image in {.arg truth} has tags.",
               i = "Matched by {if (by_name) 'file name' else 'full path'}: tags have keys such as {.val {example(keys$tags)}}, {.arg truth} has keys such as {.val {example(keys$truth)}}.",
               i = "Check that both name the same images, e.g. the same folder."),
             class = "no_match", call = call)
  }
  keys
}

basename_key <- function(x) ifelse(is.na(x), NA_character_, basename(gsub("\\\\", "/", x)))

# File names must name one image each when they are the key.
check_unique_names <- function(paths, names, arg, call) {
  distinct <- unique(data.frame(path = paths, name = names))
  dup <- unique(distinct$name[duplicated(distinct$name) & !is.na(distinct$name)])
  if (length(dup)) {
    tv_abort(c("Images are matched by file name (one side has no folders), but {.arg {arg}} has file names more than once, in different folders:",
               bullets_of(dup), i = "Give both sides full paths, or make the file names unique."),
             class = "bad_argument", call = call)
  }
}

warn_untagged <- function(paths, tagger = NULL) {
  if (length(paths) == 0) return(invisible())
  by <- if (!is.null(tagger)) paste0(" from ", tagger) else ""
  tv_warn(c("{length(paths)} hand-labelled image{?s} {?has/have} no tags at all{by} and count{?s/} as not tagged:",
            bullets_of(paths)), class = "untagged")
}

#' @export
format.tv_tag_validation <- function(x, ...) {
  m <- x$metrics
  cm <- x$confusion
  lv <- levels(cm$truth)
  n <- function(t, p) cm$n[cm$truth == t & cm$prediction == p]
  fmt <- function(metric) {
    r <- m[m$.metric == metric, ]
    sprintf("%-9s %.3f [%.3f, %.3f]", metric, r$.estimate, r$.lower, r$.upper)
  }
  shown <- paste0("\"", utils::head(x$tag, 3), "\"", collapse = " or ")
  if (length(x$tag) > 3) shown <- paste0(shown, " or ", length(x$tag) - 3, " more")
  c(sprintf("Tag %s (confidence >= %s) as a proxy for %s: %d images",
            shown, format(x$min_confidence), lv[1], sum(cm$n)),
    "",
    sprintf("%-16s %14s %14s", "", paste("tagged"), "not tagged"),
    sprintf("%-16s %14d %14d", truncate_name(lv[1], 16, file = FALSE), n(lv[1], lv[1]), n(lv[1], lv[2])),
    sprintf("%-16s %14d %14d", truncate_name(lv[2], 16, file = FALSE), n(lv[2], lv[1]), n(lv[2], lv[2])),
    "",
    vapply(c("accuracy", "precision", "recall", "f1"), fmt, character(1), USE.NAMES = FALSE))
}

#' @export
print.tv_tag_validation <- function(x, ...) {
  print_titled(x, "tidyvision tag validation")
}

#' @export
autoplot.tv_tag_validation <- function(object, ...) {
  ggplot2::autoplot(object$confusion) +
    ggplot2::scale_x_discrete(labels = c("tagged", "not tagged")) +
    ggplot2::labs(x = "Tag", y = "Hand label")
}
