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
