# The fuzz of test-fuzz.R: odd files made in plain R (no engine needed), the
# bad values every argument is tried with, and what one call ended in.
fuzz_env <- new.env()

# A folder of odd files. `fresh`: made anew, for a call that may write where
# the last one did (a verb that writes into the "empty" folder or makes the
# missing path).
fuzz_files <- function(fresh = FALSE) {
  if (!fresh && !is.null(fuzz_env$files)) return(fuzz_env$files)
  root <- tempfile("tv-fuzz-")
  dir.create(file.path(root, "empty folder"), recursive = TRUE)
  dir.create(file.path(root, "\u00f1and\u00fa"))
  jpg <- system.file("extdata", "images", "animals", "cat.jpg", package = "tidyvision")
  bytes <- readBin(jpg, "raw", file.size(jpg))
  f <- function(name) file.path(root, name)
  file.create(f("zero.jpg"))
  writeLines("this is not an image", f("text.jpg"))
  writeBin(bytes[seq_len(length(bytes) %/% 2)], f("truncated.jpg"))
  writeBin(bomb_png(), f("bomb.png"))
  file.copy(jpg, f("\u00f1and\u00fa/\u00e9.jpg"))
  fuzz_env$files <- list(
    missing = f("no such file.jpg"), folder = f("empty folder"), zero_byte = f("zero.jpg"),
    text_as_jpg = f("text.jpg"), truncated_jpg = f("truncated.jpg"), bomb_png = f("bomb.png"),
    unicode = f("\u00f1and\u00fa/\u00e9.jpg")
  )
  fuzz_env$files
}

# A valid PNG header (with its CRC) claiming 30000 x 30000 pixels: past
# Pillow's decompression-bomb limit, so it must never be decoded.
bomb_png <- function(width = 30000L, height = 30000L) {
  be32 <- function(x) writeBin(as.integer(x), raw(), size = 4, endian = "big")
  ihdr <- c(charToRaw("IHDR"), be32(width), be32(height), as.raw(c(8, 2, 0, 0, 0)))
  c(as.raw(c(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)), be32(13), ihdr, be32(crc32(ihdr)),
    be32(0), charToRaw("IEND"), be32(crc32(charToRaw("IEND"))))
}

crc32 <- function(bytes) {
  crc <- bitwNot(0L)
  for (b in as.integer(bytes)) {
    crc <- bitwXor(crc, b)
    for (k in 1:8) {
      low <- bitwAnd(crc, 1L)
      crc <- bitwAnd(bitwShiftR(crc, 1L), 0x7fffffffL)
      if (low == 1L) crc <- bitwXor(crc, -306674912L)  # 0xEDB88320
    }
  }
  bitwNot(crc)
}

# The bad values: plain ones for every argument, odd files for the
# arguments that take paths or images.
fuzz_values <- function(paths = FALSE, fresh = FALSE) {
  plain <- list(null = NULL, na = NA, number = -1.5, string = "x", empty_tibble = tibble::tibble(),
                wrong_tibble = tibble::tibble(a = 1:2))
  if (!paths) return(plain)
  c(plain, fuzz_files(fresh))
}

# What `fn(args)` ended in: an error (its classes), or a value, with the
# warnings it gave on the way.
fuzz_run <- function(fn, args) {
  warnings <- list()
  res <- tryCatch(
    withCallingHandlers(
      # values inline, as a user would type them: NULL is `NULL`, a column is its name
      list(value = do.call(fn, args), error = NULL),
      warning = function(w) {
        warnings[[length(warnings) + 1]] <<- w
        invokeRestart("muffleWarning")
      },
      message = function(m) invokeRestart("muffleMessage")
    ),
    error = function(e) list(value = NULL, error = e)
  )
  res$warnings <- warnings
  res
}

# A classed tidyvision error: `tidyvision_error` and a `tidyvision_error_<kind>`.
is_classed_error <- function(e, class = NULL) {
  if (is.null(e)) return(FALSE)
  kinds <- grep("^tidyvision_error_", class(e), value = TRUE)
  if (!inherits(e, "tidyvision_error") || length(kinds) == 0) return(FALSE)
  is.null(class) || paste0("tidyvision_error_", class) %in% kinds
}

warnings_classed <- function(warnings) {
  all(vapply(warnings, function(w) any(grepl("^tidyvision_warning_", class(w))), logical(1)))
}

# A folder this process can't write in: read-only for a user, immutable
# (chattr +i) for root, who ignores permissions. Skips where neither works.
local_unwritable_dir <- function(env = parent.frame()) {
  dir <- withr::local_tempdir(.local_envir = env)
  Sys.chmod(dir, "0555")
  withr::defer(Sys.chmod(dir, "0755"), envir = env)
  if (file.create(file.path(dir, "probe"), showWarnings = FALSE)) {
    unlink(file.path(dir, "probe"))
    if (Sys.which("chattr") == "" || system2("chattr", c("+i", shQuote(dir)), stderr = FALSE) != 0) {
      testthat::skip("No way to make a folder unwritable here.")
    }
    withr::defer(system2("chattr", c("-i", shQuote(dir))), envir = env, priority = "first")
  }
  dir
}
