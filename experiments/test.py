"""Tiny config for tests: the base MLP VAE on procedural dSprites, shrunk by configs.make_tiny.

    python -m vae_jax.main --config=experiments/test.py --workdir=/tmp/vae_test

Its numbers mean nothing (a smoke test).
"""

from vae_jax import configs


def get_config(arg: str = ''):
  configs.parse_arg(arg, ('tiny',))  # tiny already
  config = configs.get_config()
  config.data.name = 'dsprites'
  return configs.make_tiny(config)
