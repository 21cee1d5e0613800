#' What tidyvision is using
#'
#' The Python interpreter the engine runs in, its version and the libpython
#' that R loaded for it, package versions, the device (cpu, cuda or mps),
#' whether torch runs bf16 kernels on this CPU (as torch reports it, so an
#' emulated or virtual CPU is seen as it runs) and which precision each
#' measured backbone, image size and batch size got and why, the
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
    paste0("Device:    ", x$device, if (x$device != "cpu") paste0(", precision ", x$precision)),
    format_precision(x),
    paste0("Threads:   ", x$threads, " of ", x$cores, " cores"),
    paste0("Backbones with weights on disk: ",
           if (length(x$backbones_offline)) paste(x$backbones_offline, collapse = ", ") else "none"),
    paste0("Cache:     ", format_bytes(x$cache_bytes), " of ", format_bytes(x$cache_budget),
           " (see tv_cache(); tv_cache_clear() frees it)"),
    paste0("Versions:  ", paste(names(versions), versions, sep = " ", collapse = ", "))
  )
}

# Why a precision is used: what torch runs here, and what was measured.
format_precision <- function(x) {
  if (x$device != "cpu") return(character())
  kernels <- paste0("Precision: torch's CPU kernels are ", x$cpu_capability,
                    if (isTRUE(x$bf16_kernels)) " with bf16: each precision is timed once per backbone, size and batch, and the faster kept" else
                      " without bf16: fp32")
  m <- x$precision_measured
  if (!isTRUE(x$bf16_kernels) || !length(m$kind)) return(kernels)
  c(kernels, sprintf("  %s %s at %d px, batch %d: %s (bf16 %.2fx fp32: %.0f vs %.0f ms)",
                     vapply(m$kind, function(k) if (k == "train") "training" else "inference", ""),
                     unlist(m$backbone), as.integer(unlist(m$image_size)), as.integer(unlist(m$batch_size)),
                     unlist(m$precision), unlist(m$ratio), unlist(m$bf16_ms), unlist(m$fp32_ms)))
}

#' @export
print.tv_config <- function(x, ...) {
  print_titled(x, "tidyvision configuration")
}

format_bytes <- function(x) format(structure(x, class = "object_size"), units = "auto", standard = "IEC")
