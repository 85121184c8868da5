"""Pictures: arrays → image files (figures, PIL), matplotlib plots in one style (plots),
a model's pictures (model_pictures), which of them an evaluation writes
(eval_pictures), and a sweep's plots (sweep_plots)."""
