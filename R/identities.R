# A few-shot identity model on face embeddings (faces.R makes them).

#' Recognise people from a few photos of each
#'
#' A few-shot identity model on dlib's face embeddings ([face_embeddings()]):
#' a few labelled faces per person are enough, nothing is trained. A new
#' face gets the identity of the closest labelled face (`method =
#' "nearest"`) or of the closest per-person mean embedding (`"centroid"`),
#' unless that is farther than `threshold`: then it is `"unknown"`. This is
#' the book's world-leaders task (section 7.8) done without fine-tuning, and
#' it says "unknown" for people it was not shown instead of forcing them
#' into one of the known classes.
#'
#' `threshold = 0.6` is dlib's documented rule for its embeddings: two faces
#' closer than 0.6 are usually the same person (99.38% accuracy on LFW).
#' Lower it to make fewer false matches and more "unknown"s. dlib's model
#' is known to do worse on children (who it mixes up at 0.6) and on groups
#' under-represented in its training data: check it on your own labelled
#' faces by group, with [image_metrics()] on a grouped tibble (see
#' `vignette("faces", package = "tidyvision")`).
#'
#' @param x A tibble from [face_embeddings()], or from [detect_faces()]
#'   (embeddings are then computed), or a numeric matrix of embeddings
#'   (one row per face).
#' @param identity Who each face is: a column of `x` (bare name) or a
#'   vector with one value per row. `"unknown"` is reserved.
#' @param threshold The largest embedding distance at which a face is still
#'   recognised.
#' @param method `"nearest"` (the closest labelled face) or `"centroid"`
#'   (the closest mean face per identity; steadier with many photos per
#'   person).
#' @return A `tv_identities` model: use it with [predict()] or
#'   [augment()]. Rows without an embedding or identity are left out, with
#'   a warning.
#' @export
#' @examplesIf tv_available()
#' photos <- list.files(system.file("extdata", "faces", package = "tidyvision"),
#'                      full.names = TRUE)
#' faces <- face_embeddings(photos)
#' faces$who <- c("Collins", "Biden", "Obama", "Obama", "Obama")
#' known <- faces[faces$who != "Collins", ]
#' fit <- fit_identities(known[-3, ], who)
#' fit
#' predict(fit, faces)
fit_identities <- function(x, identity, threshold = 0.6, method = c("nearest", "centroid")) {
  method <- check_choice(method)
  check_threshold(threshold)
  embedding <- embedding_matrix(x)
  ids <- identity_values(x, rlang::enquo(identity), nrow(embedding))
  keep <- stats::complete.cases(embedding) & !is.na(ids)
  if (!all(keep)) {
    tv_warn("{sum(!keep)} face{?s} without an embedding or identity {?was/were} left out.",
            class = "dropped_faces")
  }
  if (!any(keep)) {
    tv_abort("No face has both an embedding and an identity.", class = "no_faces")
  }
  embedding <- embedding[keep, , drop = FALSE]
  ids <- ids[keep]
  identities <- if (is.factor(ids)) levels(droplevels(ids)) else sort(unique(as.character(ids)))
  ids <- as.character(ids)
  centroids <- rowsum(embedding, factor(ids, identities), reorder = TRUE) / as.vector(table(factor(ids, identities)))
  structure(list(
    embeddings = unname(embedding), identity = ids, identities = identities,
    centroids = unname(centroids), threshold = threshold, method = method
  ), class = "tv_identities")
}

identity_values <- function(x, quo, n, call = caller_env()) {
  data <- if (is.data.frame(x)) x
  ids <- tryCatch(rlang::eval_tidy(quo, data = data), error = function(e) {
    tv_abort(c("Can't find {.arg identity} {.code {rlang::as_label(quo)}}.",
               i = if (!is.null(data)) "Columns: {.field {names(data)}}."),
             class = "missing_column", call = call)
  })
  if (!is.atomic(ids) || length(ids) != n) {
    tv_abort("{.arg identity} must have one value per face ({n}), not {length(ids)}.",
             class = "bad_argument", call = call)
  }
  if (any(ids %in% "unknown")) {
    tv_abort(c("{.val unknown} can't be an identity: it is the answer for faces the model doesn't know.",
               i = "Rename it, or drop those faces."), class = "bad_argument", call = call)
  }
  ids
}

#' Who is in each face?
#'
#' @param object A `tv_identities` model from [fit_identities()].
#' @param new_data A tibble from [face_embeddings()] or [detect_faces()]
#'   (embeddings are then computed), or a matrix of embeddings.
#' @param threshold The model's threshold, or another one to try.
#' @param ... Unused.
#' @return A tibble with one row per row of `new_data`, in order:
#'   `.pred_identity`, a factor whose levels are the known identities and
#'   `"unknown"`, and `.distance`, the distance to the closest known face
#'   (or mean face), whatever the answer. Rows without a face are `NA`.
#' @export
#' @examplesIf tv_available()
#' photos <- list.files(system.file("extdata", "faces", package = "tidyvision"),
#'                      full.names = TRUE)
#' faces <- face_embeddings(photos)
#' fit <- fit_identities(faces[3:4, ], c("Obama", "Obama"))
#' predict(fit, faces)
predict.tv_identities <- function(object, new_data, threshold = object$threshold, ...) {
  rlang::check_dots_empty()
  check_threshold(threshold)
  embedding <- embedding_matrix(new_data)
  if (ncol(embedding) != ncol(object$embeddings)) {
    tv_abort("{.arg new_data} has embeddings of {ncol(embedding)} numbers, the model {ncol(object$embeddings)}.",
             class = "bad_argument")
  }
  nearest <- object$method == "nearest"
  reference <- if (nearest) object$embeddings else object$centroids
  labels <- if (nearest) object$identity else object$identities
  ok <- stats::complete.cases(embedding)
  best <- rep(NA_integer_, nrow(embedding))
  distance <- rep(NA_real_, nrow(embedding))
  if (any(ok)) {
    d <- euclidean(embedding[ok, , drop = FALSE], reference)
    best[ok] <- max.col(-d, ties.method = "first")
    distance[ok] <- d[cbind(seq_len(sum(ok)), best[ok])]
  }
  pred <- ifelse(distance < threshold, labels[best], "unknown")
  tibble::tibble(.pred_identity = factor(pred, levels = c(object$identities, "unknown")),
                 .distance = distance)
}

#' @rdname predict.tv_identities
#' @param x A `tv_identities` model.
#' @return `augment()`: `new_data` (a tibble, grouped if it was) with
#'   `.pred_identity` and `.distance`.
#' @export
augment.tv_identities <- function(x, new_data, ...) {
  pred <- predict(x, new_data, ...)
  if (is.matrix(new_data)) new_data <- tibble::tibble(embedding = new_data)
  if (!inherits(new_data, "tbl_df")) new_data <- tibble::as_tibble(new_data)
  dplyr::bind_cols(new_data, pred)
}

euclidean <- function(a, b) {
  sq <- outer(rowSums(a^2), rowSums(b^2), "+") - 2 * tcrossprod(a, b)
  sqrt(pmax(sq, 0))
}

embedding_matrix <- function(x, arg = rlang::caller_arg(x), call = caller_env()) {
  if (is.data.frame(x) && !"embedding" %in% names(x) && all(box_columns %in% names(x))) {
    x <- face_embeddings(x, verbose = FALSE)
  }
  m <- if (is.data.frame(x)) x[["embedding"]] else x
  if (!is.matrix(m) || !is.numeric(m)) {
    tv_abort(c("{.arg {arg}} must hold face embeddings.",
               i = "Use a tibble from {.fn face_embeddings} or {.fn detect_faces}, or a numeric matrix."),
             class = "bad_argument", call = call)
  }
  m
}

#' @export
format.tv_identities <- function(x, ...) {
  n <- table(factor(x$identity, levels = x$identities))
  rule <- if (x$method == "nearest") "closest labelled face" else "closest mean face"
  shown <- utils::head(paste0(names(n), " (", n, ")"), 20)
  c(
    sprintf("%d %s from %d faces: %s%s", length(n), if (length(n) == 1) "identity" else "identities",
            length(x$identity), paste(shown, collapse = ", "), if (length(n) > 20) ", ..." else ""),
    sprintf("Rule: the %s within a distance of %s; farther faces are \"unknown\".",
            rule, format(x$threshold))
  )
}

#' @export
print.tv_identities <- function(x, ...) {
  print_titled(x, "tidyvision identities")
}
