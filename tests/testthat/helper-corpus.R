# A corpus of 160 small generated photos (two tinted classes) plus one
# corrupt file, and a tiny classifier saved to disk, shared by the corpus tests.
corpus_cache <- new.env()

corpus_folder <- function() {
  if (is.null(corpus_cache$folder)) {
    root <- file.path(tempdir(), "tv-corpus")
    unlink(root, recursive = TRUE)
    fixtures()$make_class_folder(root, n_per_class = 60L, size = 40L, seed = 7L)
    writeBin(as.raw(c(0xff, 0xd8, 0xff, 0x00, 1:60)), file.path(root, "red", "red_050x_corrupt.jpg"))
    corpus_cache$folder <- root
  }
  corpus_cache$folder
}

# Saved, so child processes and SLURM jobs load it from disk.
corpus_fit <- function(seed = 1) {
  key <- paste0("fit", seed)
  if (is.null(corpus_cache[[key]])) {
    train <- image_files(file.path(corpus_folder(), c("red", "blue")) |>
                           lapply(list.files, pattern = "_0[0-1][0-9][.]jpg$", full.names = TRUE) |> unlist())
    fit <- fine_tune(train, epochs = 1, train_layers = "head", image_size = 32, batch_size = 8,
                     seed = seed, augment = FALSE)
    dir <- file.path(tempdir(), paste0("tv-corpus-fit-", seed))
    save_classifier(fit, dir, overwrite = TRUE)
    corpus_cache[[key]] <- load_classifier(dir)
  }
  corpus_cache[[key]]
}

corpus_out <- function(name) {
  dir <- file.path(tempdir(), "tv-corpus-out")
  dir.create(dir, showWarnings = FALSE)
  file.path(dir, name)
}

# Is tidyvision installed where a child R process (or a SLURM job) finds it?
installed_for_children <- function() {
  nzchar(find.package("tidyvision", lib.loc = .libPaths(), quiet = TRUE)[1] %||% "")
}

# The predictions of an uninterrupted corpus run, to compare others with.
reference_run <- function() {
  if (is.null(corpus_cache$reference)) {
    out <- corpus_out("reference.sqlite")
    suppressWarnings(classify_folder(corpus_fit(), corpus_folder(), out, chunk_size = 8,
                                     batch_size = 8, overwrite = TRUE, verbose = FALSE))
    corpus_cache$reference <- read_corpus(out)
  }
  corpus_cache$reference
}

# A named pipe posing as an image. A run that reaches it blocks in open()
# until the test turns it into a file, so a test stops a run at a point it
# controls instead of hoping that a kill or a cancel lands in time.
corpus_gate <- function(name = "gate.jpg") {
  skip_on_os("windows")
  dir <- file.path(tempdir(), "tv-corpus-gates")
  dir.create(dir, showWarnings = FALSE)
  path <- file.path(dir, name)
  unlink(path)
  status <- system2("mkfifo", shQuote(path))
  skip_if(status != 0 || !file.exists(path), "mkfifo can't make a named pipe here")
  normalizePath(path)
}

# The gate becomes an ordinary image: a copy of `like`.
open_gate <- function(gate, like) {
  unlink(gate)
  file.copy(like, gate)
}

# Waits for `done()`, which the test guarantees will come (a run blocked at a
# gate); the deadline only turns a hang into a failure.
wait_until <- function(done, what, seconds = 300) {
  deadline <- Sys.time() + seconds
  while (!isTRUE(done())) {
    if (Sys.time() > deadline) stop("Timed out waiting until ", what, call. = FALSE)
    Sys.sleep(0.1)
  }
}

# Images done in an output file, or 0 while it can't be read.
done_in <- function(file) {
  if (!file.exists(file)) return(0)
  sum(tidyvision:::corpus_status(file)$done, na.rm = TRUE)
}

# A classify_folder() call in a child R process that loads tidyvision from
# .libPaths(), as a user's second session or a cluster job does.
corpus_child <- function(images, output) {
  callr::r_bg(function(task, images, output) {
    tidyvision::classify_folder(task, images, output, chunk_size = 8, batch_size = 8, verbose = FALSE)
  }, args = list(dirname(corpus_fit()$weights), images, output), libpath = .libPaths(),
  env = c(callr::rcmd_safe_env(), R_LIBS = paste(.libPaths(), collapse = ":")))
}

# A real 2 MB file system (tmpfs) for the test, unmounted afterwards: needs root.
local_tiny_disk <- function(env = parent.frame()) {
  skip_on_os(c("windows", "mac"))
  dir <- tempfile("tv-tiny-disk-")
  dir.create(dir)
  status <- suppressWarnings(system2("mount", c("-t", "tmpfs", "-o", "size=2m", "tmpfs", dir),
                                     stdout = FALSE, stderr = FALSE))
  skip_if(status != 0, "can't mount a tmpfs here (needs root)")
  withr::defer(system2("umount", dir), envir = env)
  dir
}

# Fills the disk that holds `dir` to the last block.
fill_disk <- function(dir) {
  system2("dd", c("if=/dev/zero", paste0("of=", file.path(dir, "filler")), "bs=4096"),
          stdout = FALSE, stderr = FALSE)
  file.path(dir, "filler")
}

# Is a thread of process `pid` inside open() on a named pipe, waiting for a
# writer? (Linux: the kernel's wchan for that wait is wait_for_partner.)
waiting_at_gate <- function(pid) {
  tasks <- list.files(file.path("/proc", pid, "task"), full.names = TRUE)
  wchan <- vapply(tasks, function(t) {
    tryCatch(readLines(file.path(t, "wchan"), warn = FALSE)[1], error = function(e) NA_character_)
  }, "")
  any(wchan %in% "wait_for_partner")
}

# The corpus folder plus a resized (PNG, half size) and a re-encoded (JPEG
# quality 40) copy of one of corpus_fit()'s training images, run through
# classify_folder(): what the `trained` column is tested on.
trained_corpus <- function() {
  if (is.null(corpus_cache$trained)) {
    dir <- file.path(tempdir(), "tv-corpus-copies")
    unlink(dir, recursive = TRUE)
    dir.create(dir)
    src <- file.path(corpus_folder(), "red", "red_005.jpg")
    fx <- fixtures()
    copies <- c(fx$write_copy(src, file.path(dir, "red_005_half.png"), "half"),
                fx$write_copy(src, file.path(dir, "red_005_q40.jpg"), "jpeg40"))
    paths <- c(suppressWarnings(image_files(corpus_folder()))$path, normalizePath(copies))
    out <- corpus_out("trained.sqlite")
    suppressWarnings(classify_folder(corpus_fit(), paths, out, chunk_size = 16, batch_size = 8,
                                     overwrite = TRUE, verbose = FALSE))
    corpus_cache$trained <- read_corpus(out)
  }
  corpus_cache$trained
}

# Which rows of trained_corpus() are the fit's own images (its train and
# val files, 000 to 019 of each class) and which are copies of one.
own_images <- function(paths) grepl("_0[0-1][0-9][.]jpg$", paths) & !copied_images(paths)
copied_images <- function(paths) grepl("tv-corpus-copies", paths, fixed = TRUE)
