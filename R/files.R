# Files the verbs write: where copies go, and the checks before anything is
# written (nothing a user saved is replaced without `overwrite = TRUE`).

# Where copies of `paths` go in `dir`: the same sub-folders below the
# images' common parent folder, so two images with one name never collide.
# Missing files (never written) don't count towards that parent.
mirror_paths <- function(paths, dir) {
  if (length(paths) == 0) return(character())
  full <- expand_paths(paths)
  present <- file.exists(full)
  root <- common_parent(dirname(full[if (any(present)) present else TRUE]))
  inside <- startsWith(full, paste0(sub("/$", "", root), "/"))
  file.path(expand_paths(dir), ifelse(inside, substring(full, nchar(root) + 2), basename(full)))
}

common_parent <- function(dirs) {
  parts <- strsplit(unique(dirs), "/", fixed = TRUE)
  first <- parts[[1]]
  k <- 0
  while (k < min(lengths(parts)) && all(vapply(parts, `[`, "", k + 1) == first[k + 1])) k <- k + 1
  paste(first[seq_len(k)], collapse = "/")
}

check_outputs <- function(inputs, outputs, overwrite, call = caller_env()) {
  if (anyDuplicated(outputs)) {
    tv_abort(c("Two faces or images would be written to the same file:",
               bullets_of(unique(outputs[duplicated(outputs)]))),
             class = "bad_argument", call = call)
  }
  same <- outputs %in% expand_paths(inputs)
  if (any(same)) {
    tv_abort(c("{.arg dir} would replace the images themselves:", bullets_of(outputs[same]),
               i = "Write the copies to another folder."), class = "bad_argument", call = call)
  }
  existing <- outputs[file.exists(outputs)]
  if (length(existing) > 0 && !overwrite) {
    tv_abort(c("{length(existing)} file{?s} already exist{?s/} in {.arg dir}; nothing was written:",
               bullets_of(existing), i = "Use {.code overwrite = TRUE} to replace them, or another {.arg dir}."),
             class = "exists", call = call)
  }
}

abort_not_writable <- function(folder, call = caller_env()) {
  tv_abort(c("Can't write in {.path {folder}}.",
             i = "Check that the folder is writable (not read-only or locked), or choose another."),
           class = "not_writable", call = call)
}

check_output_dir <- function(dir, call = caller_env()) {
  if (!rlang::is_string(dir) || is.na(dir) || !nzchar(dir)) {
    tv_abort("{.arg dir} must be a folder path, not {.obj_type_friendly {dir}}.",
             class = "bad_argument", call = call)
  }
  if (file.exists(dir) && !dir.exists(dir)) {
    tv_abort("{.arg dir} must be a folder, but {.path {dir}} is a file.",
             class = "not_a_directory", call = call)
  }
}

# Temporaries written beside their target and renamed into place. The name
# records the writing process (`.tidyvision-<kind>-<pid>@<host>-<random>`), so
# a later write can tell a crash's leftover (its process is gone) from a
# write another process is doing right now.
temp_beside <- function(path, kind, fileext = "") {
  host <- gsub("[^A-Za-z0-9.]", "", Sys.info()[["nodename"]])
  tempfile(paste0(".tidyvision-", kind, "-", Sys.getpid(), "@", host, "-"),
           tmpdir = dirname(path), fileext = fileext)
}

TEMP_PATTERN <- "^[.]tidyvision-(save|old|csv)-"
# How long a temporary whose writer can't be asked (another machine on a
# shared drive, or a name from before the pid was recorded) must sit
# untouched before it counts as left behind. Saves take seconds.
STALE_AFTER_SECS <- 3600

# Remove our own temporaries in `folder` that a crashed or killed write left
# behind; never one whose writer is still alive. Returns the removed paths.
clean_stale_temps <- function(folder) {
  found <- list.files(folder, pattern = TEMP_PATTERN, all.files = TRUE, full.names = TRUE)
  stale <- found[vapply(found, temp_is_stale, logical(1))]
  unlink(stale, recursive = TRUE, force = TRUE)
  invisible(stale)
}

temp_is_stale <- function(path) {
  m <- regmatches(basename(path), regexec("^[.]tidyvision-[a-z]+-([0-9]+)@(.*)-[0-9a-f]+", basename(path)))[[1]]
  here <- gsub("[^A-Za-z0-9.]", "", Sys.info()[["nodename"]])
  if (length(m) == 3 && identical(m[[3]], here)) {
    alive <- pid_alive(as.integer(m[[2]]))
    if (!is.na(alive)) return(!alive)
  }
  last_touched(path) < Sys.time() - STALE_AFTER_SECS
}

# TRUE/FALSE on systems that can tell; NA where they can't.
pid_alive <- function(pid) {
  if (.Platform$OS.type == "windows" || is.na(pid)) return(NA)
  if (pid == Sys.getpid()) return(TRUE)
  stat <- file.path("/proc", pid, "stat")
  if (dir.exists("/proc/self")) {
    if (!file.exists(stat)) return(FALSE)
    # a killed process its parent hasn't reaped yet is a zombie: gone
    state <- tryCatch(strsplit(sub("^.*[)] ", "", readLines(stat, warn = FALSE)[[1]]), " ")[[1]][[1]],
                      error = function(e) "")
    return(!identical(state, "Z"))
  }
  isTRUE(tools::pskill(pid, 0L))
}

last_touched <- function(path) {
  inside <- list.files(path, recursive = TRUE, all.files = TRUE, full.names = TRUE)
  max(file.info(c(path, inside))$mtime, na.rm = TRUE)
}
