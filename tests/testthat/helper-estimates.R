# A simulated corpus: `n` images, a true class per image with share
# `share` of "protest", and a classifier with class-dependent errors
# (it finds `sens` of the protests and calls 1 - `spec` of the others protest).
sim_corpus <- function(n = 3000, share = 0.3, sens = 0.9, spec = 0.8, seed = 1, probs = FALSE) {
  withr::with_seed(seed, {
    truth <- ifelse(runif(n) < share, "protest", "other")
    right <- runif(n) < ifelse(truth == "protest", sens, spec)
    pred <- ifelse(right, truth, ifelse(truth == "protest", "other", "protest"))
    out <- tibble::tibble(path = sprintf("/corpus/img%05d.jpg", seq_len(n)),
                          .pred_class = factor(pred, c("other", "protest")), truth = truth)
    if (probs) {
      p <- pmin(pmax(ifelse(pred == "protest", 0.8, 0.2) + rnorm(n, 0, 0.1), 0.01), 0.99)
      out$.pred_protest <- p
      out$.pred_other <- 1 - p
    }
    out
  })
}

# Code a sample: the true class joined from the corpus.
code_sample <- function(corpus, sample) {
  sample$label <- corpus$truth[match(sample$path, corpus$path)]
  sample
}
