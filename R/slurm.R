# Shards of a corpus run (classify_folder()) as futures, SLURM array jobs,
# and a SLURM template for future.batchtools and batchtools.

# Which shards this call runs: all of `shards`, one, or the one a SLURM
# array job's environment names.
corpus_shards <- function(shards, shard, call) {
  if (identical(shard, "slurm")) return(slurm_shard(shards, call))
  check_count(shards, "shards", call)
  if (is.null(shard)) return(list(n = as.integer(shards), run = seq_len(shards), all = TRUE))
  check_count(shard, "shard", call)
  if (shard > shards) {
    tv_abort("{.arg shard} must be at most {.arg shards} ({shards}), not {shard}.",
             class = "bad_argument", call = call)
  }
  list(n = as.integer(shards), run = as.integer(shard), all = FALSE)
}

slurm_shard <- function(shards, call) {
  env <- Sys.getenv(c("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN"))
  if (!nzchar(env[[1]]) || !nzchar(env[[2]])) {
    tv_abort(c("{.code shard = \"slurm\"} works inside a SLURM array job only.",
               x = "{.envvar SLURM_ARRAY_TASK_ID} and {.envvar SLURM_ARRAY_TASK_COUNT} are not set.",
               i = "Submit with {.code sbatch --array=1-N}, or give {.arg shard} a number."),
             class = "not_in_slurm", call = call)
  }
  n <- as.integer(env[[2]])
  if (!identical(as.numeric(shards), 1) && !identical(as.numeric(shards), as.numeric(n))) {
    tv_abort("{.arg shards} is {shards} but the array job has {n} tasks.", class = "bad_argument", call = call)
  }
  first <- if (nzchar(env[[3]])) as.integer(env[[3]]) else 1L
  list(n = n, run = as.integer(env[[1]]) - first + 1L, all = FALSE)
}

# With a sequential plan, futures would run one by one anyway and hide the
# progress bar: those shards run in this session instead.
future_is_local <- function() inherits(future::plan(), "uniprocess")

run_futures <- function(run, output, verbose, call) {
  spec <- portable_spec(run$spec, output, call)
  chunk_size <- run$chunk_size
  batch_size <- run$batch_size
  fs <- lapply(run$files, function(file) {
    future::future(utils::getFromNamespace("corpus_worker", "tidyvision")(file, spec, chunk_size, batch_size),
                   globals = list(file = file, spec = spec, chunk_size = chunk_size, batch_size = batch_size),
                   packages = "tidyvision", seed = NULL)
  })
  wait_futures(fs, run, verbose)
  values <- lapply(fs, function(f) tryCatch(future::value(f), error = identity))
  failed <- vapply(values, inherits, TRUE, "error")
  if (any(failed)) {
    tv_abort(c("{sum(failed)} of {length(fs)} shard{?s} failed: {.path {basename(run$files[failed])}}.",
               i = "Run the same call again to resume {?it/them}; what they finished is kept."),
             class = "shard_failed", parent = values[[which(failed)[1]]], call = call)
  }
  values
}

# What a worker gets: plain settings and a classifier saved on disk, never
# a live object. A classifier that was never saved is saved beside `output`.
portable_spec <- function(spec, output, call) {
  if (identical(spec$kind, "classifier") && is.null(spec$dir)) {
    dir <- paste0(tools::file_path_sans_ext(output), ".classifier")
    if (!dir.exists(dir)) save_classifier(spec$fit, dir)
    if (!identical(load_classifier(dir)$sha256, spec$fit$sha256)) {
      tv_abort(c("{.path {dir}} holds another classifier.",
                 i = "The workers need this one on disk: save it with {.fn save_classifier} and give its folder as {.arg task}."),
               class = "exists", call = call)
    }
    spec$dir <- dir
  }
  spec$fit <- NULL
  spec
}

corpus_worker <- function(file, spec, chunk_size, batch_size) {
  if (!is.null(spec$dir)) spec$engine$weights <- load_classifier(spec$dir)$weights
  corpus_run_file(file, spec, chunk_size, batch_size)
}

# One bar over every shard, from the chunks each file has finished.
wait_futures <- function(fs, run, verbose) {
  progress <- progress_callback(verbose, run$spec$label)
  start <- corpus_status(run$files)$done
  done <- 0
  repeat {
    resolved <- all(vapply(fs, future::resolved, TRUE))
    done <- max(done, sum(corpus_status(run$files)$done - start))
    if (!is.null(progress)) progress(done, max(run$total, 1))
    if (resolved) break
    Sys.sleep(0.5)
  }
}

# Images, done, pending, problems and missing (files gone from disk) per
# output file; NA for a file that can't be read at the moment (a shard
# committing a chunk).
corpus_status <- function(files) {
  rows <- lapply(files, function(file) {
    tryCatch({
      con <- DBI::dbConnect(RSQLite::SQLite(), file, flags = RSQLite::SQLITE_RO, synchronous = NULL)
      on.exit(DBI::dbDisconnect(con))
      DBI::dbGetQuery(con, paste(
        "SELECT (SELECT value FROM meta WHERE key = 'shard') AS shard, count(*) AS images,",
        "count(chunk) AS done, count(*) - count(chunk) AS pending, count(problem) AS problems,",
        "sum(missing) AS missing FROM images"))
    }, error = function(e) data.frame(shard = NA, images = NA, done = NA, pending = NA, problems = NA, missing = NA))
  })
  out <- tibble::as_tibble(do.call(rbind, rows))
  tibble::tibble(file = files, shard = as.integer(out$shard), images = as.integer(out$images),
                 done = as.integer(out$done), pending = as.integer(out$pending),
                 problems = as.integer(out$problems), missing = as.integer(out$missing))
}

#' A SLURM job template for future.batchtools and batchtools
#'
#' Writes a [brew](https://cran.r-project.org/package=brew) template of a
#' SLURM batch script with the resources each job asks for, and returns its
#' path, for `future::plan(future.batchtools::batchtools_slurm, template = ...)`
#' or `batchtools::makeClusterFunctionsSlurm(template = ...)`. Jobs inherit
#' the environment of the R session that submits them (`R_LIBS`,
#' `SLURM_CONF`, ...). The template also serves array jobs: with batchtools'
#' `submitJobs(..., resources = list(chunks.as.arrayjobs = TRUE))`, a chunk
#' of jobs goes out as one `sbatch --array` (see `vignette("corpus")`).
#' Resources given to `submitJobs()` (`cpus`, `memory`, `walltime`,
#' `partition`) override the ones here.
#'
#' @param cpus CPU cores per job (torch uses that many threads).
#' @param memory Memory per job, in SLURM's units: `"4G"`, `"500M"`.
#' @param walltime Time limit, in SLURM's format: `"01:00:00"`, `"2-00:00:00"`.
#' @param partition The partition (queue), or `NULL` for the cluster's default.
#' @param setup Shell lines run before R, e.g. `"module load R/4.3"`.
#' @param file Where to write the template (atomically: through a temporary
#'   file renamed into place).
#' @param overwrite Replace an existing `file`.
#' @return `file`.
#' @export
#' @examples
#' tmpl <- slurm_template(cpus = 4, memory = "8G", walltime = "04:00:00")
#' cat(readLines(tmpl), sep = "\n")
slurm_template <- function(cpus = 2, memory = "4G", walltime = "01:00:00", partition = NULL,
                           setup = NULL, file = tempfile("tidyvision-slurm-", fileext = ".tmpl"),
                           overwrite = FALSE) {
  check_count(cpus)
  check_flag(overwrite)
  for (x in list(memory = memory, walltime = walltime)) {
    if (!rlang::is_string(x) || !nzchar(x)) {
      tv_abort("{.arg memory} and {.arg walltime} must be strings such as {.val 4G} and {.val 01:00:00}.",
               class = "bad_argument")
    }
  }
  if (!is.null(partition) && !rlang::is_string(partition)) {
    tv_abort("{.arg partition} must be a partition name or NULL.", class = "bad_argument")
  }
  lines <- readLines(system.file("templates", "slurm.tmpl", package = "tidyvision", mustWork = TRUE))
  values <- c(CPUS = cpus, MEMORY = memory, WALLTIME = walltime,
              PARTITION = if (is.null(partition)) "" else partition,
              SETUP = paste(setup, collapse = "\n"))
  for (key in names(values)) lines <- gsub(paste0("@", key, "@"), values[[key]], lines, fixed = TRUE)
  write_lines_atomic(lines, file, overwrite)
}

# `lines` into `file` through a temporary file beside it, renamed into place:
# a reader never sees half a file, and nothing is replaced without `overwrite`.
write_lines_atomic <- function(lines, file, overwrite, call = caller_env()) {
  if (!rlang::is_string(file) || !nzchar(file) || dir.exists(file)) {
    tv_abort("{.arg file} must be the path of a file to write, not {shown_value(file)}.",
             class = "bad_argument", call = call)
  }
  if (file.exists(file) && !overwrite) {
    tv_abort(c("{.path {file}} already exists.", i = "Use {.code overwrite = TRUE} to replace it."),
             class = "exists", call = call)
  }
  tmp <- tempfile(".tidyvision-", tmpdir = dirname(expand_paths(file)))
  on.exit(unlink(tmp), add = TRUE)
  ok <- tryCatch({
    writeLines(lines, tmp)
    file.rename(tmp, file)
  }, error = function(e) FALSE, warning = function(w) FALSE)
  if (!ok) {
    tv_abort(c("Can't write {.path {file}}.", i = "Check that its folder exists and is writable."),
             class = "write_failed", call = call)
  }
  file
}
