# The one way into the Python engine. Finds the environment, imports the
# engine on first use, and turns Python errors into classed R errors.

tv_envname <- function() {
  Sys.getenv("TIDYVISION_ENV", getOption("tidyvision.envname", "r-tidyvision"))
}

# Where the virtualenv lives. reticulate 1.28 only reads WORKON_HOME; newer
# versions read RETICULATE_VIRTUALENV_ROOT, so both are honoured here.
tv_env_path <- function(envname = tv_envname()) {
  if (grepl("[/\\\\]", envname)) return(normalizePath(envname, mustWork = FALSE))
  root <- Sys.getenv("RETICULATE_VIRTUALENV_ROOT", Sys.getenv("WORKON_HOME", "~/.virtualenvs"))
  file.path(normalizePath(root, mustWork = FALSE), envname)
}

env_python <- function(path) {
  file.path(path, if (.Platform$OS.type == "windows") "Scripts/python.exe" else "bin/python")
}

# Does the interpreter tidyvision would use exist? Never starts Python.
python_configured <- function(envname = tv_envname()) {
  nzchar(Sys.getenv("RETICULATE_PYTHON")) ||
    reticulate::py_available(initialize = FALSE) ||
    file.exists(env_python(tv_env_path(envname)))
}

python_missing <- function(call, detail = NULL, .envir = parent.frame()) {
  tv_abort(c(
    "The Python engine of tidyvision is not installed.",
    x = detail,
    i = "Run {.run tidyvision::install_tidyvision()} once, then restart R."
  ), class = "python_missing", call = call, .envir = .envir)
}

#' Is the Python engine ready to use?
#'
#' `TRUE` when the Python environment that tidyvision uses exists and has the
#' engine's core modules. Used in examples and tests; it starts Python if the
#' environment exists.
#'
#' @return `TRUE` or `FALSE`.
#' @export
#' @examples
#' tv_available()
tv_available <- function() {
  tryCatch({
    tv_engine()
    TRUE
  }, tidyvision_error = function(e) FALSE)
}

tv_engine <- function(call = caller_env()) {
  if (!reticulate::py_available(initialize = FALSE)) {
    envname <- tv_envname()
    if (!python_configured(envname)) {
      python_missing(call, "No Python environment {.val {envname}} was found.")
    }
    if (!nzchar(Sys.getenv("RETICULATE_PYTHON"))) {
      reticulate::use_virtualenv(tv_env_path(envname), required = TRUE)
    }
  }
  for (module in c("numpy", "PIL")) {
    if (!reticulate::py_module_available(module)) {
      python_missing(call, "Python {.path {reticulate::py_exe()}} has no {.pkg {module}}.")
    }
  }
  engine
}

# Call `fun` ("module.function") of the engine with `...`. NumPy arrays in
# the result arrive as R vectors and arrays (see bridge.py).
engine_call <- function(fun, ..., call = caller_env()) {
  eng <- tv_engine(call)
  withCallingHandlers(
    from_py(eng$bridge$call(fun, ...)),
    error = function(e) rethrow_python(e, call)
  )
}

from_py <- function(x) {
  if (!is.list(x)) return(x)
  if (!is.null(x[["__ndarray__"]])) return(ndarray_from_py(x))
  for (i in seq_along(x)) {
    if (is.list(x[[i]])) x[i] <- list(from_py(x[[i]]))
  }
  x
}

ndarray_from_py <- function(x) {
  dim <- as.integer(unlist(x$dim))
  n <- prod(dim)
  v <- switch(x[["__ndarray__"]],
    uint8 = as.integer(x$data),
    int = readBin(x$data, "integer", n = n, size = 4, endian = "little"),
    double = readBin(x$data, "double", n = n, size = 8, endian = "little")
  )
  if (length(dim) == 1) return(v)
  # NumPy is row-major, R column-major.
  aperm(array(v, dim = rev(dim)), rev(seq_along(dim)))
}

# A numeric matrix for the engine: float32 bytes and a shape, rebuilt as a
# NumPy array by bridge.py's from_r() (reticulate 1.28 can't hand an R
# matrix to NumPy 2). NA becomes NaN.
py_array <- function(m) {
  m <- as.matrix(m)
  list(`__ndarray__` = "float32", dim = as.list(dim(m)),
       data = writeBin(as.vector(t(m)), raw(), size = 4, endian = "little"))
}

rethrow_python <- function(e, call) {
  if (inherits(e, "tidyvision_error") || inherits(e, "interrupt")) return()
  err <- reticulate::py_last_error()
  if (is.null(err) || !grepl(err$type, conditionMessage(e), fixed = TRUE)) return()
  msg <- trimws(err$value)
  if (identical(err$type, "TidyvisionError")) {
    kind <- reticulate::py_get_attr(attr(err, "exception"), "kind")
    tv_abort("{msg}", class = reticulate::py_to_r(kind), call = call)
  }
  if (err$type %in% c("ModuleNotFoundError", "ImportError")) {
    python_missing(call, "{msg}")
  }
  if (identical(err$type, "PermissionError")) {
    tv_abort(c("The engine was refused access to a file.", x = "{msg}",
               i = "Check the file's and its folder's permissions, or use another folder."),
             class = "permission_denied", call = call)
  }
  if (identical(err$type, "KeyboardInterrupt")) {
    tv_abort("Interrupted; nothing was written.", class = "interrupted", call = call)
  }
  tv_abort(
    c("The Python engine failed: {err$type}.", x = "{msg}",
      i = "This is probably a bug in tidyvision; please report it with the traceback."),
    class = "engine", call = call, parent = e
  )
}

# Python columns arrive as lists with NULL for None; make them vectors.
col_of <- function(x, type = c("chr", "int", "dbl", "lgl")) {
  type <- match.arg(type)
  na <- switch(type, chr = NA_character_, int = NA_integer_, dbl = NA_real_, lgl = NA)
  if (!is.list(x)) {
    return(switch(type, chr = as.character(x), int = as.integer(x),
                  dbl = as.double(x), lgl = as.logical(x)))
  }
  vapply(x, function(v) if (is.null(v)) na else as.vector(v, typeof(na)), na,
         USE.NAMES = FALSE)
}

# A progress callback for Python: `progress(done, total, label)` ticks a cli
# bar that lives as long as the calling function; a new `label` (a new phase:
# decoding, features, training) starts a new bar. Progress is decoration, so
# nothing here may abort the computation it reports on: any error is
# swallowed, and a bar that is gone is opened again on the next tick.
progress_callback <- function(verbose, name, .envir = parent.frame()) {
  if (!isTRUE(verbose)) return(NULL)
  if (knitting()) return(progress_lines(name))
  bar <- list(id = NULL, label = NULL, finished = FALSE, start = Sys.time())
  tick <- function(done, total, label) {
    same <- identical(label, bar$label)
    # the engine may tick a finished phase once more (at the end of an epoch)
    if (same && bar$finished && done >= total) return()
    if (is.null(bar$id) || !same || bar$finished) {
      # auto_terminate = FALSE: the bar is closed below, once its 100% is drawn
      bar <<- list(id = cli::cli_progress_bar(label, total = total, auto_terminate = FALSE, .envir = .envir),
                   label = label, finished = FALSE, start = Sys.time())
    }
    final <- done >= total
    cli::cli_progress_update(id = bar$id, set = done, total = total, force = final && bar_due(bar$start),
                             .envir = .envir)
    if (final) {
      bar$finished <<- TRUE
      cli::cli_progress_done(id = bar$id, .envir = .envir)
    }
  }
  function(done, total, label = NULL, ...) {
    label <- label %||% name
    tryCatch(tick(done, total, label), error = function(e) {
      bar$id <<- NULL  # closed or broken: open a fresh bar and try once more
      tryCatch(tick(done, total, label), error = function(e) bar$id <<- NULL)
    })
    invisible(TRUE)
  }
}

# Progress is shown by default where someone watches: at the console, and
# while knitting (as lines on the console, see progress_lines()).
tv_verbose <- function() interactive() || knitting()

knitting <- function() isTRUE(getOption("knitr.in.progress"))

# While knitting, a bar would be drawn into the document; instead, lines go
# to the console (stderr, which knitr does not capture): one per `note` the
# engine sends (each epoch), one per tenth of the work, and one at the end.
progress_lines <- function(name) {
  state <- list(label = NULL, shown = -1, start = Sys.time())
  function(done, total, label = NULL, note = NULL, ...) {
    label <- label %||% name
    if (!identical(label, state$label)) state <<- list(label = label, shown = -1, start = Sys.time())
    tenth <- floor(10 * done / max(total, 1))
    if (is.null(note) && tenth <= state$shown && done < total) return(invisible(TRUE))
    state$shown <<- max(state$shown, tenth)
    elapsed <- format_seconds(as.numeric(difftime(Sys.time(), state$start, units = "secs")))
    cat(sprintf("%s: %s of %s%s (%s)\n", label, format_count(done), format_count(total),
                if (!is.null(note)) paste0(", ", note) else "", elapsed), file = stderr())
    invisible(TRUE)
  }
}

# A phase that ran past cli's `show_after` ends on a drawn 100%, even when
# cli's throttle skipped its last ticks; a shorter one shows nothing, as cli intends.
bar_due <- function(start) {
  difftime(Sys.time(), start, units = "secs") >= getOption("cli.progress_show_after", 2)
}
