#' @importFrom ggplot2 autoplot
#' @export
ggplot2::autoplot

#' @export
generics::augment
