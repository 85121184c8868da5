"""WAE-MMD (λ = 100): the plain VAE's network on Fashion-MNIST with an MMD prior penalty.

    python -m vae_jax.main --config=experiments/wae_mmd.py                 # Gaussian encoder
    python -m vae_jax.main --config=experiments/wae_mmd.py:deterministic   # z = mu
    python -m vae_jax.main --config=experiments/wae_mmd.py:tiny            # a smoke test

Loss = recon + λ·MMD²(q(z), p(z)) (Tolstikhin et al. 2018): recon =
−log p(x|z) of the Bernoulli decoder, MMD² the unbiased U-statistic on each
minibatch against as many draws of p(z) = N(0, I), with the inverse
multiquadratic kernel k(x, y) = Σ_s sC/(sC + ‖x − y‖²), C = 2·d_z,
s ∈ {0.1, 0.2, 0.5, 1, 2, 5, 10}. No KL enters the loss; kl (and nelbo,
nll_iw) are reported for q(z|x) = N(mu, exp(logvar)). Network (20 latents),
data and optimizer of experiments/vae.py, so the two sit in one table; the
paper's MNIST model has 8 latents (`--config.model.latent_dim=8`).

λ = 100, not the paper's 10: the paper's reconstruction cost is ≈ 1 per
MNIST image, this Bernoulli NLL ≈ 200 nats. experiments/sweeps/wae_lambda.py
compares λ ∈ {10, 100, 1000, 10000} (docs/results.md).

Measured (docs/results.md) with λ = 10 (--config.objective.wae_lambda=10),
20,000 steps, seed 0, Gaussian encoder: held-out
recon 205.90 nats (the VAE's 218.57), aggregate posterior's moment-matched KL
to the prior 0.08 nats; kl 308.11 and nll_iw (k = 5000) 505.72 nats: without
a KL term the encoder variances shrink, a poor importance proposal.
"""

from vae_jax import configs


def get_config(arg: str = ''):
  switches = configs.parse_arg(arg, ('deterministic', 'tiny'))
  config = configs.get_config()  # the network, data and optimizer of vae.py
  config.objective.name = 'wae_mmd'
  config.objective.wae_lambda = 100.0
  if 'deterministic' in switches:
    config.objective.wae_encoder = 'deterministic'
  config.train.num_steps = 20_000
  return configs.make_tiny(config) if 'tiny' in switches else config
