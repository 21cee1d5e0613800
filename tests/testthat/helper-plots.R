# Draw a plot to a grob without leaving an Rplots.pdf behind.
grob_of <- function(p) {
  grDevices::pdf(NULL)
  on.exit(grDevices::dev.off())
  ggplot2::ggplotGrob(p)
}
