# Reading a corpus output (classify_folder(), corpus.R): read_corpus(),
# write_corpus_csv(), and the checks that tell a corpus output from any
# other file before anything reads, writes or deletes it.

#' Read the rows of a corpus run
#'
#' Reads the output of [classify_folder()], and every shard file of it
#' (`protest.shard-01.sqlite`, ...), into one tibble, ordered by path. Works
#' while a run is going on or after it stopped half-way: you get the images
#' done so far, with the number still pending in the attribute `"pending"`
#' and a message.
#'
#' A file that is not an output of [classify_folder()] (another program's
#' database, a text file, an empty file) is an error of class
#' `tidyvision_error_not_a_corpus`; a damaged one, of class
#' `tidyvision_error_corpus_corrupt`. Both name the file.
#'
#' @param output The `output` given to [classify_folder()].
#' @param counts For a detector or `"faces"`: `TRUE` for one row per image
#'   and class with the count, as [count_objects()] or [count_faces()] give.
#' @return A tibble: for a classifier `path`, `.pred_class` (a factor of the
#'   classifier's classes), one `.pred_<class>` column per class, `problem`
#'   and `missing`; for other tasks the columns of their verb, `problem` and
#'   `missing`. `missing` is `TRUE` for an image whose file was gone when
#'   [classify_folder()] last ran over `output`: its rows are kept.
#' @export
#' @examplesIf tv_available()
#' out <- file.path(tempdir(), "example-tags.sqlite")
#' classify_folder("imagenet", system.file("extdata", "images", "tools", package = "tidyvision"),
#'                 out, overwrite = TRUE, top_k = 2)
#' read_corpus(out)
read_corpus <- function(output, counts = FALSE) {
  check_flag(counts)
  corpus_read(output, counts, rlang::current_env())
}

corpus_read <- function(output, counts, call) {
  files <- corpus_output_files(output, call)
  parts <- lapply(files, read_corpus_file, call = call)
  meta <- parts[[1]]$meta
  out <- dplyr::bind_rows(lapply(parts, function(p) corpus_rows(p$rows, p$meta)))
  out <- out[order(out$path, method = "radix"), ]
  pending <- sum(vapply(parts, `[[`, 0, "pending"))
  if (pending > 0) {
    cli::cli_inform(c(i = "{pending} image{?s} of {.path {output}} {?is/are} not done yet; run {.fn classify_folder} again to finish."),
                    class = "tidyvision_message_pending")
  }
  if (counts) out <- corpus_counts(out, meta$task)
  attr(out, "pending") <- pending
  out
}

# The output and its shard files, each checked to be a corpus output.
corpus_output_files <- function(output, call) {
  if (is.data.frame(output)) {
    tv_abort(c("{.arg output} must be the path of the SQLite file that {.fn classify_folder} wrote, not a data frame.",
               i = "A data frame from {.fn read_corpus} is already read: use it as it is."),
             class = "bad_argument", call = call)
  }
  if (!rlang::is_string(output) || !nzchar(output)) {
    tv_abort("{.arg output} must be the path of the SQLite file that {.fn classify_folder} wrote, not {shown_value(output)}.",
             class = "bad_argument", call = call)
  }
  path <- expand_paths(output)
  if (dir.exists(path)) {
    tv_abort(c("{.arg output} must be the SQLite file that {.fn classify_folder} wrote, but {.path {output}} is a folder.",
               i = "Give the file, such as {.path {file.path(output, 'corpus.sqlite')}}."),
             class = "bad_argument", call = call)
  }
  files <- existing_corpus_files(path)
  if (length(files) == 0) abort_not_found(output, call)
  for (file in files) check_corpus_file(file, writing = FALSE, call = call)
  files
}

read_corpus_file <- function(file, call) {
  tryCatch({
    # read-write, so that a journal left by a killed run is rolled back
    con <- DBI::dbConnect(RSQLite::SQLite(), file, flags = RSQLite::SQLITE_RW, synchronous = NULL)
    on.exit(DBI::dbDisconnect(con))
    RSQLite::sqliteSetBusyHandler(con, 10000L)
    meta <- DBI::dbGetQuery(con, "SELECT key, value FROM meta")
    # format 1 (before changed and removed images were tracked) has no `missing`
    flagged <- "missing" %in% DBI::dbGetQuery(con, "PRAGMA table_info(images)")$name
    list(meta = stats::setNames(as.list(meta$value), meta$key),
         rows = DBI::dbGetQuery(con, if (flagged) {
           paste("SELECT results.*, coalesce(images.missing, 0) AS missing FROM results",
                 "LEFT JOIN images ON images.path = results.path ORDER BY results.rowid")
         } else {
           "SELECT *, 0 AS missing FROM results ORDER BY rowid"
         }),
         pending = DBI::dbGetQuery(con, "SELECT count(*) AS n FROM images WHERE chunk IS NULL")$n)
  }, error = function(e) abort_corrupt(file, conditionMessage(e), call))
}

# A damaged corpus output: `overwrite = TRUE` redoes it. Damage that hides
# what the file is: classify_folder() won't delete it, so say who may.
abort_corrupt <- function(file, detail, call, known = TRUE) {
  todo <- if (known) {
    "Restore it from a backup, or run {.fn classify_folder} with {.code overwrite = TRUE} to redo it."
  } else {
    "Restore it from a backup. If it is an output of {.fn classify_folder} to redo, delete it yourself and run {.fn classify_folder} again: it can't tell this file from another program's, so it won't delete it."
  }
  tv_abort(c("{.path {file}} is damaged: SQLite can't read it.", x = "{detail}", i = todo),
           class = "corpus_corrupt", call = call)
}

# What `file` is, before anything reads, writes or deletes it: "corpus",
# "empty" (no tables: safe to write), "foreign" (another program's
# database), "not_sqlite" or "damaged".
corpus_file_kind <- function(file) {
  if (file.size(file) == 0) return(list(kind = "empty"))
  head <- readBin(file, "raw", 16)
  if (!identical(head, c(charToRaw("SQLite format 3"), as.raw(0)))) return(list(kind = "not_sqlite", head = head))
  tryCatch({
    con <- DBI::dbConnect(RSQLite::SQLite(), file, flags = RSQLite::SQLITE_RW, synchronous = NULL)
    on.exit(DBI::dbDisconnect(con))
    RSQLite::sqliteSetBusyHandler(con, 10000L)
    tables <- DBI::dbGetQuery(con, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")$name
    # a meta table of ours that can't be read is a damaged corpus, not another program's
    ours <- "meta" %in% tables && all(c("key", "value") %in% DBI::dbGetQuery(con, "PRAGMA table_info(meta)")$name)
    format <- if (ours) DBI::dbGetQuery(con, "SELECT value FROM meta WHERE key = 'format'")$value
    kind <- if (identical(format, "tidyvision-corpus")) "corpus" else if (length(tables)) "foreign" else "empty"
    list(kind = kind, tables = tables)
  }, error = function(e) list(kind = "damaged", detail = conditionMessage(e)))
}

# A classed error unless `file` is a corpus output (or, when writing, a file
# with no tables): classify_folder() never writes into, or deletes, a file
# that another program wrote, whatever `overwrite` says.
check_corpus_file <- function(file, writing, call) {
  what <- corpus_file_kind(file)
  if (what$kind == "corpus" || (writing && what$kind == "empty")) return(invisible(what))
  if (what$kind == "damaged") abort_corrupt(file, what$detail, call, known = FALSE)
  todo <- if (writing) {
    "Give {.arg output} a new file name: {.fn classify_folder} never writes into or deletes a file it did not write, even with {.code overwrite = TRUE}."
  } else {
    "Give the {.arg output} that {.fn classify_folder} wrote."
  }
  found <- switch(what$kind,
    not_sqlite = c("{.path {file}} is not an SQLite database, so not an output of {.fn classify_folder}.",
                   x = "It starts with {first_bytes(what$head)}."),
    empty = "{.path {file}} holds no tables: it is not an output of {.fn classify_folder}.",
    foreign = c("{.path {file}} is an SQLite database that {.fn classify_folder} did not write.",
                x = "Its tables: {.field {what$tables}}.")
  )
  tv_abort(c(found, i = todo), class = "not_a_corpus", call = call)
}

corpus_rows <- function(rows, meta) {
  out <- switch(meta$task,
    classifier = classifier_rows(rows, jsonlite::fromJSON(meta$columns)),
    imagenet = as_schema(rows, "corpus_tags"),
    detector = as_schema(rows, "corpus_detections"),
    faces = as_schema(rows, "faces")
  )
  out$missing <- as.integer(rows$missing) == 1L
  out$trained <- trained_column(rows, meta$task)
  out
}

classifier_rows <- function(rows, cols) {
  prob <- cols[startsWith(cols, ".pred_") & cols != ".pred_class"]
  classes <- substring(prob, 7)
  out <- tibble::tibble(path = as.character(rows$path),
                        .pred_class = factor(rows$.pred_class, levels = classes))
  for (p in prob) out[[p]] <- as.double(rows[[p]])
  out$problem <- as.character(rows$problem)
  out
}

corpus_counts <- function(rows, task) {
  switch(task,
    detector = count_objects(rows),
    faces = count_faces(rows),
    tv_abort("{.code counts = TRUE} is for a detector or {.val faces}, not a {task} run.",
             class = "bad_argument", call = caller_env(2))
  )
}

#' Export a corpus run to a CSV file
#'
#' Writes [read_corpus()] to `file`, through a temporary file renamed into
#' place, so an interrupted export leaves no half-written file.
#'
#' @inheritParams read_corpus
#' @param file The CSV file to write.
#' @param overwrite Replace an existing `file`.
#' @return `file`, invisibly.
#' @export
#' @examplesIf tv_available()
#' out <- file.path(tempdir(), "example-tags.sqlite")
#' classify_folder("imagenet", system.file("extdata", "images", "tools", package = "tidyvision"),
#'                 out, overwrite = TRUE, top_k = 2)
#' csv <- write_corpus_csv(out, tempfile(fileext = ".csv"))
#' head(read.csv(csv))
write_corpus_csv <- function(output, file, overwrite = FALSE) {
  call <- rlang::current_env()
  check_flag(overwrite)
  check_csv_file(file, overwrite, call)
  rows <- suppressMessages(corpus_read(output, FALSE, call))
  clean_stale_temps(dirname(expand_paths(file)))
  tmp <- temp_beside(expand_paths(file), "csv", ".csv")
  on.exit(unlink(tmp), add = TRUE)
  written <- tryCatch({
    utils::write.csv(rows, tmp, row.names = FALSE, na = "", fileEncoding = "UTF-8")
    file.rename(tmp, file)
  }, error = function(e) FALSE, warning = function(w) FALSE)
  if (!written) {
    tv_abort(c("Can't write {.path {file}}.", i = "Check that its folder is writable and the disk has space."),
             class = "write_failed", call = call)
  }
  invisible(file)
}

check_csv_file <- function(file, overwrite, call, example = "corpus.csv") {
  if (!rlang::is_string(file) || !nzchar(file)) {
    tv_abort("{.arg file} must be the path of a file to write, such as {.val {example}}, not {shown_value(file)}.",
             class = "bad_argument", call = call)
  }
  if (dir.exists(file)) {
    tv_abort(c("{.arg file} must be a file, but {.path {file}} is a folder.",
               i = "Give a file name such as {.path {file.path(file, example)}}."),
             class = "bad_argument", call = call)
  }
  if (!dir.exists(dirname(expand_paths(file)))) {
    tv_abort(c("The folder of {.arg file} does not exist: {.path {dirname(file)}}.",
               i = "Create it first, or give a file in an existing folder."),
             class = "path_not_found", call = call)
  }
  if (file.exists(file) && !overwrite) {
    tv_abort(c("{.path {file}} already exists.", i = "Use {.code overwrite = TRUE} to replace it."),
             class = "exists", call = call)
  }
}

# The start of a file, as text when it is text.
first_bytes <- function(bytes) {
  if (length(bytes) && all(bytes >= 0x20 & bytes < 0x7f | bytes %in% as.raw(c(9, 10, 13)))) {
    return(encodeString(rawToChar(bytes), quote = "\""))
  }
  paste("the bytes", paste(format(bytes), collapse = " "))
}
