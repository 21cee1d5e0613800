# Labelling a whole corpus into SQLite (engine: corpus.py): classify_folder().
# Shards and SLURM are in slurm.R; reading the output in corpus_read.R.

#' Label a whole corpus, resumably, on a laptop or a cluster
#'
#' Runs one task over every image of a folder (or a list of images) and
#' writes the rows into an SQLite file as it goes, a chunk of `chunk_size`
#' images per transaction. Stop it any way you like (Ctrl-C, a crash, a
#' killed job, a power cut): run the same call again and it does only the
#' images that are missing, with no duplicate rows and no gaps. Read the
#' result with [read_corpus()].
#'
#' **Tasks.** `task` is what runs on every image, with the columns of the
#' verb that does it:
#' * a classifier from [fine_tune()] or [load_classifier()], or the folder of
#'   a saved classifier: the columns of [predict()][predict.tv_classifier]
#'   (`.pred_class` and one `.pred_<class>` per class);
#' * `"imagenet"`: the rows of [autotag()] (`...` may set `top_k`);
#' * a YOLO detector (a `tv_detector`, a `.pt` file or a name such as
#'   `"yolov8n.pt"`): the rows of [detect_objects()] (`...` may set
#'   `confidence`, `iou`, `classes`, `image_size`); counts per image come from
#'   `read_corpus(output, counts = TRUE)`;
#' * `"faces"`: the rows of [detect_faces()] (`...` may set `model`,
#'   `upsample`, `confidence`).
#'
#' **The output.** `output` holds the rows, the list of images with the
#' chunk that did each, and the run's settings: the task's fingerprint (for
#' a classifier, the sha256 of its weights, its classes and preprocessing)
#' and the package version. Resuming with another task or other settings is
#' an error of class `tidyvision_error_corpus_mismatch`; `overwrite = TRUE`
#' starts afresh. A call adds the images it lists to the output; images
#' already done are never done again. An image that can't be read is a row
#' with a `problem` (and `NA` results); it counts as done, so it is not
#' retried, and one warning says how many there were.
#'
#' `output` must be a new file or an output of `classify_folder()`: another
#' program's database, or any other file, is an error of class
#' `tidyvision_error_not_a_corpus` that names its tables, and it is left as
#' it was, even with `overwrite = TRUE` (which replaces corpus outputs only).
#'
#' **No stale answers.** The size and modification time of each image are
#' recorded, and the sha256 of what the task read. An image whose file
#' changed since it was done (other size or time, and other content) loses
#' its rows and is done again; a file that was only touched keeps them. An
#' image whose file is gone keeps its rows, marked `missing = TRUE` in
#' [read_corpus()]. A message, and the `changed` and `missing` columns of the
#' result, say how many. Outputs of older versions are upgraded in place.
#'
#' **The model's own images.** With a classifier, each row of
#' [read_corpus()] says in `trained` whether the image trained or validated
#' it, by content: its sha256 is one of the fit's train and val images', or
#' its perceptual hash is within 8 bits of one's (the distance of
#' [find_duplicates()]), so renamed, resized and re-encoded copies count.
#' [sample_for_coding()] leaves those rows out and [estimate_prevalence()]
#' refuses them. `trained` is `FALSE` for tasks without a fit, and `NA` for
#' an unreadable image or a classifier saved before fits kept their images.
#'
#' **One run at a time.** A run holds a lock on each file it writes (an OS
#' lock on `protest.sqlite.lock`, which the system drops when the run ends in
#' any way, `kill -9` included). A second run on the same output is an error
#' of class `tidyvision_error_corpus_busy` that names the run holding it.
#' A full disk is an error of class `tidyvision_error_disk_full`; a damaged
#' output, `tidyvision_error_corpus_corrupt`. Finished chunks are kept in
#' every case.
#'
#' **Memory and speed.** Images are listed by name and size (no file is
#' opened before its turn), so a million files list in seconds. They are
#' decoded in threads a batch ahead of the network, as
#' [predict()][predict.tv_classifier] does, and nothing but the current batch
#' is held: memory stays flat whatever the size of the corpus.
#'
#' **Shards.** `shards = n` splits the images into `n` parts by a hash of
#' their path, so each image always falls in the same part. Each part has its
#' own file (`protest.sqlite` gives `protest.shard-01.sqlite`, ...), because
#' SQLite's locks are unsafe on the network file systems of clusters. The
#' parts run as futures, so [future::plan()] decides where: one after the
#' other (the default, with one progress bar over all), in background R
#' sessions (`future::multisession`), or as SLURM jobs
#' (`future.batchtools::batchtools_slurm` with [slurm_template()]). A worker
#' loads the classifier from disk: a classifier that was never saved is saved
#' first, next to `output` (`protest.classifier/`). `shard = k` runs part
#' `k` only; `shard = "slurm"`, inside a SLURM array job, runs part
#' `SLURM_ARRAY_TASK_ID` of `SLURM_ARRAY_TASK_COUNT` (see
#' `vignette("corpus")`).
#'
#' @param task What to run on each image (see Details).
#' @param images A folder (searched recursively), image paths, or a tibble
#'   with a `path` column such as [image_files()].
#' @param output The SQLite file to write, e.g. `"protest.sqlite"`.
#' @param chunk_size Images per transaction: at most this many images are
#'   redone after a crash.
#' @param resume Continue an existing `output`. With `FALSE`, an existing
#'   `output` is an error unless `overwrite = TRUE`.
#' @param shards Number of parts to split the images into.
#' @param shard `NULL` to run every part, a number to run one part, or
#'   `"slurm"` to take the part from a SLURM array job's environment.
#' @param overwrite Delete an existing `output` (and its shard files) and
#'   start afresh. Only an output of `classify_folder()` is ever deleted.
#' @param batch_size Images decoded together (the next batch decodes while
#'   this one runs).
#' @param verbose Show a progress bar with the time left.
#' @param ... Settings of the task (see Details).
#' @return The state of each output file, invisibly: a tibble with `file`,
#'   `shard`, `images`, `done`, `pending`, `problems`, `missing` (images
#'   whose file is gone) and `changed` (images this call did again because
#'   their file changed).
#' @seealso [read_corpus()], [write_corpus_csv()], [slurm_template()].
#' @export
#' @examplesIf tv_available()
#' imgs <- image_files(system.file("extdata", "images", package = "tidyvision"))
#' fit <- fine_tune(imgs, epochs = 1, train_layers = "head", image_size = 64)
#' out <- file.path(tempdir(), "example-corpus.sqlite")
#' classify_folder(fit, system.file("extdata", "images", package = "tidyvision"), out,
#'                 overwrite = TRUE)
#' read_corpus(out)
classify_folder <- function(task, images, output, chunk_size = 1000, resume = TRUE, shards = 1,
                            shard = NULL, overwrite = FALSE, batch_size = 64,
                            verbose = tv_verbose(), ...) {
  call <- rlang::current_env()
  check_count(chunk_size)
  check_count(batch_size)
  check_flag(resume)
  check_flag(overwrite)
  check_flag(verbose)
  output <- check_output(output, call)
  spec <- corpus_task(task, list(...), call)
  parts <- corpus_shards(shards, shard, call)
  files <- corpus_files(output, parts$n)
  held <- corpus_lock(union(existing_corpus_files(output), files[parts$run]), call)
  on.exit(corpus_unlock(held), add = TRUE)
  prepare_outputs(output, files, parts, resume, overwrite, call)
  planned <- plan_corpus(files[parts$run], parts, spec, images, call)
  run <- list(files = files[parts$run], spec = spec, chunk_size = as.integer(chunk_size),
              batch_size = as.integer(batch_size), total = sum(unlist(planned$pending)))
  summaries <- if (length(run$files) > 1 && !future_is_local()) {
    held <- corpus_unlock(held)  # each worker locks its own file
    run_futures(run, output, verbose, call)
  } else {
    run_here(run, verbose)
  }
  warn_problems(summaries, output)
  status <- corpus_status(run$files)
  status$changed <- as.integer(unlist(planned$changed))
  inform_changes(status, output)
  invisible(status)
}

plan_corpus <- function(files, parts, spec, images, call) {
  planned <- rlang::exec(engine_call, "corpus.plan", as.list(files), as.list(parts$run), parts$n,
                         spec$engine, spec$fingerprint, corpus_meta(), !!!corpus_source(images, call),
                         call = call)
  if (planned$listed == 0) tv_warn("No image files found in {.arg images}.", class = "no_images")
  planned
}

# One run per output file: a second one would write the same chunks. The
# engine holds an OS lock, which a killed R session drops by itself.
corpus_lock <- function(files, call) {
  as.character(engine_call("corpus.lock", as.list(files), call = call))
}

corpus_unlock <- function(files) {
  if (length(files)) engine_call("corpus.unlock", as.list(files))
  character()
}

inform_changes <- function(status, output) {
  changed <- sum(status$changed, na.rm = TRUE)
  missing <- sum(status$missing, na.rm = TRUE)
  if (changed > 0) {
    cli::cli_inform(c(i = "{changed} image{?s} changed since {?its/their} rows were written; {?it was/they were} done again."),
                    class = "tidyvision_message_changed")
  }
  if (missing > 0) {
    cli::cli_inform(c(i = "{missing} image{?s} of {.path {output}} {?is/are} gone from disk; {?its/their} rows are kept, with {.code missing = TRUE} in {.fn read_corpus}."),
                    class = "tidyvision_message_missing")
  }
}

check_output <- function(output, call) {
  if (!rlang::is_string(output) || !nzchar(output)) {
    tv_abort("{.arg output} must be the path of an SQLite file, such as {.val corpus.sqlite}.",
             class = "bad_argument", call = call)
  }
  if (dir.exists(output)) {
    tv_abort(c("{.arg output} must be a file, but {.path {output}} is a folder.",
               i = "Give a file name such as {.path {file.path(output, 'corpus.sqlite')}}."),
             class = "bad_argument", call = call)
  }
  dir.create(dirname(expand_paths(output)), showWarnings = FALSE, recursive = TRUE)
  expand_paths(output)
}

# A folder is listed by the engine (paths never cross to R); anything else
# is paths.
corpus_source <- function(images, call) {
  if (is.character(images) && length(images) == 1 && !is.na(images) && dir.exists(expand_paths(images))) {
    return(list(root = expand_paths(images)))
  }
  list(paths = as.list(image_paths(images, "images", call)))
}

corpus_meta <- function() {
  list(tidyvision = as.character(utils::packageVersion("tidyvision")), R = as.character(getRversion()))
}

# Each shard's file: the output itself for one shard, else stem.shard-07.ext.
corpus_files <- function(output, n) {
  if (n == 1) return(output)
  ext <- tools::file_ext(output)
  sprintf("%s.shard-%0*d%s", tools::file_path_sans_ext(output), max(2L, nchar(n)), seq_len(n),
          if (nzchar(ext)) paste0(".", ext) else "")
}

# The output and any shard files of it on disk.
existing_corpus_files <- function(output) {
  ext <- tools::file_ext(output)
  stem <- basename(tools::file_path_sans_ext(output))
  pattern <- paste0("^", gsub("([][{}()+*^$|\\\\?.])", "\\\\\\1", stem), "[.]shard-[0-9]+",
                    if (nzchar(ext)) paste0("[.]", ext), "$")
  shards <- list.files(dirname(output), pattern = pattern, full.names = TRUE)
  c(output[file.exists(output)], sort(expand_paths(shards)))
}

prepare_outputs <- function(output, files, parts, resume, overwrite, call) {
  existing <- existing_corpus_files(output)
  # before anything is deleted: overwrite = TRUE replaces corpus outputs only
  for (file in existing) check_corpus_file(file, writing = TRUE, call = call)
  stray <- setdiff(existing, files)
  if (overwrite) {
    gone <- if (parts$all) existing else intersect(existing, files[parts$run])
    unlink(c(gone, paste0(gone, "-journal")))
    return(invisible())
  }
  if (length(stray)) {
    tv_abort(c("{.path {output}} was written with another number of shards.",
               x = "Found {.path {basename(stray)}}, which {.code shards = {parts$n}} doesn't write.",
               i = "Use the {.arg shards} of that run, or {.code overwrite = TRUE} to start afresh."),
             class = "corpus_mismatch", call = call)
  }
  there <- intersect(existing, files[parts$run])
  if (!resume && length(there)) {
    tv_abort(c("{.path {there[1]}} already exists.",
               i = "Use {.code resume = TRUE} to continue it or {.code overwrite = TRUE} to start afresh."),
             class = "exists", call = call)
  }
}

# The shards of this call, one after the other in this R session, with one
# progress bar over all of them.
run_here <- function(run, verbose) {
  progress <- progress_callback(verbose, run$spec$label)
  done <- 0
  lapply(run$files, function(file) {
    res <- corpus_run_file(file, run$spec, run$chunk_size, run$batch_size, progress, done, run$total)
    done <<- done + res$done
    res
  })
}

corpus_run_file <- function(file, spec, chunk_size, batch_size, progress = NULL, done = 0, total = NULL,
                            call = caller_env()) {
  tryCatch(
    engine_call("corpus.run", file, spec$engine, chunk_size = chunk_size, batch_size = batch_size,
                progress = progress, done_before = as.integer(done),
                total = if (!is.null(total)) as.integer(total), call = call),
    # Unlike other verbs, the finished chunks are kept: say so.
    tidyvision_error_interrupted = function(e) {
      tv_abort(c("Interrupted; the finished chunks are kept in {.path {file}}.",
                 i = "Run the same call again to go on where it stopped."),
               class = "interrupted", call = call)
    }
  )
}

warn_problems <- function(summaries, output) {
  n <- sum(vapply(summaries, function(s) as.numeric(s$problems), 0))
  if (n == 0) return(invisible())
  shown <- paste0(unlist(lapply(summaries, `[[`, "path")), ": ", unlist(lapply(summaries, `[[`, "problem")))
  tv_warn(c("{n} image{?s} can't be read; {?it is a row/they are rows} with a {.field problem} in {.path {output}}:",
            bullets_of(utils::head(shown, 5), 5),
            if (n > 5) c(" " = "... and {n - 5} more.")), class = "unreadable")
}

# What runs on each image: the engine's arguments, the fingerprint that a
# resumed output must match, and for a saved classifier its folder (what a
# worker loads).
corpus_task <- function(task, dots, call) {
  if (inherits(task, "tv_classifier") || (rlang::is_string(task) && dir.exists(task))) {
    return(classifier_task(task, dots, call))
  }
  if (identical(task, "imagenet")) return(imagenet_task(dots, call))
  if (identical(task, "faces")) return(faces_task(dots, call))
  if (inherits(task, "tv_detector") || (rlang::is_string(task) && grepl("[.]pt$", task))) {
    return(detector_task(task, dots, call))
  }
  tv_abort(c("{.arg task} must be a classifier, the folder of a saved classifier, {.val imagenet}, a YOLO detector or {.val faces}.",
             x = "It is {shown_value(task)}."), class = "bad_argument", call = call)
}

task_spec <- function(label, engine, fingerprint, dir = NULL, fit = NULL) {
  list(kind = engine$kind, label = label, engine = engine, dir = dir, fit = fit,
       fingerprint = as.character(jsonlite::toJSON(fingerprint, auto_unbox = TRUE, digits = NA)))
}

task_options <- function(dots, defaults, call) {
  check_dots_known(dots[setdiff(names(dots), names(defaults))], names(defaults), "classify_folder", call)
  utils::modifyList(defaults, dots)
}

classifier_task <- function(task, dots, call) {
  fit <- if (is.character(task)) load_classifier(task) else task
  fit <- check_classifier(fit, "task", call)
  opts <- task_options(dots, list(device = fit$settings$device %||% "auto"), call)
  s <- fit$settings
  saved <- file.exists(file.path(dirname(fit$weights), "tidyvision.json"))
  engine <- list(kind = "classifier", weights = fit$weights, backbone = fit$backbone,
                 classes = as.list(fit$classes), resize = s$resize, image_size = as.integer(s$image_size),
                 device = opts$device, precision = s$precision, seen = classifier_seen(fit))
  task_spec("Classifying", engine,
            list(task = "classifier", sha256 = fit$sha256, backbone = fit$backbone, classes = fit$classes,
                 resize = s$resize, image_size = s$image_size, precision = s$precision),
            dir = if (saved) dirname(fit$weights), fit = fit)
}

# The fit's train and val images by content, for the engine to flag corpus
# images that are (copies of) them; NULL when the fit does not carry them.
classifier_seen <- function(fit) {
  if (is.null(fit$seen)) return(NULL)
  list(sha256 = as.list(fit$seen$sha256), phash = as.list(fit$seen$phash))
}

# read_corpus()'s `trained`: whether a row's image trained or validated the
# classifier, by content. FALSE for tasks without a fit; NA where unknown (an
# unreadable image, a fit saved without its images, an output not yet
# upgraded by a run of this version).
trained_column <- function(rows, task) {
  if (task != "classifier") return(rep(FALSE, nrow(rows)))
  if (is.null(rows$trained)) return(rep(NA, nrow(rows)))
  as.integer(rows$trained) == 1L
}

imagenet_task <- function(dots, call) {
  opts <- task_options(dots, list(top_k = 5, device = "auto"), call)
  check_count(opts$top_k, "top_k", call)
  task_spec("Tagging", list(kind = "imagenet", top_k = as.integer(opts$top_k), device = opts$device),
            list(task = "imagenet", model = "efficientnet_lite0 (ImageNet-1k)", top_k = opts$top_k))
}

faces_task <- function(dots, call) {
  opts <- task_options(dots, list(model = "hog", upsample = 1, confidence = 0.6), call)
  opts$model <- check_choice(opts$model, c("hog", "cnn"), "model", call)
  check_upsample(opts$upsample, call)
  check_confidence(opts$confidence, "confidence", call)
  task_spec("Finding faces", c(list(kind = "faces"), opts[c("model", "confidence")],
                               upsample = as.integer(opts$upsample)), c(list(task = "faces"), opts))
}

detector_task <- function(task, dots, call) {
  opts <- task_options(dots, list(confidence = 0.25, iou = 0.7, classes = NULL, image_size = NULL,
                                  device = "auto"), call)
  weights <- engine_call("detect.resolve_weights", detector_weights(task, "task", call), call = call)
  engine <- c(list(kind = "detector", model = weights), opts)
  engine$classes <- if (!is.null(opts$classes)) as.list(opts$classes)
  engine$image_size <- if (!is.null(opts$image_size)) as.integer(opts$image_size)
  task_spec("Detecting objects", engine,
            c(list(task = "detector", sha256 = engine_call("images.file_sha256", weights, call = call)),
              opts[c("confidence", "iou", "classes", "image_size")]))
}
