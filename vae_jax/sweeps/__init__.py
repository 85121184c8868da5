"""Sweeps: the plan of a sweep file (members, groups, shards; no device work), running it as
populations, and the disentanglement study's per-method table."""
