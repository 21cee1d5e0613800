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
  folder <- corpus_folder()
  out <- corpus_out("slurm.sqlite")
  unlink(tidyvision:::existing_corpus_files(out))
  work <- file.path(tempdir(), "tv-slurm-work")  # future.batchtools writes .future/ here
  dir.create(work, showWarnings = FALSE)
  tmpl <- slurm_template(cpus = 1, memory = "1500M", walltime = "00:15:00")

  child <- callr::r_bg(function(fit_dir, folder, out, tmpl) {
    future::plan(future.batchtools::batchtools_slurm, template = tmpl)
    tidyvision::classify_folder(fit_dir, folder, out, shards = 3, chunk_size = 8, batch_size = 8)
  }, args = list(fit_dir, folder, out, tmpl), wd = work, libpath = .libPaths(),
  env = c(callr::rcmd_safe_env(), R_LIBS = paste(.libPaths(), collapse = ":"),
          SLURM_CONF = Sys.getenv("SLURM_CONF"), USER = Sys.getenv("USER")))
  on.exit(child$kill(), add = TRUE)
  files <- tidyvision:::corpus_files(out, 3)
  deadline <- Sys.time() + 240
  repeat {
    status <- if (all(file.exists(files))) tidyvision:::corpus_status(files)
    if (!is.null(status) && any(status$done >= 8 & status$pending > 0, na.rm = TRUE)) break
    if (!child$is_alive() || Sys.time() > deadline) break
    Sys.sleep(0.1)
  }
  jobs <- slurm_jobs()
  expect_gt(length(jobs), 0)
  processx::run("scancel", jobs)
  child$wait(60000)
  child$kill()
  partial <- tidyvision:::corpus_status(files)
  expect_gt(sum(partial$pending), 0)
  expect_gt(sum(partial$done), 0)

  withr::local_dir(work)
  future::plan(future.batchtools::batchtools_slurm, template = tmpl)
  on.exit(future::plan("sequential"), add = TRUE)
  suppressWarnings(classify_folder(fit_dir, folder, out, shards = 3, chunk_size = 8, batch_size = 8,
                                   verbose = FALSE))
  expect_equal(sum(tidyvision:::corpus_status(files)$pending), 0)
  expect_equal(read_corpus(out), reference, tolerance = 1e-6)
})
