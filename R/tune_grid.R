#' Grid search over fine-tuning hyperparameters
#'
#' Step 10 of the book: fit one classifier per combination and compare them
#' on the validation images. Any argument of [fine_tune()] may be a column of
#' `grid`. Work is shared between combinations: the images are decoded once,
#' and with `train_layers = "head"` the frozen body runs once for the whole
#' grid, so the book's 12-combination grid takes seconds. A combination that
#' fails is recorded in `.notes` and the search goes on.
#'
#' Select on validation metrics only; keep the `test` images for the one
#' final estimate of the chosen model, as the book advises.
#'
#' The tune package has a `tune_grid()` too. When `images` is not a data
#' frame (a tidymodels workflow or model specification) and tune is
#' installed, the call goes to `tune::tune_grid()`, so attaching tidyvision
#' after tune breaks no tidymodels code.
#'
#' @inheritParams fine_tune
#' @param grid A data frame with one row per combination and columns named
#'   after [fine_tune()] arguments, e.g. from `expand.grid()`; or a named list
#'   of values, expanded to every combination.
#' @param ... Other [fine_tune()] arguments, the same for every combination.
#' @param verbose Show a progress bar over the combinations.
#' @return A `tv_grid` tibble: the grid columns, the best epoch's validation
#'   `accuracy, precision, recall, f1, loss`, `best_epoch`, `seconds`, a
#'   `history` list-column and `.notes` (`NA`, or the error of a failed
#'   combination). Use `autoplot()` and [select_best()].
#' @export
#' @examplesIf tv_available()
#' imgs <- image_files(system.file("extdata", "images", package = "tidyvision"))
#' grid <- list(learning_rate = c(0.01, 0.001), momentum = c(0.9, 0.7))
#' res <- tune_grid(imgs, grid = grid, epochs = 3, train_layers = "head")
#' res
#' select_best(res)
tune_grid <- function(images, label = label, grid, epochs = 10, ..., verbose = tv_verbose()) {
  if (!is.data.frame(images) && requireNamespace("tune", quietly = TRUE)) {
    call <- sys.call()
    call[[1]] <- quote(tune::tune_grid)
    return(eval(call, parent.frame()))
  }
  check_images(images)
  check_count(epochs)
  check_flag(verbose)
  grid <- as_grid(grid)
  label_col <- label_name(images, rlang::enquo(label))
  check_fixed_args(rlang::enquos(...))
  fixed <- list(...)
  # modifyList() would drop a NULL and quietly train with fine_tune()'s default
  unset <- names(fixed)[vapply(fixed, is.null, logical(1))]
  if (length(unset)) {
    tv_abort("{.arg {unset}} can't be NULL; leave {?it/them} out for {.fn fine_tune}'s default.",
             class = "bad_argument")
  }
  clash <- intersect(names(fixed), names(grid))
  if (length(clash)) {
    tv_abort("{.arg {clash}} {?is/are} both a grid column and a fixed argument.", class = "bad_argument")
  }
  images <- grid_images(images, label_col, seed = fixed$seed %||% 1)
  # The bar belongs to this frame, not to lapply's function (see progress_callback()).
  tick <- progress_callback(verbose, "Grid search") %||% function(...) NULL
  tick(0, nrow(grid))
  rows <- lapply(seq_len(nrow(grid)), function(i) {
    args <- utils::modifyList(list(images, label = label_col, epochs = epochs, verbose = FALSE),
                              c(as.list(grid[i, , drop = FALSE]), fixed))
    row <- grid_row(args)
    tick(i, nrow(grid))
    row
  })
  out <- tibble::as_tibble(cbind(tibble::as_tibble(grid), vctrs::vec_rbind(!!!rows)))
  failed <- !is.na(out$.notes)
  # the same bad fixed argument (`...`) fails every combination: that is the user's error, not a result
  if (all(failed)) {
    tv_abort(c("Every combination failed; nothing was trained:", bullets_of(unique(out$.notes))),
             class = "grid_failed")
  }
  if (any(failed)) {
    tv_warn(c("{sum(failed)} of {nrow(out)} combination{?s} failed; see {.field .notes}:",
              bullets_of(unique(out$.notes[failed]))), class = "grid_failed")
  }
  structure(out, class = c("tv_grid", class(out)))
}

as_grid <- function(grid, call = caller_env()) {
  if (is.list(grid) && !is.data.frame(grid)) grid <- expand.grid(grid, stringsAsFactors = FALSE)
  if (!is.data.frame(grid) || nrow(grid) == 0 || is.null(names(grid))) {
    tv_abort("{.arg grid} must be a data frame or a named list of values.", class = "bad_argument", call = call)
  }
  unknown <- setdiff(names(grid), tunable_args())
  if (length(unknown)) {
    tv_abort(c("{.arg grid} has column{?s} that {?is/are} not {.fn fine_tune} argument{?s}: {.field {unknown}}.",
               i = "Use e.g. {.field learning_rate}, {.field momentum}, {.field batch_size}."),
             class = "bad_argument", call = call)
  }
  grid
}

# fine_tune() arguments a grid or tune_grid()'s `...` may set.
tunable_args <- function() setdiff(fine_tune_args(), c("images", "label", "verbose"))

# Checked once here: per combination, a misspelt argument would only fill `.notes`.
check_fixed_args <- function(dots, call = caller_env()) {
  known <- nzchar(rlang::names2(dots)) & rlang::names2(dots) %in% tunable_args()
  check_dots_known(dots[!known], c("images", "label", "grid", "epochs", tunable_args(), "verbose"),
                   "tune_grid", call = call)
}

# The labelled rows, split once so that every combination trains and
# validates on the same images.
grid_images <- function(images, label_col, seed) {
  images <- labelled_rows(images, label_col)
  if ("split" %in% names(images)) images$split <- normalize_split(images$split)
  if (!"split" %in% names(images) || all(is.na(images$split))) {
    images <- split_images(images, prop = c(train = 0.8, val = 0.2),
                           strata = tidyselect::all_of(label_col), seed = seed)
  }
  images
}

grid_row <- function(args) {
  t0 <- proc.time()[["elapsed"]]
  fit <- tryCatch(suppressWarnings(do.call(fine_tune, args)), error = function(e) e)
  seconds <- proc.time()[["elapsed"]] - t0
  if (inherits(fit, "error")) {
    return(tibble::tibble(accuracy = NA_real_, precision = NA_real_, recall = NA_real_,
                          f1 = NA_real_, loss = NA_real_, best_epoch = NA_integer_,
                          seconds = seconds, history = list(NULL),
                          .notes = cli::ansi_strip(conditionMessage(fit))))
  }
  best <- best_val_row(fit)
  unlink(fit$weights)
  tibble::tibble(accuracy = best$accuracy, precision = best$precision, recall = best$recall,
                 f1 = best$f1, loss = best$loss, best_epoch = fit$best_epoch, seconds = seconds,
                 history = list(fit$history), .notes = NA_character_)
}

#' Pick the best combination of a grid search
#'
#' A generic, as `tune::select_best()` is: when tune is installed, its
#' results go to tune's method, and `tune::select_best()` of a `tv_grid`
#' comes here, whichever package was attached last.
#'
#' @param x A `tv_grid` from [tune_grid()].
#' @param metric The validation metric to maximise (`"loss"` is minimised).
#' @param ... Unused.
#' @return The grid columns of the best row, as a one-row tibble (ties: the
#'   first row), ready for `do.call(fine_tune, c(list(images), best))`.
#' @export
#' @examplesIf tv_available()
#' imgs <- image_files(system.file("extdata", "images", package = "tidyvision"))
#' res <- tune_grid(imgs, grid = list(learning_rate = c(0.01, 0.001)), epochs = 2,
#'                  train_layers = "head")
#' select_best(res, "f1")
select_best <- function(x, ...) UseMethod("select_best")

#' @export
select_best.default <- function(x, ...) {
  if (requireNamespace("tune", quietly = TRUE)) return(tune::select_best(x, ...))
  tv_abort("{.fn select_best} needs a grid from {.fn tune_grid}, not {.obj_type_friendly {x}}.",
           class = "bad_argument")
}

#' @rdname select_best
#' @export
select_best.tv_grid <- function(x, metric = c("accuracy", "f1", "precision", "recall", "loss"), ...) {
  metric <- check_choice(metric)
  score <- if (metric == "loss") -x[[metric]] else x[[metric]]
  if (all(is.na(score))) {
    tv_abort("No combination has a {metric}: every one failed (see {.field .notes}).", class = "grid_failed")
  }
  best <- which.max(score)
  tibble::as_tibble(x[best, grid_columns(x), drop = FALSE])
}

grid_columns <- function(x) {
  setdiff(names(x), c("accuracy", "precision", "recall", "f1", "loss", "best_epoch",
                      "seconds", "history", ".notes"))
}

#' Plot a grid search
#'
#' Validation accuracy and F1 against each hyperparameter of the grid, one
#' panel per grid column. Numeric columns get numeric axes ticked at the
#' values tried (a log axis when a column spans a factor of 10 or more, as
#' learning rates do) and a line through the mean over the other columns;
#' with a text column (e.g. `resize`) every axis is discrete.
#'
#' @param object A `tv_grid`.
#' @param ... Unused.
#' @return A ggplot.
#' @export
#' @examplesIf tv_available()
#' imgs <- image_files(system.file("extdata", "images", package = "tidyvision"))
#' res <- tune_grid(imgs, grid = list(learning_rate = c(0.01, 0.001)), epochs = 2,
#'                  train_layers = "head")
#' ggplot2::autoplot(res)
autoplot.tv_grid <- function(object, ...) {
  params <- grid_columns(object)
  numeric <- all(vapply(params, function(p) is.numeric(object[[p]]), logical(1)))
  long <- do.call(rbind, lapply(params, function(p) {
    value <- if (numeric) object[[p]] else format(object[[p]], trim = TRUE)
    rbind(data.frame(parameter = p, value = value, metric = "accuracy", estimate = object$accuracy),
          data.frame(parameter = p, value = value, metric = "f1", estimate = object$f1))
  }))
  # text values in their natural order (4 before 16), not alphabetical
  if (!numeric) long$value <- factor(long$value, unique(unlist(lapply(params, function(p) {
    format(sort(unique(object[[p]])), trim = TRUE)
  }))))
  ggplot2::ggplot(long, ggplot2::aes(.data$value, .data$estimate, colour = .data$metric)) +
    grid_geoms(numeric) +
    grid_x_scale(long, numeric) +
    ggplot2::facet_wrap(~parameter, scales = "free_x") +
    ggplot2::labs(x = "Hyperparameter value", y = "Validation (best epoch)", colour = "Metric") +
    ggplot2::theme_minimal() +
    ggplot2::theme(panel.spacing.x = ggplot2::unit(2, "lines"))
}

# Numeric hyperparameters: points and the mean over the other columns as a
# line. Text ones (e.g. resize): dodged points at each value.
grid_geoms <- function(numeric) {
  if (!numeric) {
    return(ggplot2::geom_point(position = ggplot2::position_dodge(width = 0.3), size = 2, na.rm = TRUE))
  }
  list(ggplot2::geom_point(size = 2, alpha = 0.7, na.rm = TRUE),
       ggplot2::stat_summary(ggplot2::aes(group = .data$metric), fun = mean, geom = "line", na.rm = TRUE))
}

# Learning rates are tried a decade apart: when a column spans a factor of
# 10 or more, a log scale spreads its values out (one scale for all panels).
grid_x_scale <- function(long, numeric) {
  if (!numeric) return(ggplot2::scale_x_discrete())
  spans <- tapply(long$value, long$parameter, function(v) max(v) / min(v))
  by_decade <- all(long$value > 0, na.rm = TRUE) && any(spans >= 10, na.rm = TRUE)
  tried <- sort(unique(long$value))
  # ticks at the values tried, so each one can be read off the axis
  breaks <- function(limits) tried[tried >= limits[1] & tried <= limits[2]]
  labels <- function(b) vapply(b, format, "", scientific = FALSE, drop0trailing = TRUE, trim = TRUE)
  if (by_decade) return(ggplot2::scale_x_log10(breaks = breaks, labels = labels))
  ggplot2::scale_x_continuous(breaks = breaks, labels = labels)
}
