#' @importFrom ggplot2 autoplot
#' @export
ggplot2::autoplot

#' @export
generics::augment

#' @importFrom generics explain
#' @export
generics::explain
