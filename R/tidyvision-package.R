#' tidyvision: images as data for social science research
#'
#' Tidy verbs over a bundled Python engine (torch) for the workflow of
#' Webb Williams, Casas & Wilkerson (2020): list and deduplicate images,
#' split them, fine-tune a pretrained network, validate it honestly, detect
#' objects and faces, and check automatic taggers against hand labels.
#'
#' @keywords internal
#' @importFrom rlang caller_env .data %||%
#' @importFrom generics augment
#' @importFrom stats predict
"_PACKAGE"

# Column names used as tidy-evaluation defaults (`label`, `.pred_class`) or
# in dplyr verbs.
utils::globalVariables(c(".pred_class", "label", "tagged", "truth"))

# The Python engine, imported on first use (delay_load), never at load time.
engine <- NULL

.onLoad <- function(libname, pkgname) {
  engine <<- reticulate::import_from_path(
    "tidyvision",
    path = system.file("python", package = pkgname),
    delay_load = TRUE
  )
  # tune's generic dispatches to our method too, if tune is installed.
  vctrs::s3_register("tune::select_best", "tv_grid")
  register_base_methods()
  invisible()
}
