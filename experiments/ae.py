"""Deterministic autoencoder baseline: the MLP of vae.py with z = mu, no sampling, no KL.

    python -m vae_jax.main --config=experiments/ae.py

The loss is −log p(x|z=mu(x)) alone. A point-mass encoder has no finite KL to
the prior, so `kl` and `nelbo` are reported as null: compare its `recon` with
the VAE's to see what the KL term costs in reconstruction. No prior samples
are drawn (the latent space is not regularized toward N(0, I)).

Measured (docs/results.md), 20,000 steps, no importance-weighted
evaluation: held-out recon 205.86 nats.
"""

from vae_jax import configs


def get_config(arg: str = ''):
  switches = configs.parse_arg(arg, ('tiny',))
  config = configs.get_config()  # the plain VAE of vae.py
  config.train.num_steps = 20_000
  config.objective.name = 'ae'
  return configs.make_tiny(config) if 'tiny' in switches else config
