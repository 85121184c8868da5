"""Tiny config for tests: a 16-unit MLP VAE on procedural dSprites, a few steps.

    python -m vae_jax.main --config=experiments/test.py --workdir=/tmp/vae_test

Runs in seconds on a 2-core CPU; its numbers mean nothing (a smoke test).
"""

from vae_jax import configs


def get_config():
  config = configs.get_config()
  config.data.name = 'dsprites'
  config.data.batch_size = 8
  config.data.eval_size = 24
  config.model.hidden_dims = (16,)
  config.model.latent_dim = 3
  config.train.num_steps = 6
  config.train.log_every_steps = 2
  config.train.eval_every_steps = 3
  config.train.checkpoint_every_steps = 3
  config.eval.batch_size = 16
  config.eval.num_images = 4
  config.eval.iw_samples = 8
  return config
