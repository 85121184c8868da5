"""The config saved in a run directory, as a config file: --config=<this file>:WORKDIR.

vae_jax.main adds it when --workdir=DIR comes without --config, so that a run
resumes (or is evaluated or scored) with its own config and --config.a.b=v
overrides still apply.
"""

from vae_jax.run import workdir


def get_config(workdir_path: str):
  return workdir.load_config(workdir_path)
