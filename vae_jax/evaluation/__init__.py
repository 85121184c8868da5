"""Held-out evaluation: the loop over the evaluation set, the evaluators a run reports
(ELBO, importance-weighted bound, diagnostics, disentanglement scores), and the
host-side maths of the diagnostics and scores."""
