#' How a tag's precision and recall move with its confidence threshold
#'
#' [validate_tags()] checks a tag as a proxy for a hand label at one
#' confidence cut-off. `tag_curve()` does it at each of `min_confidence`:
#' raising the threshold trades recall for precision, and the curve shows
#' what each cut-off buys. At every threshold the numbers are exactly those
#' of [validate_tags()] with that `min_confidence` (same joining, same
#' bootstrap intervals, same seed). `compare_taggers()` puts several
#' taggers side by side on the same hand labels, e.g. Amazon Rekognition
#' against the offline ImageNet tagger.
#'
#' Precision is undefined at thresholds where no image is tagged; it (and
#' F1) is then `NA`, with one warning (`tidyvision_warning_undefined_metric`)
#' for the whole curve.
#'
#' @inheritParams validate_tags
#' @param min_confidence The thresholds (0 to 1) to check.
#' @return A `tv_tag_curve` tibble, one row per threshold and metric:
#'   `min_confidence`, `n_tagged` (images tagged at that threshold),
#'   `.metric` (`"accuracy"`, `"precision"`, `"recall"`, `"f1"`),
#'   `.estimator`, `.estimate`, `.lower`, `.upper`, `.method`; `compare_taggers()` adds
#'   a leading `tagger` column. `autoplot()` draws it.
#' @seealso [autoplot.tv_tag_curve()].
#' @export
#' @examples
#' truth <- data.frame(path = sprintf("img%02d.jpg", 1:40), protest = rep(c(TRUE, FALSE), 20))
#' # a tagger that is more confident on protests
#' conf <- ifelse(truth$protest, seq(0.55, 0.99, length.out = 40), seq(0.3, 0.9, length.out = 40))
#' tags <- data.frame(path = truth$path, tag = "crowd", confidence = conf)
#' curve <- tag_curve(tags, truth, "crowd", protest, times = 200)
#' curve
#' ggplot2::autoplot(curve)
tag_curve <- function(tags, truth, tag, label, min_confidence = seq(0.5, 0.99, by = 0.01), event = NULL,
                      conf_level = 0.95, times = 2000, seed = 1) {
  check_thresholds(min_confidence)
  m <- tag_matches(tags, truth, tag, rlang::enquo(label), event)
  warn_untagged(m$untagged)
  curve_of(m, min_confidence, conf_level, times, seed)
}

#' @rdname tag_curve
#' @param taggers A named list of tag tables (from [autotag()],
#'   [read_rekognition()] or your own), one per tagger.
#' @param tag For `compare_taggers()`: tag names shared by every tagger, or
#'   a named list giving each tagger's own (`list(rekognition = "Crowd",
#'   imagenet = c("bearskin", "military uniform"))`).
#' @export
compare_taggers <- function(taggers, truth, tag, label, min_confidence = seq(0.5, 0.99, by = 0.01),
                            event = NULL, conf_level = 0.95, times = 2000, seed = 1) {
  if (!is.list(taggers) || is.data.frame(taggers) || length(taggers) == 0 ||
      !rlang::is_named(taggers) || anyDuplicated(names(taggers))) {
    tv_abort(c("{.arg taggers} must be a named list of tag tables, one per tagger.",
               i = "E.g. {.code list(rekognition = read_rekognition(f), imagenet = autotag(paths))}."),
             class = "bad_argument")
  }
  tag <- tags_per_tagger(tag, names(taggers))
  check_thresholds(min_confidence)
  label <- rlang::enquo(label)
  curves <- lapply(names(taggers), function(name) {
    m <- tag_matches(taggers[[name]], truth, tag[[name]], label, event)
    warn_untagged(m$untagged, name)
    tibble::add_column(curve_of(m, min_confidence, conf_level, times, seed), tagger = name, .before = 1)
  })
  out <- do.call(rbind, curves)
  out$tagger <- factor(out$tagger, levels = names(taggers))
  out
}

tags_per_tagger <- function(tag, taggers, call = caller_env()) {
  if (is.character(tag)) return(rlang::set_names(rep(list(tag), length(taggers)), taggers))
  if (!is.list(tag) || !setequal(names(tag), taggers)) {
    tv_abort(c("{.arg tag} must be tag names, or a list naming each tagger's tags.",
               i = "Taggers: {.val {taggers}}."), class = "bad_argument", call = call)
  }
  tag
}

check_thresholds <- function(x, call = caller_env()) {
  if (!is.numeric(x) || length(x) == 0 || anyNA(x) || any(x < 0 | x > 1)) {
    tv_abort(c("{.arg min_confidence} must be thresholds between 0 and 1.",
               i = "E.g. {.code seq(0.5, 0.99, by = 0.01)}."), class = "bad_argument", call = call)
  }
}

# validate_tags()' metrics at each threshold; one warning for the undefined ones.
curve_of <- function(m, thresholds, conf_level, times, seed) {
  # seq(0.5, 0.99, by = 0.01) ends at 0.99000000000000010214: a tag at 0.99 must count there
  thresholds <- sort(unique(round(thresholds, 10)))
  undefined <- FALSE
  rows <- withCallingHandlers(lapply(thresholds, function(t) {
    p <- tag_predictions(m, t)
    metrics <- image_metrics(p, truth, tagged, conf_level = conf_level, times = times, seed = seed)
    tibble::add_column(metrics, min_confidence = t, n_tagged = sum(p$tagged == m$levels[1]), .before = 1)
  }), tidyvision_warning_undefined_metric = function(w) {
    undefined <<- TRUE
    rlang::cnd_muffle(w)
  })
  out <- do.call(rbind, rows)
  out$.class <- NULL
  if (undefined) {
    none <- unique(out$min_confidence[out$n_tagged == 0])
    tv_warn(c("Some metrics are undefined ({.val {NA}}) at some thresholds.",
              i = if (length(none)) "No image is tagged at {.val {none}}, so precision is undefined there."),
            class = "undefined_metric")
  }
  structure(out, class = c("tv_tag_curve", class(out)), levels = m$levels)
}

#' Plot a tag's precision-recall curve
#'
#' `type = "pr"` draws precision against recall, one point per threshold
#' (a line per tagger for [compare_taggers()]); `type = "threshold"` draws
#' precision, recall and F1 against the threshold with their intervals. The
#' chosen threshold is marked: `threshold`, or by default the one with the
#' best F1 (the lowest such threshold on ties).
#'
#' @param object A `tv_tag_curve` from [tag_curve()] or [compare_taggers()].
#' @param type `"pr"` or `"threshold"`.
#' @param threshold The threshold to mark, or `NULL` for the best F1.
#' @param ... Not used.
#' @return A ggplot.
#' @export
#' @examples
#' truth <- data.frame(path = sprintf("img%02d.jpg", 1:40), protest = rep(c(TRUE, FALSE), 20))
#' conf <- ifelse(truth$protest, seq(0.55, 0.99, length.out = 40), seq(0.3, 0.9, length.out = 40))
#' tags <- data.frame(path = truth$path, tag = "crowd", confidence = conf)
#' curve <- tag_curve(tags, truth, "crowd", protest, times = 200)
#' ggplot2::autoplot(curve, type = "threshold", threshold = 0.7)
autoplot.tv_tag_curve <- function(object, type = c("pr", "threshold"), threshold = NULL, ...) {
  type <- check_choice(type)
  wide <- curve_wide(object)
  marked <- marked_thresholds(wide, threshold)
  event <- attr(object, "levels")[1]
  if (type == "pr") {
    p <- ggplot2::ggplot(wide, ggplot2::aes(.data$recall, .data$precision, colour = .data$tagger)) +
      ggplot2::geom_path(na.rm = TRUE) + ggplot2::geom_point(size = 0.8, na.rm = TRUE) +
      ggplot2::geom_point(data = marked, size = 3.5, shape = 21, stroke = 1.2, fill = "white") +
      # labels pushed off the curves (a boxed label, joined to its point by a segment)
      ggrepel::geom_label_repel(ggplot2::aes(label = .data$note), data = marked, size = 3.2,
                                nudge_y = -0.12, label.size = 0, fill = grDevices::adjustcolor("white", 0.85),
                                min.segment.length = 0, seed = 1, show.legend = FALSE) +
      ggplot2::coord_cartesian(xlim = c(0, 1), ylim = c(0, 1)) +
      ggplot2::labs(x = paste("Recall of", event), y = paste("Precision of", event), colour = "Tagger")
  } else {
    long <- object[object$.metric %in% c("precision", "recall", "f1"), ]
    long$tagger <- long[["tagger"]] %||% factor("tag")
    p <- ggplot2::ggplot(long, ggplot2::aes(.data$min_confidence, .data$.estimate, colour = .data$.metric)) +
      ggplot2::geom_ribbon(ggplot2::aes(ymin = .data$.lower, ymax = .data$.upper, fill = .data$.metric),
                           alpha = 0.15, colour = NA, na.rm = TRUE) +
      ggplot2::geom_line(na.rm = TRUE) +
      ggplot2::geom_vline(ggplot2::aes(xintercept = .data$min_confidence), data = marked, linetype = 2) +
      ggplot2::facet_wrap(ggplot2::vars(.data$tagger)) +
      ggplot2::labs(x = "Minimum confidence", y = NULL, colour = NULL, fill = NULL)
  }
  caption <- if (is.null(threshold)) "Marked: the threshold with the best F1 (threshold, F1)." else
    sprintf("Marked: the threshold %s.", format(threshold))
  p <- p + ggplot2::theme_minimal() + ggplot2::labs(caption = caption)
  if (nlevels(wide$tagger) == 1 && type == "pr") p <- p + ggplot2::guides(colour = "none")
  p
}

# One row per tagger and threshold, a column per metric.
curve_wide <- function(x) {
  x$tagger <- x[["tagger"]] %||% factor("tag")
  wide <- unique(x[c("tagger", "min_confidence")])
  key <- paste(wide$tagger, wide$min_confidence)
  for (m in c("precision", "recall", "f1")) {
    r <- x[x$.metric == m, ]
    wide[[m]] <- r$.estimate[match(key, paste(r$tagger, r$min_confidence))]
  }
  wide[order(wide$tagger, wide$min_confidence), ]
}

# Per tagger, the marked threshold: `threshold` (nearest on the curve) or the best F1.
marked_thresholds <- function(wide, threshold) {
  rows <- lapply(split(wide, wide$tagger, drop = TRUE), function(w) {
    i <- if (is.null(threshold)) which.max(w$f1) else which.min(abs(w$min_confidence - threshold))
    if (length(i) == 0) i <- 1L
    w[i, ]
  })
  out <- do.call(rbind, rows)
  out$note <- sprintf("%.2f (F1 %.2f)", out$min_confidence, out$f1)
  out
}
