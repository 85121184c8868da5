"""β-VAE (β = 4) on procedural dSprites, 10 latents, Bernoulli decoder.

    python -m vae_jax.main --config=experiments/beta_vae.py        # Burgess conv network
    python -m vae_jax.main --config=experiments/beta_vae.py:fc     # 1200-unit MLP
    python -m vae_jax.main --config=experiments/beta_vae.py:reference_conv  # the study's conv
    python -m vae_jax.main --config=experiments/beta_vae.py:fc,tiny  # a smoke test

Loss = recon + 4·KL (Higgins et al. 2017). Three networks
(`vae_jax.configs.dsprites_experiment`):
- default `conv` (30,000 steps): Burgess et al. (2018), 4 conv layers (32
  channels, 4×4, stride 2) → FC 256 → FC 256 → 10 latents, mirrored decoder.
- `:fc` (10,000 steps): the fully connected network of the β-VAE paper and
  disentanglement_lib, 4096 → 1200 → 1200 → 10 (ReLU), decoder 10 → 1200 →
  1200 → 1200 → 4096 (tanh).
- `:reference_conv` (30,000 steps): disentanglement_lib's conv network
  (channels 32, 32, 64, 64, kernels 4, 4, 2, 2, a 256-unit layer), whose
  published score ranges docs/results.md compares with.

dSprites is rendered in JAX from factor indices (no download); 10,000 fixed
random factor combinations are held out for the ELBO. Adam 5e-4, batch 64.
Every evaluation reports the five disentanglement scores on the encoder mean
(the final one with the reference sample counts); the final one also writes
a traversal GIF and the ground-truth factor traversals (images/factors_0.png).

Measured (docs/results.md), `:fc` with a ReLU decoder
(--config.model.decoder_activation=relu), 10,000 steps, final evaluation with the
reference disentanglement protocol and the k = 100 bound: held-out nelbo
89.51 nats (recon 77.08, kl 12.43); BetaVAE 0.824, FactorVAE 0.692, MIG
0.081, DCI disentanglement 0.144 — inside the published β-VAE ranges. Conv
default, 30,000 steps: nelbo 71.83 (recon 59.87, kl 11.96); BetaVAE 0.810,
FactorVAE 0.671, MIG 0.304, DCI disentanglement 0.445.
"""

from vae_jax import configs


def get_config(arg: str = ''):
  switches = configs.parse_arg(arg, (*configs.DSPRITES_NETWORKS, 'tiny'))
  config = configs.dsprites_experiment(configs.choose(switches, configs.DSPRITES_NETWORKS))
  config.objective.name = 'beta'
  config.objective.beta = 4.0
  return configs.make_tiny(config) if 'tiny' in switches else config
