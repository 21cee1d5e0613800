# A real one-node SLURM cluster (tools/slurm.sh), started here if it isn't
# running, so this file passes when run alone.
local_slurm <- function(env = parent.frame()) {
  skip_if(!nzchar(Sys.which("slurmctld")) || !nzchar(Sys.which("munged")), "SLURM or munge is not installed")
  script <- normalizePath(test_path("..", "..", "tools", "slurm.sh"), mustWork = FALSE)
  skip_if_not(file.exists(script), "tools/slurm.sh is not in this source tree")
  res <- processx::run(script, "start", error_on_status = FALSE)
  if (res$status != 0) testthat::fail(paste("tools/slurm.sh start failed:", res$stderr))
  conf <- sub("^export SLURM_CONF=", "", utils::tail(strsplit(trimws(res$stdout), "\n")[[1]], 1))
  withr::local_envvar(SLURM_CONF = conf, USER = Sys.getenv("USER", "root") %||% "root", .local_envir = env)
  if (!nzchar(Sys.getenv("USER"))) withr::local_envvar(USER = "root", .local_envir = env)
  conf
}

slurm_jobs <- function() {
  out <- processx::run("squeue", c("--noheader", "-o", "%i"), error_on_status = FALSE)$stdout
  trimws(strsplit(out, "\n")[[1]])
}

test_that("3 shards as SLURM jobs equal the local run, and a cancelled shard resumes to it", {
  skip_if_no_engine()
  skip_if_not_installed("future.batchtools")
  skip_if_not(installed_for_children(), "tidyvision is not installed for SLURM jobs")
  local_slurm()
  reference <- reference_run()
  fit_dir <- dirname(corpus_fit()$weights)
  # The last image is a gate that blocks its shard until the test opens it,
  # so that shard is always cancelled with work left: nothing races the cancel.
  gate <- corpus_gate("slurm-gate.jpg")
  images <- c(reference$path, gate)
  out <- corpus_out("slurm.sqlite")
  unlink(tidyvision:::existing_corpus_files(out))
  work <- file.path(tempdir(), "tv-slurm-work")  # future.batchtools writes .future/ here
  dir.create(work, showWarnings = FALSE)
  tmpl <- slurm_template(cpus = 1, memory = "1500M", walltime = "00:15:00")

  child <- callr::r_bg(function(fit_dir, images, out, tmpl) {
    future::plan(future.batchtools::batchtools_slurm, template = tmpl)
    tidyvision::classify_folder(fit_dir, images, out, shards = 3, chunk_size = 8, batch_size = 8)
  }, args = list(fit_dir, images, out, tmpl), wd = work, libpath = .libPaths(),
  env = c(callr::rcmd_safe_env(), R_LIBS = paste(.libPaths(), collapse = ":"),
          SLURM_CONF = Sys.getenv("SLURM_CONF"), USER = Sys.getenv("USER")))
  on.exit(child$kill(), add = TRUE)
  files <- tidyvision:::corpus_files(out, 3)
  gated <- function() {  # the gate's shard file, and how many images it does before the gate
    if (!all(file.exists(files))) return(NULL)
    has <- vapply(files, function(f) tryCatch({
      con <- DBI::dbConnect(RSQLite::SQLite(), f, flags = RSQLite::SQLITE_RO)
      on.exit(DBI::dbDisconnect(con))
      DBI::dbGetQuery(con, "SELECT count(*) FROM images WHERE path = ?", params = list(gate))[[1]] == 1
    }, error = function(e) FALSE), TRUE)
    if (!any(has)) return(NULL)
    n <- tidyvision:::corpus_status(files[has])$images
    list(file = files[has], before = (n - 1) %/% 8 * 8)  # whole batches of 8 before the gate's
  }
  wait_until(function() !is.null(gated()) || !child$is_alive(), "the shards were planned")
  g <- gated()
  expect_gt(g$before, 0)
  wait_until(function() done_in(g$file) >= g$before || !child$is_alive(), "the gated shard reached its gate")
  expect_true(child$is_alive(), info = child$read_all_error())
  jobs <- slurm_jobs()
  expect_gt(length(jobs), 0)
  processx::run("scancel", jobs)
  child$wait(60000)
  child$kill()
  partial <- tidyvision:::corpus_status(files)
  expect_equal(partial$done[files == g$file], g$before)
  expect_gt(sum(partial$pending), 0)

  open_gate(gate, reference$path[1])
  withr::local_dir(work)
  future::plan(future.batchtools::batchtools_slurm, template = tmpl)
  on.exit(future::plan("sequential"), add = TRUE)
  suppressWarnings(classify_folder(fit_dir, images, out, shards = 3, chunk_size = 8, batch_size = 8,
                                   verbose = FALSE))
  expect_equal(sum(tidyvision:::corpus_status(files)$pending), 0)
  resumed <- read_corpus(out)
  expect_equal(resumed[resumed$path != gate, ], reference, tolerance = 1e-6, ignore_attr = TRUE)
  expect_equal(resumed$.pred_red[resumed$path == gate], reference$.pred_red[1], tolerance = 1e-6)
})

test_that("slurm_template() keeps an existing file unless overwrite = TRUE, and writes atomically", {
  dir <- file.path(tempdir(), "tv-templates")
  unlink(dir, recursive = TRUE)
  dir.create(dir)
  tmpl <- file.path(dir, "mine.tmpl")
  writeLines("my own template", tmpl)
  expect_error(slurm_template(file = tmpl), "already exists", class = "tidyvision_error_exists")
  expect_equal(readLines(tmpl), "my own template")
  expect_equal(slurm_template(cpus = 3, file = tmpl, overwrite = TRUE), tmpl)
  expect_true("export OMP_NUM_THREADS=<%= cpus %>" %in% readLines(tmpl))
  expect_equal(list.files(dir, all.files = TRUE, no.. = TRUE), "mine.tmpl")  # no temporary file left
  expect_error(slurm_template(file = dir), "must be the path of a file", class = "tidyvision_error_bad_argument")
  expect_error(slurm_template(file = tmpl, overwrite = NA), class = "tidyvision_error_bad_argument")
})
