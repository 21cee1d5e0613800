test_that("every export is named in the README or an article, and every article is linked", {
  root <- test_path("..", "..")
  skip_if_not(file.exists(file.path(root, "README.md")), "run from the source tree")
  exports <- parseNamespaceFile(basename(normalizePath(root)), dirname(normalizePath(root)))$exports
  readme <- paste(readLines(file.path(root, "README.md"), warn = FALSE), collapse = "\n")
  articles <- list.files(file.path(root, "vignettes"), pattern = "[.]Rmd$", full.names = TRUE)
  text <- paste(c(readme, unlist(lapply(articles, readLines, warn = FALSE))), collapse = "\n")
  named <- vapply(exports, function(f) grepl(paste0("`", f, "()`"), text, fixed = TRUE), TRUE)
  expect_true(all(named), info = paste("not named:", paste(exports[!named], collapse = ", ")))
  start <- paste(readLines(file.path(root, "vignettes", "start-here.Rmd")), collapse = "\n")
  for (a in setdiff(tools::file_path_sans_ext(basename(articles)), "start-here")) {
    expect_match(start, sprintf('vignette("%s")', a), fixed = TRUE)
    expect_match(readme, sprintf('vignette("%s")', a), fixed = TRUE)
  }
})
