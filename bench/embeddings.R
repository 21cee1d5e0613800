# image_embeddings() throughput, and find_duplicates(method = "embedding")
# on 20,000 images (goal: minutes, in memory, here).
#
# 1. The duplicate search alone, on 20,000 synthetic 1280-d vectors shaped
#    like EfficientNet-Lite0's pooled features (non-negative, sparse): 5,000
#    sources with 4 noisy copies each. Their embeddings go to the engine as
#    an R matrix (as image_embeddings() output does), so this times the
#    transfer, the blockwise similarities, the components and the table.
#    Peak memory is the process's high-water mark (VmHWM, reset first).
# 2. image_embeddings() on real photos: near-copies of the 89 shipped ones,
#    resized to a long side of 600-800 px (tests/python/fixtures.py), cold
#    (decode + forward pass, the model already loaded) and again from the cache.
# Usage: Rscript bench/embeddings.R [n_vectors] [n_photos]
if (file.exists("DESCRIPTION")) pkgload::load_all(".", quiet = TRUE) else library(tidyvision)
source(file.path("bench", "fixtures.R"))
args <- commandArgs(trailingOnly = TRUE)
n_vectors <- if (length(args) >= 1) as.integer(args[1]) else 20000L
n_photos <- if (length(args) >= 2) as.integer(args[2]) else 500L

peak_mb <- function() {
  status <- readLines("/proc/self/status")
  as.numeric(gsub("\\D", "", grep("^VmHWM", status, value = TRUE))) / 1024
}
reset_peak <- function() try(cat("5", file = "/proc/self/clear_refs"), silent = TRUE)
invisible(tidyvision:::engine_call("config.versions"))

# 1. Duplicates among synthetic embeddings --------------------------------
set.seed(1)
n_src <- n_vectors %/% 5
sources <- pmax(matrix(stats::rnorm(n_src * 1280), n_src) - 1, 0)
copies <- lapply(1:4, function(i) pmax(sources + matrix(stats::rnorm(n_src * 1280, sd = 0.15), n_src), 0))
emb <- do.call(rbind, c(list(sources), copies))
truth <- rep(seq_len(n_src), 5)
x <- tibble::tibble(path = sprintf("/bench/img%05d.jpg", seq_len(nrow(emb))), embedding = emb)
rm(sources, copies, emb)
invisible(gc())
reset_peak()
before <- peak_mb()
t <- system.time(dups <- find_duplicates(x, method = "embedding"))[["elapsed"]]
pairs <- function(x) sum(choose(x, 2))
both <- pairs(table(dups$group, truth))
cat(sprintf(paste0("find_duplicates(method = \"embedding\") on %d synthetic 1280-d embeddings: %.1f s; ",
                   "%d groups (truth %d); pair recall %.4f, precision %.4f; peak memory %.0f MB ",
                   "(%.0f MB above the %.0f MB before; the embedding matrix is %.0f MB in R)\n"),
            nrow(x), t, max(dups$group), n_src, both / pairs(table(truth)), both / pairs(table(dups$group)),
            peak_mb(), peak_mb() - before, before, utils::object.size(x$embedding) / 2^20))

# 2. Embedding throughput on real photos ------------------------------------
src <- list.files(system.file("extdata", "images", package = "tidyvision"), recursive = TRUE, full.names = TRUE)
root <- tempfile("bench-embeddings-")
paths <- unlist(bench_fixtures()$make_bench_copies(src, root, n_photos, long_side = 800L))
invisible(image_embeddings(src[1], verbose = FALSE))  # load the model first: time the images only
invisible(tidyvision:::engine_call("cache.clear", "embeddings"))
cold <- system.time(e <- image_embeddings(paths, verbose = FALSE))[["elapsed"]]
warm <- system.time(image_embeddings(paths, verbose = FALSE))[["elapsed"]]
t_dup <- system.time(d <- find_duplicates(e, method = "embedding"))[["elapsed"]]
cat(sprintf(paste0("image_embeddings(): %d photos (long side 600-800 px) in %.1f s = %.1f img/s cold; ",
                   "%.1f s = %.0f img/s from the cache; find_duplicates() on them %.2f s, %d groups of %d sources\n"),
            n_photos, cold, n_photos / cold, warm, n_photos / warm, t_dup, max(d$group), min(n_photos, length(src))))
cat(sprintf("=> 20,000 real photos: about %.0f min to embed at this rate, then the search as above\n",
            20000 / (n_photos / cold) / 60))
cat(sprintf("machine: %d cores, load average %s\n", parallel::detectCores(),
            paste(readLines("/proc/loadavg", warn = FALSE), collapse = "")))
unlink(root, recursive = TRUE)
