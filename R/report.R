# `make demo`: render the report template on a folder of images.
render_report <- function(data = system.file("extdata", "images", package = "tidyvision"),
                          output_dir = "report") {
  rlang::check_installed("rmarkdown")
  data <- check_folder(data)
  dir.create(output_dir, showWarnings = FALSE, recursive = TRUE)
  output_dir <- normalizePath(output_dir)
  work <- tempfile("tidyvision-report-")
  dir.create(work)
  on.exit(unlink(work, recursive = TRUE), add = TRUE)
  template <- system.file("report", "report.Rmd", package = "tidyvision")
  file.copy(template, work)
  out <- rmarkdown::render(
    file.path(work, "report.Rmd"),
    params = list(data = data, output_dir = output_dir),
    output_dir = work, intermediates_dir = work, knit_root_dir = work,
    envir = new.env(), quiet = TRUE
  )
  target <- file.path(output_dir, "tidyvision-report.html")
  if (!file.copy(out, target, overwrite = TRUE)) {
    tv_abort("Can't write the report to {.path {target}}.", class = "write_failed")
  }
  cli::cli_inform(c(v = "Report written to {.path {target}}"))
  invisible(target)
}
