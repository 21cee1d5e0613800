#' What tidyvision is using
#'
#' The Python interpreter the engine runs in, its version and the libpython
#' that R loaded for it, package versions, the device (cpu, cuda or mps),
#' whether bf16 autocast runs fast on this CPU (AMX or AVX-512 BF16), the
#' number of threads, how much the engine's cache holds ([tv_cache()]), and
#' which backbones have pretrained weights on disk so
#' they work offline.
#'
#' @return A `tv_config` list; printing it shows a summary.
#' @export
#' @examplesIf tv_available()
#' tv_config()
tv_config <- function() {
  cfg <- engine_call("config.describe")
  cfg$versions <- lapply(cfg$versions, function(v) v %||% NA_character_)
  cfg$libpython <- reticulate::py_config()$libpython %||% NA_character_
  structure(cfg, class = "tv_config")
}

#' @export
format.tv_config <- function(x, ...) {
  versions <- unlist(x$versions)
  c(
    paste0("Python:    ", x$python, " (", x$python_version, ")"),
    paste0("libpython: ", x$libpython),
    paste0("Device:    ", x$device, ", precision ", x$precision,
           if (isTRUE(x$bf16_fast)) " (bf16 is fast on this CPU)" else ""),
    paste0("Threads:   ", x$threads, " of ", x$cores, " cores"),
    paste0("Backbones with weights on disk: ",
           if (length(x$backbones_offline)) paste(x$backbones_offline, collapse = ", ") else "none"),
    paste0("Cache:     ", format_bytes(x$cache_bytes), " of ", format_bytes(x$cache_budget),
           " (see tv_cache(); tv_cache_clear() frees it)"),
    paste0("Versions:  ", paste(names(versions), versions, sep = " ", collapse = ", "))
  )
}

#' @export
print.tv_config <- function(x, ...) {
  print_titled(x, "tidyvision configuration")
}

format_bytes <- function(x) format(structure(x, class = "object_size"), units = "auto", standard = "IEC")
