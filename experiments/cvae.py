"""Conditional VAE: the MLP VAE of vae.py with the one-hot class fed to encoder and decoder.

    python -m vae_jax.main --config=experiments/cvae.py

Fashion-MNIST labels (10 classes) condition q(z|x, y) and p(x|z, y); the
pictures include `conditional_<step>.png`: row k decodes the same prior
draws with class k (same z → same "style", the label sets the garment).

Measured on a 2-core CPU (see README "Results"): RUNTIME_AND_RESULT
"""

from vae_jax import configs


def get_config():
  config = configs.get_config()  # the plain VAE of vae.py
  config.train.num_steps = 20_000
  config.model.conditional = True
  return config
