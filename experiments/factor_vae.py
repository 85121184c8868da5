"""FactorVAE (γ = 10) on procedural dSprites (Kim & Mnih 2018).

    python -m vae_jax.main --config=experiments/factor_vae.py          # conv network
    python -m vae_jax.main --config=experiments/factor_vae.py:fc       # 1200-unit MLP
    python -m vae_jax.main --config=experiments/factor_vae.py:fc,tiny  # a smoke test

Loss = recon + KL + γ·TC, with the total correlation TC(z) = KL(q(z) ||
Π_j q(z_j)) estimated by the density-ratio trick: a discriminator D (an MLP
of 6 dense layers of 1000 units, leaky ReLU 0.2, 2 logits) learns to tell the
batch's codes z ~ q(z|x) (class 0) from the same codes permuted dimension-wise
across the batch (class 1; --config.objective.factor_permuted_codes=second_batch
permutes the codes of a second, independently drawn batch instead, as the
paper's Algorithm 1), and TC ≈ mean over the batch of D(z)_0 − D(z)_1
(vae_jax/objectives/discriminator.py; D's probabilities clipped to
[1e-6, 1 − 1e-6] in its loss, as disentanglement_lib). Each step updates the VAE with D held fixed and
D, by its own Adam (lr 1e-4, β1 0.5, β2 0.9, as in the paper and the
large-scale study of Locatello et al. 2019), on the codes held fixed.
γ = 10 is the smallest value of the study's grid {10, 20, 30, 40, 50, 100}
(experiments/sweeps/disentanglement_study.py sweeps it). Same networks, data
and schedule as beta_vae.py (`vae_jax.configs.dsprites_experiment`).

Train metrics: tc_estimate (nats), discriminator_loss (nats; log 2 ≈ 0.693
when D cannot tell the classes apart), discriminator_accuracy. The
discriminator is training-only: evaluation, pictures and vae_jax.load use the
VAE's parameters alone.

Results (`:fc`, seed 0, 10,000 steps): held-out nelbo 84.26, nll_iw (k = 100)
76.22, MIG 0.192, DCI disentanglement 0.277, FactorVAE score 0.806;
docs/results.md has all seven scores next to the published ranges.
"""

from vae_jax import configs


def get_config(arg: str = ''):
  switches = configs.parse_arg(arg, (*configs.DSPRITES_NETWORKS, 'tiny'))
  config = configs.dsprites_experiment(configs.choose(switches, configs.DSPRITES_NETWORKS))
  config.objective.name = 'factor_vae'
  config.objective.factor_gamma = 10.0
  return configs.make_tiny(config) if 'tiny' in switches else config
