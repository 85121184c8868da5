"""Conditional VAE: the MLP VAE of vae.py with the one-hot class fed to encoder and decoder.

    python -m vae_jax.main --config=experiments/cvae.py

Fashion-MNIST labels (10 classes) condition q(z|x, y) and p(x|z, y); the
pictures include `conditional_<step>.png`: row k decodes the same prior
draws with class k (same z → same "style", the label sets the garment).

Measured (docs/results.md), 20,000 steps: held-out nelbo 235.05 nats
(recon 218.73, kl 16.31), nll_iw 231.24 nats (k = 5000).
"""

from vae_jax import configs


def get_config(arg: str = ''):
  switches = configs.parse_arg(arg, ('tiny',))
  config = configs.get_config()  # the plain VAE of vae.py
  config.train.num_steps = 20_000
  config.model.conditional = True
  return configs.make_tiny(config) if 'tiny' in switches else config
