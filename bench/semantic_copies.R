# Does find_duplicates(method = "embedding") find the plain copies phash finds?
# The 89 shipped photos, each with a half-size PNG and a JPEG quality-40 copy:
# pair recall (copy-source pairs grouped together) of the perceptual hash, of
# the cosine threshold alone, and of find_duplicates(method = "embedding"),
# which joins the two.
# Usage: Rscript bench/semantic_copies.R [threshold]
if (file.exists("DESCRIPTION")) pkgload::load_all(".", quiet = TRUE) else library(tidyvision)
source(file.path("bench", "fixtures.R"))
args <- commandArgs(trailingOnly = TRUE)
threshold <- if (length(args)) as.numeric(args[1]) else 0.85
src <- list.files(system.file("extdata", "images", package = "tidyvision"), recursive = TRUE, full.names = TRUE)
dir <- tempfile("bench-semantic-")
dir.create(dir)
fx <- bench_fixtures()
kinds <- c(half = "half", q40 = "jpeg40")
copies <- lapply(names(kinds), function(k) vapply(seq_along(src), function(i) {
  fx$write_copy(src[i], file.path(dir, sprintf("%03d_%s.%s", i, k, if (k == "half") "png" else "jpg")), kinds[[k]])
}, ""))
paths <- c(src, unlist(copies))
source_of <- c(seq_along(src), rep(seq_along(src), length(kinds)))
kind_of <- c(rep("source", length(src)), rep(names(kinds), each = length(src)))
recall <- function(group, kind) mean(group[kind_of == kind] == group[match(source_of[kind_of == kind], source_of)])
emb <- image_embeddings(paths, verbose = FALSE)
alone <- tidyvision:::engine_call("prepare.group_embeddings", tidyvision:::py_array(emb$embedding), threshold)
groups <- list(
  phash = find_duplicates(paths, method = "phash")$group,
  `cosine alone` = as.integer(alone[[1]]) + 1L,
  `method = "embedding"` = find_duplicates(emb, method = "embedding", threshold = threshold)$group
)
unit <- emb$embedding / sqrt(rowSums(emb$embedding^2))
cos_to_source <- rowSums(unit * unit[match(source_of, source_of), ])
cat(sprintf("%d sources, %d copies; cosine threshold %.2f\n", length(src), length(paths) - length(src), threshold))
for (k in names(kinds)) cat(sprintf("median cosine of a %s copy to its source: %.3f\n", k, stats::median(cos_to_source[kind_of == k])))
for (g in names(groups)) {
  cat(sprintf("%-22s pair recall: half-size %2d of %d, JPEG q40 %2d of %d; groups %d\n", g,
              round(recall(groups[[g]], "half") * length(src)), length(src),
              round(recall(groups[[g]], "q40") * length(src)), length(src), length(unique(groups[[g]]))))
}
