# Fitted objects carry their weights as raw bytes, so a fit kept by saveRDS(),
# save() or knitr's cache works in a new R session. The engine reads weights
# from a file: the one the object names while it exists, else a copy of the
# bytes restored, by content, into this session's temporary folder.

# The bytes of a weights file and their checksum, for the object to carry
# (NULL for a file that is not there).
carry_weights <- function(path) {
  if (!rlang::is_string(path) || !file.exists(path)) return(NULL)
  list(bytes = readBin(path, "raw", file.size(path)), md5 = unname(tools::md5sum(path)),
       ext = tools::file_ext(path))
}

# A live weights file for `x` (a classifier or detector): `x$weights`, or its
# bytes restored. NULL when neither is there.
live_weights <- function(x) {
  if (!is.null(x$weights) && file.exists(x$weights)) return(x$weights)
  kept <- x$carried
  if (is.null(kept$bytes)) return(NULL)
  path <- file.path(tempdir(), paste0("tidyvision-", kept$md5, ".", kept$ext))
  if (!file.exists(path) || !identical(unname(tools::md5sum(path)), kept$md5)) {
    tmp <- tempfile("tidyvision-restore-", fileext = paste0(".", kept$ext))
    writeBin(kept$bytes, tmp)
    if (!identical(unname(tools::md5sum(tmp)), kept$md5) || !file.rename(tmp, path)) {
      unlink(tmp)
      return(NULL)
    }
  }
  path
}
