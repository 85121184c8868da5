"""A run's machinery: building its pieces (build), the run directory and its saved
config (workdir, saved_config, metrics_log), checkpoints, the guards against
divergence, signals and out-of-memory, devices and processes (parallel), and
files written whole or not at all (files)."""
