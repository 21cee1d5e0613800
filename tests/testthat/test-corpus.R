test_that("classify_folder() equals predict() row for row, with a bar and one warning for a corrupt image", {
  skip_if_no_engine()
  withr::local_options(cli.progress_show_after = 0, cli.dynamic = FALSE)
  fit <- corpus_fit()
  out <- corpus_out("run.sqlite")
  unlink(out)
  msgs <- character()
  expect_warning(
    withCallingHandlers(
      status <- classify_folder(fit, corpus_folder(), out, chunk_size = 8, batch_size = 8, verbose = TRUE),
      message = function(m) {
        msgs <<- c(msgs, conditionMessage(m))
        invokeRestart("muffleMessage")
      }),
    "1 image can't be read", class = "tidyvision_warning_unreadable")
  expect_true(any(grepl("Classifying .*100%", msgs)))
  expect_equal(status$images, 121L)
  expect_equal(status$done, 121L)
  expect_equal(status$problems, 1L)

  got <- read_corpus(out)
  imgs <- image_files(corpus_folder()) |> suppressWarnings()
  expect_identical(got$path, imgs$path)
  pred <- augment(fit, imgs, batch_size = 8) |> suppressWarnings()
  expect_equal(got$.pred_class, pred$.pred_class)
  expect_equal(got[c(".pred_blue", ".pred_red")], pred[c(".pred_blue", ".pred_red")], ignore_attr = TRUE)
  bad <- grepl("corrupt", got$path)
  expect_match(got$problem[bad], "not an image Pillow can read|truncated")
  expect_true(all(is.na(got$problem[!bad])))
  expect_gt(mean(got$.pred_class[!bad] == basename(dirname(got$path[!bad]))), 0.8)

  # A finished run: nothing to do, the corrupt image is not retried, nothing is added.
  expect_no_warning(again <- classify_folder(fit, corpus_folder(), out, chunk_size = 8, verbose = FALSE))
  expect_identical(read_corpus(out), got)
  expect_equal(again$done, 121L)
})

test_that("a run blocked half-way refuses a second run; killed with SIGKILL, it resumes to the uninterrupted rows", {
  skip_if_no_engine()
  skip_if_not(installed_for_children(), "tidyvision is not installed for child R processes")
  fit <- corpus_fit()
  reference <- reference_run()
  paths <- reference$path
  gate <- corpus_gate("killed-gate.jpg")
  images <- c(paths[1:60], gate, paths[61:121])  # the gate is the 61st: chunks 1-7 are done before it
  out <- corpus_out("killed.sqlite")
  unlink(c(out, paste0(out, ".lock")))
  child <- corpus_child(images, out)
  on.exit(child$kill(), add = TRUE)
  skip_if_not(file.exists("/proc/self/wchan"), "no /proc/<pid>/wchan to see a process wait at the gate")
  wait_until(function() (done_in(out) >= 56 && waiting_at_gate(child$get_pid())) || !child$is_alive(),
             "the child waits at the gate")
  expect_true(child$is_alive(), info = child$read_all_error())
  expect_equal(done_in(out), 56)

  # The child stays inside open(); with the gate moved away, a second run that
  # wrongly went ahead would finish instead of blocking there too.
  held <- paste0(gate, ".held")
  file.rename(gate, held)
  expect_error(classify_folder(fit, images, out, chunk_size = 8, verbose = FALSE),
               "Another run \\(process [0-9]+", class = "tidyvision_error_corpus_busy")
  child$kill()  # SIGKILL: the child's lock goes with it
  unlink(held)
  expect_false(child$is_alive())

  expect_message(partial <- read_corpus(out), "not done yet", class = "tidyvision_message_pending")
  expect_equal(attr(partial, "pending"), 66)
  expect_equal(partial, reference[match(partial$path, reference$path), ], ignore_attr = TRUE)

  open_gate(gate, paths[1])
  suppressWarnings(classify_folder(dirname(fit$weights), images, out, chunk_size = 8,
                                   batch_size = 8, verbose = FALSE))
  resumed <- read_corpus(out)
  expect_false(anyDuplicated(resumed$path) > 0)
  expect_equal(resumed[resumed$path != gate, ], reference, tolerance = 1e-6, ignore_attr = TRUE)
  expect_equal(resumed$.pred_red[resumed$path == gate], reference$.pred_red[1], tolerance = 1e-6)
  expect_false(file.exists(paste0(out, ".lock")))
})

test_that("an output from another model is a classed error; overwrite = TRUE starts afresh", {
  skip_if_no_engine()
  out <- corpus_out("run.sqlite")
  reference_run()
  if (!file.exists(out)) file.copy(corpus_out("reference.sqlite"), out)
  other <- corpus_fit(seed = 2)
  expect_error(classify_folder(other, corpus_folder(), out, verbose = FALSE),
               "another task or settings", class = "tidyvision_error_corpus_mismatch")
  expect_error(classify_folder(corpus_fit(), corpus_folder(), out, resume = FALSE, verbose = FALSE),
               class = "tidyvision_error_exists")
  expect_error(classify_folder(corpus_fit(), corpus_folder(), out, shards = 2, verbose = FALSE),
               class = "tidyvision_error_corpus_mismatch")
  paths <- image_files(corpus_folder())$path[1:20] |> suppressWarnings()
  classify_folder(other, paths, out, overwrite = TRUE, verbose = FALSE)
  fresh <- read_corpus(out)
  expect_equal(fresh$path, sort(paths))
  expect_equal(fresh$.pred_red, predict(other, sort(paths), type = "prob")$.pred_red)
})

test_that("shards = 3 writes three files that read back as shards = 1", {
  skip_if_no_engine()
  out <- corpus_out("sharded.sqlite")
  unlink(tidyvision:::existing_corpus_files(out))
  expect_warning(status <- classify_folder(corpus_fit(), corpus_folder(), out, shards = 3, chunk_size = 8,
                                           batch_size = 8, verbose = FALSE),
                 class = "tidyvision_warning_unreadable")
  expect_equal(basename(status$file), sprintf("sharded.shard-%02d.sqlite", 1:3))
  expect_true(all(status$images > 20))
  expect_false(file.exists(out))
  expect_equal(read_corpus(out), reference_run(), tolerance = 1e-6)
  # one shard again alone: nothing to do
  expect_equal(classify_folder(corpus_fit(), corpus_folder(), out, shards = 3, shard = 2,
                               verbose = FALSE)$pending, 0L)
  csv <- file.path(tempdir(), "tv-corpus.csv")
  unlink(csv)
  write_corpus_csv(out, csv)
  expect_equal(utils::read.csv(csv)$path, reference_run()$path)
  expect_error(write_corpus_csv(out, csv), class = "tidyvision_error_exists")
})

test_that("the tagger and the face detector run through the same machinery", {
  skip_if_no_engine()
  tools <- list.files(system.file("extdata", "images", "tools", package = "tidyvision"), full.names = TRUE)[1:3]
  out <- corpus_out("tags.sqlite")
  classify_folder("imagenet", tools, out, top_k = 2, overwrite = TRUE, verbose = FALSE)
  expect_equal(read_corpus(out)[c("path", "tag", "confidence", "source")],
               autotag(tools, top_k = 2, verbose = FALSE), tolerance = 1e-6, ignore_attr = TRUE)

  photos <- face_photos()[c("astronaut_collins", "biden")]
  out <- corpus_out("faces.sqlite")
  classify_folder("faces", photos, out, overwrite = TRUE, chunk_size = 1, verbose = FALSE)
  got <- read_corpus(out)
  want <- detect_faces(photos, verbose = FALSE)
  expect_equal(got[names(want)], want[order(want$path, method = "radix"), ], ignore_attr = TRUE)
  expect_false(any(got$missing))
  expect_equal(read_corpus(out, counts = TRUE)$n, count_faces(got)$n)
})

test_that("a trained detector runs through the same machinery: its boxes, and counts per image", {
  skip_if_no_engine()
  det <- shape_detector()  # shared with the detection tests (trained once per session)
  shapes <- shape_boxes()$path[21:26]  # the validation shapes, two of them empty
  out <- corpus_out("boxes.sqlite")
  classify_folder(det, shapes, out, chunk_size = 4, overwrite = TRUE, verbose = FALSE)
  got <- read_corpus(out)
  want <- detect_objects(shapes, model = det, verbose = FALSE)
  want <- want[order(want$path, method = "radix"), ]
  cols <- c("path", "object", "class", "confidence", "xmin", "ymin", "xmax", "ymax")
  expect_equal(got[cols], want[cols], ignore_attr = TRUE, tolerance = 1e-5)
  expect_gt(sum(!is.na(got$object)), 0)  # it found shapes
  counts <- read_corpus(out, counts = TRUE)
  expect_equal(counts[c("path", "class", "n")], count_objects(want)[c("path", "class", "n")], ignore_attr = TRUE)
})

test_that("bad arguments are classed errors", {
  out <- corpus_out("never.sqlite")
  expect_error(classify_folder(42, "x", out), class = "tidyvision_error_bad_argument")
  expect_error(classify_folder("imagenet", "x", out, shards = 0), class = "tidyvision_error_bad_argument")
  expect_error(classify_folder("imagenet", "x", out, shards = 2, shard = 3), class = "tidyvision_error_bad_argument")
  withr::local_envvar(SLURM_ARRAY_TASK_ID = "", SLURM_ARRAY_TASK_COUNT = "")
  expect_error(classify_folder("imagenet", "x", out, shard = "slurm"), class = "tidyvision_error_not_in_slurm")
  expect_error(classify_folder("imagenet", "x", out, frobnicate = 1), class = "tidyvision_error_bad_argument")
  expect_error(read_corpus(out), class = "tidyvision_error_path_not_found")
})

test_that("shard = 'slurm' takes its part from the array job's environment", {
  withr::local_envvar(SLURM_ARRAY_TASK_ID = "4", SLURM_ARRAY_TASK_COUNT = "5", SLURM_ARRAY_TASK_MIN = "0")
  expect_equal(tidyvision:::corpus_shards(1, "slurm", NULL)[c("n", "run")], list(n = 5L, run = 5L))
  expect_equal(basename(tidyvision:::corpus_files("a/b.sqlite", 12)[c(1, 12)]),
               c("b.shard-01.sqlite", "b.shard-12.sqlite"))
})

test_that("slurm_template() fills in the resources", {
  tmpl <- slurm_template(cpus = 3, memory = "2G", walltime = "00:10:00", partition = "short")
  lines <- readLines(tmpl)
  expect_true(all(c("#SBATCH --cpus-per-task=<%= cpus %>", "export OMP_NUM_THREADS=<%= cpus %>") %in% lines))
  expect_true(any(grepl('else "2G"', lines, fixed = TRUE)))
  expect_true(any(grepl('else "short"', lines, fixed = TRUE)))
  expect_error(slurm_template(memory = 4), class = "tidyvision_error_bad_argument")
})

test_that("a corpus output feeds estimate_prevalence() by its path, as read_corpus() reads it", {
  skip_if_no_engine()
  reference_run()
  out <- corpus_out("reference.sqlite")
  labels <- read_corpus(out)
  readable <- labels[is.na(labels$problem), ]
  # the recommended pipeline: the fit's own 40 images are not drawn
  expect_message(coded <- sample_for_coding(readable, n = 40, seed = 3), "Left out 40 images",
                 class = "tidyvision_message_trained")
  coded$truth <- basename(dirname(coded$path))
  # the corrupt image has no prediction: left out, with one warning
  expect_warning(by_path <- estimate_prevalence(out, coded, truth, method = "all"),
                 class = "tidyvision_warning_unpredicted")
  by_table <- suppressWarnings(estimate_prevalence(labels, coded, truth, method = "all"))
  expect_equal(by_path, by_table)
  expect_equal(sort(unique(by_path$class)), c("blue", "red"))
  expect_equal(unique(by_path$n_coded), 40L)
})

test_that("another program's database is refused, with or without overwrite, and left as it was", {
  skip_if_no_engine()
  db <- file.path(tempdir(), "tv-survey.sqlite")
  unlink(db)
  con <- DBI::dbConnect(RSQLite::SQLite(), db)
  DBI::dbWriteTable(con, "respondents", data.frame(id = 1:3, answer = c("yes", "no", "yes")))
  DBI::dbDisconnect(con)
  before <- tools::md5sum(db)
  paths <- reference_run()$path[1:4]
  expect_error(classify_folder(corpus_fit(), paths, db, verbose = FALSE),
               "did not write.*respondents", class = "tidyvision_error_not_a_corpus")
  expect_error(classify_folder(corpus_fit(), paths, db, overwrite = TRUE, verbose = FALSE),
               "did not write.*respondents", class = "tidyvision_error_not_a_corpus")
  expect_equal(tools::md5sum(db), before)
  notes <- file.path(tempdir(), "tv-notes.sqlite")
  writeLines("my notes, not a database", notes)
  expect_error(classify_folder(corpus_fit(), paths, notes, overwrite = TRUE, verbose = FALSE),
               "not an SQLite database", class = "tidyvision_error_not_a_corpus")
  expect_equal(readLines(notes), "my notes, not a database")
})

test_that("a changed image is done again, a removed one keeps its rows as missing, and the run says so", {
  skip_if_no_engine()
  fit <- corpus_fit()
  reference <- reference_run()
  dir <- file.path(tempdir(), "tv-corpus-changes")
  unlink(dir, recursive = TRUE)
  dir.create(dir)
  blue <- reference$path[reference$.pred_class == "blue"][1:6]
  red <- reference$path[reference$.pred_class == "red" & is.na(reference$problem)][1:6]
  file.copy(c(blue, red), dir, copy.date = TRUE)
  out <- corpus_out("changes.sqlite")
  classify_folder(fit, dir, out, chunk_size = 4, batch_size = 4, overwrite = TRUE, verbose = FALSE)
  before <- read_corpus(out)
  changed <- file.path(expand_paths(dir), basename(blue[1]))
  removed <- file.path(expand_paths(dir), basename(blue[2]))
  file.copy(red[1], changed, overwrite = TRUE)  # a blue image's name now holds a red image
  unlink(removed)
  Sys.setFileTime(file.path(dir, basename(blue[3])), Sys.time() + 60)  # touched only

  expect_message(
    expect_message(status <- classify_folder(fit, dir, out, chunk_size = 4, batch_size = 4, verbose = FALSE),
                   "1 image changed since its rows were written", class = "tidyvision_message_changed"),
    "1 image of .* is gone from disk", class = "tidyvision_message_missing")
  expect_equal(status$changed, 1L)
  expect_equal(status$missing, 1L)
  after <- read_corpus(out)
  expect_equal(after$path, before$path)
  expect_equal(as.character(after$.pred_class[after$path == changed]), "red")
  expect_equal(after$.pred_red[after$path == changed], reference$.pred_red[reference$path == red[1]],
               tolerance = 1e-5)
  expect_equal(after$missing, after$path == removed)
  keep <- after$path != changed
  expect_equal(after[keep, names(after) != "missing"], before[keep, names(before) != "missing"], ignore_attr = TRUE)
})

test_that("an output of an older tidyvision (no size, time, missing or trained columns) reads and resumes", {
  skip_if_no_engine()
  reference <- reference_run()
  out <- corpus_out("format1.sqlite")
  file.copy(corpus_out("reference.sqlite"), out, overwrite = TRUE)
  con <- DBI::dbConnect(RSQLite::SQLite(), out)
  for (col in c("size", "mtime_ns", "sha256", "missing")) DBI::dbExecute(con, paste("ALTER TABLE images DROP COLUMN", col))
  DBI::dbExecute(con, "UPDATE meta SET value = '1' WHERE key = 'format_version'")
  DBI::dbExecute(con, "UPDATE images SET chunk = NULL WHERE chunk > 10")  # a run stopped after chunk 10
  DBI::dbExecute(con, "DELETE FROM results WHERE path IN (SELECT path FROM images WHERE chunk IS NULL)")
  DBI::dbExecute(con, "DELETE FROM chunks WHERE chunk > 10")
  DBI::dbExecute(con, "ALTER TABLE results DROP COLUMN trained")  # format 2 had none
  DBI::dbDisconnect(con)

  expect_message(old <- read_corpus(out), "41 images .* not done yet", class = "tidyvision_message_pending")
  expect_true(all(is.na(old$trained)))  # unknown until a run upgrades it
  expect_equal(old[names(old) != "trained"], reference[match(old$path, reference$path), names(reference) != "trained"],
               ignore_attr = TRUE)
  suppressWarnings(classify_folder(corpus_fit(), corpus_folder(), out, chunk_size = 8, batch_size = 8,
                                   verbose = FALSE))
  expect_identical(read_corpus(out), reference)
})

test_that("a full disk is a classed error that says so and keeps the finished chunks", {
  skip_if_no_engine()
  disk <- local_tiny_disk()
  out <- file.path(disk, "full.sqlite")
  paths <- reference_run()$path
  classify_folder(corpus_fit(), paths[1:16], out, chunk_size = 8, batch_size = 8, verbose = FALSE)
  filler <- fill_disk(disk)
  expect_error(classify_folder(corpus_fit(), paths[1:40], out, chunk_size = 8, batch_size = 8, verbose = FALSE),
               "is full.*finished chunks are kept", class = "tidyvision_error_disk_full")
  unlink(filler)
  expect_equal(read_corpus(out), reference_run()[1:16, ], ignore_attr = TRUE)
})

test_that("classify_folder() flags the fit's own images and their resized and re-encoded copies as trained", {
  skip_if_no_engine()
  fit <- corpus_fit()  # saved and loaded: the card keeps what the fit saw
  expect_equal(nrow(fit$seen), 40)
  expect_setequal(fit$seen$split, c("train", "val"))
  expect_match(fit$seen$sha256, "^[0-9a-f]{64}$")
  expect_match(fit$seen$phash, "^[0-9a-f]{48}$")
  got <- trained_corpus()
  own <- own_images(got$path)
  copy <- copied_images(got$path)
  bad <- !is.na(got$problem)
  expect_equal(c(sum(own), sum(copy), sum(bad)), c(40, 2, 1))
  expect_true(all(got$trained[own]))
  expect_true(all(got$trained[copy]))
  expect_false(any(got$trained[!own & !copy & !bad]))
  expect_true(is.na(got$trained[bad]))
  # tasks without a fit have no training images
  out <- corpus_out("tags-trained.sqlite")
  classify_folder("imagenet", got$path[1:2], out, overwrite = TRUE, top_k = 1, verbose = FALSE)
  expect_false(any(read_corpus(out)$trained))
})

test_that("sample_for_coding() leaves out the rows that trained the model, and says how many", {
  skip_if_no_engine()
  got <- trained_corpus()
  expect_message(coded <- sample_for_coding(got, n = sum(!got$trained %in% TRUE)),
                 "Left out 42 images that trained or validated", class = "tidyvision_message_trained")
  expect_setequal(coded$path, got$path[!got$trained %in% TRUE])
  expect_equal(unique(coded$.inclusion_prob), 1)
  expect_no_message(all <- sample_for_coding(got, n = nrow(got), include_trained = TRUE))
  expect_setequal(all$path, got$path)
})
