#' Export a corpus run for Stata or SPSS, with a codebook
#'
#' Writes [read_corpus()] as a Stata `.dta` or SPSS `.sav` file (through
#' the haven package), with a variable label on every column, and a codebook
#' beside it (`corpus_dta_codebook.md` for `corpus.dta`, in Markdown) that gives each variable's
#' meaning, what wrote the run (task, model fingerprint, tidyvision version)
#' and when. Column names become names both programs accept: `.pred_class`
#' is `pred_class`, `.pred_protest` is `pred_protest`. Classes become
#' labelled integers, and logical columns 0/1 with `no`/`yes` labels. Both
#' files are written through temporaries renamed into place, so an
#' interrupted export leaves no half-written file.
#'
#' @inheritParams read_corpus
#' @param file The `.dta` or `.sav` file to write.
#' @param overwrite Replace an existing `file` (and its codebook).
#' @param codebook Also write the codebook.
#' @return `file`, invisibly.
#' @seealso [write_corpus_csv()].
#' @export
#' @examplesIf tv_available() && requireNamespace("haven", quietly = TRUE)
#' out <- file.path(tempdir(), "example-tags.sqlite")
#' classify_folder("imagenet", system.file("extdata", "images", "tools", package = "tidyvision"),
#'                 out, overwrite = TRUE, top_k = 2)
#' dta <- write_corpus_stata(out, tempfile(fileext = ".dta"))
#' haven::read_dta(dta)
#' cat(readLines(sub("[.]dta$", "_dta_codebook.md", dta)), sep = "\n")
write_corpus_stata <- function(output, file, overwrite = FALSE, codebook = TRUE) {
  write_corpus_haven(output, file, overwrite, codebook, "stata", rlang::current_env())
}

#' @rdname write_corpus_stata
#' @export
write_corpus_spss <- function(output, file, overwrite = FALSE, codebook = TRUE) {
  write_corpus_haven(output, file, overwrite, codebook, "spss", rlang::current_env())
}

HAVEN_FORMATS <- list(stata = list(ext = "dta", writer = "write_dta", program = "Stata"),
                      spss = list(ext = "sav", writer = "write_sav", program = "SPSS"))

write_corpus_haven <- function(output, file, overwrite, codebook, format, call) {
  spec <- HAVEN_FORMATS[[format]]
  if (!requireNamespace("haven", quietly = TRUE)) {
    tv_abort(c("Writing {spec$program} files needs the {.pkg haven} package.",
               i = "Install it (on Debian: {.code apt-get install r-cran-haven})."),
             class = "missing_package", call = call)
  }
  check_flag(overwrite, call = call)
  check_flag(codebook, call = call)
  check_csv_file(file, overwrite, call, example = paste0("corpus.", spec$ext))
  book <- codebook_path(file)
  if (codebook) check_csv_file(book, overwrite, call)
  rows <- suppressMessages(corpus_read(output, FALSE, call))
  meta <- corpus_meta_of(output, call)
  data <- haven_columns(rows)
  write_atomically(file, spec$ext, call, function(tmp) getExportedValue("haven", spec$writer)(data, tmp))
  if (codebook) {
    lines <- codebook_lines(data, names(rows), meta, spec$program, basename(file))
    write_atomically(book, "md", call, function(tmp) writeLines(lines, tmp, useBytes = TRUE))
  }
  invisible(file)
}

# corpus.dta -> corpus_dta_codebook.md, so a .dta and a .sav of one run keep their own.
codebook_path <- function(file) {
  paste0(tools::file_path_sans_ext(file), "_", tools::file_ext(file), "_codebook.md")
}

# Write through a temporary beside `file`, renamed into place.
write_atomically <- function(file, ext, call, write) {
  file <- expand_paths(file)
  clean_stale_temps(dirname(file))
  tmp <- temp_beside(file, "csv", paste0(".", ext))
  on.exit(unlink(tmp), add = TRUE)
  ok <- tryCatch({
    write(tmp)
    file.rename(tmp, file)
  }, error = function(e) FALSE)
  if (!isTRUE(ok)) {
    tv_abort(c("Can't write {.path {file}}.", i = "Check that its folder is writable and the disk has space."),
             class = "write_failed", call = call)
  }
}

# The rows with names Stata and SPSS accept and a label on every variable.
haven_columns <- function(rows) {
  out <- lapply(names(rows), function(name) {
    x <- rows[[name]]
    if (is.logical(x)) x <- haven::labelled(as.integer(x), c(no = 0L, yes = 1L))
    attr(x, "label") <- variable_label(name)
    x
  })
  stats::setNames(tibble::as_tibble(stats::setNames(out, seq_along(out))), program_names(names(rows)))
}

# ".pred_class" -> "pred_class": letters, digits and _ only, starting with a
# letter, at most 32 characters (Stata's limit), unique.
program_names <- function(x) {
  x <- gsub("[^A-Za-z0-9_]", "_", sub("^[.]+", "", x))
  x <- ifelse(grepl("^[A-Za-z]", x), x, paste0("v", x))
  make.unique(substr(x, 1, 32), sep = "_")
}

VARIABLE_LABELS <- c(
  path = "Image file", .pred_class = "Predicted class", problem = "Why the image could not be read",
  missing = "The file was gone at the last run", tag = "Tag", confidence = "Confidence (0 to 1)",
  source = "Tagger", object = "Object number within the image (most confident first)",
  class = "Detected class", face = "Face number within the image", score = "Detector score",
  xmin = "Box left edge (pixels)", ymin = "Box top edge (pixels)", xmax = "Box right edge (pixels)",
  ymax = "Box bottom edge (pixels)", image_width = "Image width (pixels)",
  image_height = "Image height (pixels)", trained = "The image (or a copy) trained or validated the model"
)

variable_label <- function(name) {
  if (startsWith(name, ".pred_") && name != ".pred_class") {
    return(paste0("Predicted probability of class ", substring(name, 7)))
  }
  VARIABLE_LABELS[[name]] %||% name
}

# The meta table of the output (of its first shard file).
corpus_meta_of <- function(output, call) {
  read_corpus_file(corpus_output_files(output, call)[[1]], call)$meta
}

codebook_lines <- function(data, original, meta, program, file) {
  fingerprint <- tryCatch(jsonlite::fromJSON(meta$fingerprint %||% "{}"), error = function(e) list())
  model <- fingerprint$sha256 %||% fingerprint$backbone %||% "none recorded"
  rows <- vapply(seq_along(data), function(i) {
    x <- data[[i]]
    type <- if (inherits(x, "haven_labelled") || is.factor(x)) "labelled integer" else if (is.numeric(x)) "number" else "text"
    sprintf("| `%s` | `%s` | %s | %s |", names(data)[i], original[i], attr(x, "label") %||% "", type)
  }, "")
  c(sprintf("# Codebook of %s", file), "",
    sprintf("- Written for %s by tidyvision %s on %s.", program, utils::packageVersion("tidyvision"),
            format(Sys.time(), "%Y-%m-%d %H:%M %Z")),
    sprintf("- The run: task `%s`, started %s by tidyvision %s; %d rows.", meta$task %||% "?",
            meta$created %||% "?", meta$tidyvision %||% "?", nrow(data)),
    sprintf("- Model fingerprint (SHA-256 of its weights): `%s`.", model), "",
    "| variable | in read_corpus() | meaning | type |", "|---|---|---|---|", rows)
}
