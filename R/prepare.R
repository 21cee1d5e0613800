#' Find exact and near-duplicate images
#'
#' Step 2 of the book's workflow: image collections scraped from social media
#' are full of copies (retweets, reposts, re-encoded and resized versions).
#' Left in, they inflate accuracy when one copy lands in training and another
#' in validation. `find_duplicates()` puts copies in one `group`; pass that
#' group to [split_images()] to keep copies in one split, or keep only
#' `is_first` rows to drop them.
#'
#' `method = "exact"` compares the SHA-256 of the file bytes: only identical
#' files match. `method = "phash"` compares perceptual hashes (the
#' 64-bit DCT hash of the imagehash library), which survive re-encoding,
#' resizing, format changes and small crops. Because a plain phash moves a
#' lot when a copy loses a few percent of its border, each image is also
#' hashed on its central 95% and 90%, and two images are as far apart as
#' the closest full-frame/crop pair of their hashes (in bits, 0 to 64).
#'
#' The default `max_distance = 8` comes from a test on the shipped photos:
#' copies re-encoded at JPEG quality 40, halved in size, converted to PNG or
#' cropped by 1-5% on every side were at most 6 bits from their original,
#' while any two different photos were at least 12 bits apart (most are
#' 28-36). Lower it for fewer false matches in collections of very similar
#' pictures (e.g. product shots on white); raise it to catch heavier edits.
#'
#' Mirrored, rotated or heavily cropped copies are not matched by `"phash"`.
#'
#' `method = "embedding"` finds semantic near-copies: the same picture
#' mirrored, re-framed, re-coloured, or a meme template with new text,
#' which phash misses. Images are embedded with `backbone` (see
#' [image_embeddings()]; an `embedding` column of `images` is used as it
#' is), and two images are copies when the cosine similarity of their
#' embeddings is at least `threshold`, or when their perceptual hashes are
#' within `max_distance` bits: the semantic groups hold every plain copy
#' phash finds (a half-size copy can fall below the threshold: on the 89
#' shipped photos the cosine alone missed 4 of 89 half-size copies, see
#' `bench/semantic_copies.R`). `distance` is 1 - cosine similarity to the
#' group's first image. The default `threshold = 0.85` comes from a test on the 89
#' shipped photos with EfficientNet-Lite0: any two different photos had a
#' similarity of at most 0.72 (median 0.23; the closest pair, two photos of
#' scissors), while at 0.85 it found all mirrored and re-coloured copies,
#' 96-99% of meme copies (a white or black text band over 15-20% of the
#' height) and 89% of copies cropped by 10% on every side. At 0.8 it found
#' 99-100% of every kind, still with no false pair among the shipped photos:
#' lower it for heavier edits, raise it for collections of very similar
#' pictures (many shots of one scene), where different photos come closer.
#' The similarities are computed in blocks of 2,048 images (float32 matrix
#' products), keeping only the pairs above `threshold`: 20,000 images take
#' well under a minute once embedded (see `bench/embeddings.R`).
#'
#' Images within `max_distance` of each other are joined, and so are chains
#' of them, so a group's members can be further than `max_distance` from its
#' first image. Images are decoded at reduced size (JPEG draft mode) in
#' parallel on every core; pairs are compared vectorised, so 10,000 photos
#' take seconds.
#'
#' @param images A tibble from [image_files()] or a character vector of
#'   image paths. Rows with `readable = FALSE` are not read.
#' @param method `"phash"` (near copies), `"exact"` (identical bytes) or
#'   `"embedding"` (semantic near-copies).
#' @param max_distance For `"phash"`: the largest distance, in bits of 64,
#'   at which two images count as copies. Used by `"phash"` only.
#' @param threshold For `"embedding"`: the smallest cosine similarity (0 to
#'   1) at which two images count as copies.
#' @param backbone For `"embedding"`: the backbone (or a fitted classifier)
#'   that embeds the images; see [image_embeddings()].
#' @param verbose Show a progress bar.
#' @return A tibble with one row per input row, in input order: `path`;
#'   `group`, an integer numbering groups 1, 2, ... in order of their first
#'   image (an image without copies has a group of its own); `is_first`,
#'   `TRUE` for the first image of each group in input order; `distance`,
#'   bits between the image and its group's first image (0 for `"exact"`;
#'   for `"embedding"`, 1 - cosine similarity).
#'   Images that can't be read get `NA` in all three, with one warning
#'   naming them.
#' @seealso [split_images()] with `group = group` to keep copies together.
#' @export
#' @examplesIf tv_available()
#' imgs <- image_files(system.file("extdata", "images", package = "tidyvision"))
#' dups <- find_duplicates(imgs)
#' dups
#' # Keep one image per group:
#' imgs[dups$is_first %in% TRUE, ]
#' # Semantic near-copies (re-framed, re-coloured, memes):
#' find_duplicates(imgs, method = "embedding")
find_duplicates <- function(images, method = c("phash", "exact", "embedding"), max_distance = 8,
                            threshold = 0.85, backbone = "efficientnet_lite0", verbose = tv_verbose()) {
  method <- check_choice(method)
  check_max_distance(max_distance)
  check_scalar(threshold, function(v) v > 0 && v <= 1, "a cosine similarity above 0 and at most 1",
               "threshold", caller_env())
  check_flag(verbose)
  paths <- image_paths(images)
  skip <- marked_unreadable(images, length(paths))
  model <- if (method == "embedding") embedding_args(images, backbone)
  res <- do.call(engine_call, c(list(
    "prepare.find_duplicates", as.list(paths),
    method = method, max_distance = as.integer(max_distance), skip = as.list(skip), threshold = threshold,
    progress = progress_callback(verbose, if (is.null(model)) "Hashing images" else "Embedding images")
  ), model))
  schema <- if (method == "embedding") "duplicates_embedding" else "duplicates"
  out <- tibble::add_column(as_schema(res, schema), path = paths, .before = 1)
  problems <- col_of(res$problem)
  if (any(skip)) {
    given <- if (is.data.frame(images) && "problem" %in% names(images)) images$problem[skip] else NA
    problems[skip] <- ifelse(is.na(given), "marked readable = FALSE", given)
  }
  warn_unreadable(paths, ifelse(is.na(out$group), ifelse(is.na(problems), "unreadable", problems), NA),
                  "{?its/their} {.field group} is {.val {NA}}")
  out
}

# The engine's embedding arguments: the embedding column when `images` has
# one, else the model to embed with.
embedding_args <- function(images, backbone, call = caller_env()) {
  given <- embedding_input(images, "images", call)$embedding
  if (!is.null(given)) return(list(embedding = given))
  embedding_model(backbone, 224, "rescale_crop", call)
}

marked_unreadable <- function(images, n) {
  if (is.data.frame(images) && "readable" %in% names(images)) {
    return(!(images$readable %in% TRUE))
  }
  rep(FALSE, n)
}

check_max_distance <- function(x, call = caller_env()) {
  if (!is.numeric(x) || length(x) != 1 || is.na(x) || x < 0 || x > 64 || x != round(x)) {
    tv_abort(c("{.arg max_distance} must be a whole number of bits from 0 to 64.",
               i = "The default, 8, keeps re-encoded, resized and slightly cropped copies together."),
             class = "bad_argument", call = call)
  }
}

#' Split images into training, validation and test sets
#'
#' Assigns every row to a split, stratified so that each class keeps the
#' proportions of `prop`. Within each stratum the counts are rounded so that
#' every split gets at least one image of each class when it can; a class
#' with fewer images than splits fills `train` first, then `val`. A class
#' left with no image in some split (too few images, or kept together by
#' `group`) is named in a warning (`tidyvision_warning_empty_split`): its
#' validation metrics would rest on nothing.
#'
#' Near copies leak: if a retweet of a training image sits in the validation
#' set, the model is tested on an image it has seen, and accuracy is
#' inflated, badly so in retweet-heavy corpora. Pass `group` (e.g. the
#' `group` column of [find_duplicates()]) and whole groups are assigned to
#' one split: groups are placed largest first into the split with the most
#' room left for their classes, so proportions stay close to `prop`. Rows
#' with a missing `group` are treated as groups of one.
#'
#' @param images A data frame of images, e.g. from [image_files()].
#' @param prop Named proportions that sum to 1, with names from `train`,
#'   `val` and `test`.
#' @param strata Columns to stratify by (tidyselect), `label` by default;
#'   `NULL` for a simple random split.
#' @param seed Random seed; the same seed and data give the same split. The
#'   global random number generator is left untouched.
#' @param group Optional column (tidyselect) whose rows must stay together.
#' @param overwrite A split `images` already has (from `train/`, `val/`
#'   folders, or an earlier call) is kept, with a message, and only rows
#'   without one are split; `TRUE` draws a new split for every row.
#' @return `images` with the same rows in the same order and a character
#'   column `split`.
#' @export
#' @examplesIf tv_available()
#' imgs <- image_files(system.file("extdata", "images", package = "tidyvision"))
#' imgs <- split_images(imgs, prop = c(train = 0.6, val = 0.2, test = 0.2))
#' table(imgs$label, imgs$split)
#'
#' # Keep near copies in one split:
#' dups <- find_duplicates(imgs)
#' imgs$dup_group <- dups$group
#' imgs <- split_images(imgs, group = dup_group)
split_images <- function(images, prop = c(train = 0.8, val = 0.2), strata = label,
                         seed = 1, group = NULL, overwrite = FALSE) {
  check_images_df(images)
  prop <- check_prop(prop)
  check_seed(seed)
  check_flag(overwrite)
  kept <- if (!overwrite && "split" %in% names(images)) !is.na(normalize_split(images$split)) else FALSE
  if (any(kept)) {
    inform_kept_split(images$split[kept], sum(!kept))
    if (all(kept)) return(images)
    images$split[!kept] <- split_images(images[!kept, , drop = FALSE], prop, {{ strata }}, seed, {{ group }},
                                        overwrite = TRUE)$split
    return(images)
  }
  strata_cols <- select_columns(images, rlang::enquo(strata), "strata")
  group_col <- select_columns(images, rlang::enquo(group), "group", max = 1)
  n <- nrow(images)
  if (n == 0) {
    images$split <- character()
    return(images)
  }
  stratum <- if (length(strata_cols)) vctrs::vec_group_id(images[strata_cols]) else rep(1L, n)
  unit <- if (length(group_col)) group_units(images[[group_col]]) else seq_len(n)
  used <- prop[prop > 0]
  which_split <- withr::with_seed(seed, assign_units(unit, as.integer(stratum), used))
  images$split <- names(used)[which_split]
  warn_empty_splits(images[strata_cols], stratum, images$split, names(used))
  images
}

inform_kept_split <- function(split, n_new) {
  counts <- table(normalize_split(split))
  cli::cli_inform(c(i = "Kept the split {.arg images} already has ({paste(names(counts), counts, sep = ': ', collapse = ', ')}){if (n_new) paste0('; split only the ', n_new, ' image', if (n_new > 1) 's', ' without one') else ''}.",
                    " " = "Use {.code overwrite = TRUE} to draw a new split for every image."),
                  class = c("tidyvision_message_split_kept", "tidyvision_message"))
}

# A class with no validation (or test) image is measured on nothing: say so.
warn_empty_splits <- function(strata, stratum, split, splits) {
  if (ncol(strata) == 0) return(invisible())
  counts <- table(factor(stratum), factor(split, levels = splits))
  empty <- which(counts == 0, arr.ind = TRUE)
  if (nrow(empty) == 0) return(invisible())
  first <- match(as.integer(rownames(counts))[empty[, 1]], stratum)
  what <- do.call(paste, c(lapply(strata, function(x) as.character(x[first])), sep = " / "))
  tv_warn(c("Some classes have no image in some splits:",
            bullets_of(sprintf("%s (%d image%s): none in %s", what, rowSums(counts)[empty[, 1]],
                               ifelse(rowSums(counts)[empty[, 1]] == 1, "", "s"), splits[empty[, 2]])),
            i = "Label more images of these classes, or merge them with another."),
          class = "empty_split")
}

# Row groups that must share a split; NA groups are groups of one.
group_units <- function(x) {
  id <- vctrs::vec_group_id(x)
  na <- vctrs::vec_detect_missing(x)
  id[na] <- max(c(0L, id)) + seq_len(sum(na))
  as.integer(id)
}

# Per stratum: counts that round n * prop by largest remainders, then give
# the first min(n, splits) splits (train, then val, then test) at least one
# image each, so a rare class is still validated when it can be.
split_counts <- function(n, prop) {
  raw <- n * prop
  out <- floor(raw + 1e-9)
  left <- n - sum(out)
  if (left > 0) {
    idx <- order(-(raw - out), seq_along(prop))[seq_len(left)]
    out[idx] <- out[idx] + 1
  }
  need <- as.numeric(seq_along(prop) <= n)
  for (j in which(out < need)) {
    donor <- which.max(out - need)
    out[donor] <- out[donor] - 1
    out[j] <- 1
  }
  out
}

# Greedy: units (groups of rows) largest first, ties in random order, each
# to the split with the most room left for the strata it holds.
assign_units <- function(unit, stratum, prop) {
  n_strata <- max(c(0L, stratum))
  target <- matrix(
    unlist(lapply(tabulate(stratum, n_strata), split_counts, prop = prop)),
    nrow = n_strata, byrow = TRUE
  )
  assigned <- matrix(0, n_strata, length(prop))
  rows <- split(seq_along(unit), unit)
  out <- integer(length(unit))
  for (u in order(-lengths(rows), sample.int(length(rows)))) {
    r <- rows[[u]]
    s <- unique(stratum[r])
    count <- tabulate(match(stratum[r], s), length(s))
    room <- colSums((target[s, , drop = FALSE] - assigned[s, , drop = FALSE]) * count)
    j <- which.max(room)
    assigned[s, j] <- assigned[s, j] + count
    out[r] <- j
  }
  out
}

check_prop <- function(prop, call = caller_env()) {
  bad <- function(...) {
    tv_abort(c(..., i = "For example: {.code prop = c(train = 0.7, val = 0.15, test = 0.15)}."),
             class = c("bad_prop", "bad_argument"), call = call, .envir = parent.frame())
  }
  if (!is.numeric(prop) || length(prop) == 0 || anyNA(prop)) {
    bad("{.arg prop} must be named numbers, not {.obj_type_friendly {prop}}.")
  }
  nms <- names(prop)
  if (is.null(nms) || any(!nms %in% c("train", "val", "test")) || anyDuplicated(nms)) {
    bad("{.arg prop} must be named with {.val train}, {.val val} and/or {.val test}, each once.",
        x = if (!is.null(nms)) "Names given: {.val {nms}}.")
  }
  if (any(prop < 0)) bad("{.arg prop} can't be negative: {.val {prop[prop < 0]}}.")
  if (abs(sum(prop) - 1) > 1e-6) bad("{.arg prop} must sum to 1, not {sum(prop)}.")
  prop[order(match(nms, c("train", "val", "test")))]
}

check_images_df <- function(images, arg = rlang::caller_arg(images), call = caller_env()) {
  if (!is.data.frame(images)) {
    tv_abort(c("{.arg {arg}} must be a data frame, not {.obj_type_friendly {images}}.",
               i = "Make one with {.fn image_files}."), class = "bad_argument", call = call)
  }
}

# Column names chosen by a tidyselect expression, as a classed error when
# they don't exist.
select_columns <- function(data, quo, arg, max = Inf, call = caller_env()) {
  cols <- tryCatch(
    names(tidyselect::eval_select(quo, data, allow_rename = FALSE)),
    error = function(e) {
      tv_abort(c("Can't find {.arg {arg}} column {.code {rlang::as_label(quo)}} in the data.",
                 # a default such as `label = label` finds its own promise, not a column
                 x = if (rlang::quo_is_symbol(quo) && !rlang::as_name(quo) %in% names(data))
                   "Column {.code {rlang::as_name(quo)}} doesn't exist." else cli_escape(selection_problem(e)),
                 i = "Columns: {.field {names(data)}}.",
                 i = if (arg == "strata") "Use {.code strata = NULL} for a split without strata."),
               class = "missing_column", call = call)
    }
  )
  if (length(cols) > max) {
    tv_abort("{.arg {arg}} must select at most {max} column{?s}, not {length(cols)}.",
             class = "bad_argument", call = call)
  }
  cols
}

# The detail lines of a tidyselect error ("Column `x` doesn't exist."),
# without their bullets.
selection_problem <- function(e) {
  lines <- strsplit(conditionMessage(e), "\n")[[1]]
  if (length(lines) < 2) return(lines)
  paste(sub("^\\S+\\s+", "", lines[-1]), collapse = " ")
}

#' Downsample to equal class counts
#'
#' Keeps a random `n` images of every class, where `n` is the size of the
#' smallest class, so a classifier can't score well by favouring the common
#' class. On a grouped data frame (`dplyr::group_by()`, e.g. by `split`)
#' each group is balanced on its own. Rows with a missing label are dropped
#' with a warning.
#'
#' @param images A data frame of images, e.g. from [image_files()].
#' @param label The column (tidyselect) holding the classes.
#' @param seed Random seed; the global random number generator is left
#'   untouched.
#' @return The kept rows of `images`, in their original order.
#' @export
#' @examplesIf tv_available()
#' imgs <- image_files(system.file("extdata", "images", package = "tidyvision"))
#' table(imgs$label)
#' table(balance_classes(imgs)$label)
balance_classes <- function(images, label = label, seed = 1) {
  check_images_df(images)
  check_seed(seed)
  label_col <- select_columns(images, rlang::enquo(label), "label", max = 1)
  if (length(label_col) == 0) {
    tv_abort("{.arg label} must select one column.", class = "bad_argument")
  }
  lab <- images[[label_col]]
  if (anyNA(lab)) {
    tv_warn("Dropped {sum(is.na(lab))} image{?s} with a missing {.field {label_col}}.",
            class = "missing_label")
  }
  groups <- if (dplyr::is_grouped_df(images)) dplyr::group_rows(images) else list(seq_along(lab))
  keep <- withr::with_seed(seed, unlist(lapply(groups, function(rows) {
    rows <- rows[!is.na(lab[rows])]
    by_class <- split(rows, as.character(lab[rows]))
    n_min <- min(lengths(by_class), Inf)
    unlist(lapply(by_class, function(r) r[sample.int(length(r), n_min)]))
  })))
  images[sort(as.integer(keep)), , drop = FALSE]
}

#' Turn 0-10 ratings into clean labels: the book's rule
#'
#' Webb Williams, Casas & Wilkerson (2020, section 7.3) ask coders to rate
#' how much each image shows each category (0-10), then keep only clear
#' cases: an image is positive for a category when its score is at least
#' `threshold` and beats the next highest score among `cols` by at least
#' `margin`; it is negative for every category when all its scores are 0;
#' anything else is unclear (`NA`) and best left out of training.
#'
#' A missing score makes every label of its row `NA`. With a single column
#' there is no competitor, so only `threshold` applies.
#'
#' @param data A data frame with one row per image and one numeric score
#'   column per category.
#' @param cols The score columns (tidyselect), e.g. `c(protest, riot)` or
#'   `starts_with("score_")`.
#' @param threshold Smallest score that can make a positive.
#' @param margin How far a positive must beat the next highest score.
#' @return `data` with one logical column `.label_<col>` per score column:
#'   `TRUE` positive, `FALSE` negative, `NA` unclear.
#' @export
#' @examples
#' ratings <- data.frame(
#'   image = c("a.jpg", "b.jpg", "c.jpg", "d.jpg"),
#'   protest = c(8, 5, 0, 2),
#'   riot = c(1, 4, 0, 0)
#' )
#' binarize_scores(ratings, c(protest, riot))
binarize_scores <- function(data, cols, threshold = 3, margin = 3) {
  check_images_df(data, arg = "data")
  check_number(threshold)
  check_number(margin)
  cols <- select_columns(data, rlang::enquo(cols), "cols")
  if (length(cols) == 0) {
    tv_abort("{.arg cols} must select at least one score column.", class = "bad_argument")
  }
  not_num <- cols[!vapply(data[cols], is.numeric, logical(1))]
  if (length(not_num)) {
    tv_abort("Score column{?s} {.field {not_num}} must be numeric.", class = "bad_argument")
  }
  scores <- as.matrix(data[cols])
  tol <- sqrt(.Machine$double.eps)
  all_zero <- rowSums(scores != 0) == 0
  for (j in seq_along(cols)) {
    others <- scores[, -j, drop = FALSE]
    best_other <- if (ncol(others)) do.call(pmax, unname(as.data.frame(others))) else -Inf
    s <- scores[, j]
    positive <- s >= threshold - tol & s - best_other >= margin - tol
    data[[paste0(".label_", cols[j])]] <-
      ifelse(positive %in% TRUE, TRUE, ifelse(all_zero %in% TRUE, FALSE, NA))
  }
  data
}
