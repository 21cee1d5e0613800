#' The engine's memory: what it keeps between calls
#'
#' The Python engine keeps what repeated calls reuse: the decoded training
#' images and the frozen body's features (so [tune_grid()] or a refit decodes
#' once), and the last model each verb loaded. Everything sits in one cache
#' with a size budget (3 GiB by default); past it the least recently used
#' entries go first. `tv_cache()` shows what it holds, `tv_cache_clear()`
#' frees it and gives the memory back to the system.
#'
#' @param budget_gb A new budget in GiB, or `NULL` to keep the current one.
#' @param space One space to clear (a value of `tv_cache()$space`), or `NULL`
#'   for all of them.
#' @return `tv_cache()`: a tibble `space, entries, bytes`, with the budget in
#'   bytes and the process's resident memory (`rss`) as attributes.
#'   `tv_cache_clear()`: the bytes freed, invisibly.
#' @export
#' @examplesIf tv_available()
#' tv_cache()
#' tv_cache_clear()
tv_cache <- function(budget_gb = NULL) {
  if (!is.null(budget_gb)) {
    check_scalar(budget_gb, function(x) x > 0, "a positive number", "budget_gb", caller_env())
    engine_call("cache.set_budget", budget_gb * 1024^3)
  }
  out <- engine_call("cache.describe")
  structure(as_schema(out, "cache"), budget = out$budget, rss = engine_call("cache.rss_bytes"))
}

# The engine's spaces (the first argument of CACHE.get() in the Python
# engine); a misspelt name must not clear nothing in silence.
CACHE_SPACES <- c("classifier", "decoded", "detector", "embeddings", "faces", "features", "tagger")

#' @rdname tv_cache
#' @export
tv_cache_clear <- function(space = NULL) {
  if (!is.null(space)) check_choice(space, union(CACHE_SPACES, engine_call("cache.describe")$space))
  invisible(engine_call("cache.clear", space))
}
