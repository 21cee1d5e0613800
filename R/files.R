# Files the verbs write: where copies go, and the checks before anything is
# written (nothing a user saved is replaced without `overwrite = TRUE`).

# Where copies of `paths` go in `dir`: the same sub-folders below the
# images' common parent folder, so two images with one name never collide.
# Missing files (never written) don't count towards that parent.
mirror_paths <- function(paths, dir) {
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
