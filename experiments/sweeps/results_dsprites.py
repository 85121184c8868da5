"""The dSprites rows of docs/results.md, each over seeds: one command for the table.

    python -m vae_jax.main --mode=sweep --config=experiments/sweeps/results_dsprites.py \\
        --workdir=runs/results_dsprites                       # 7 rows × 3 seeds
    ... --sweep_shard=0/4                                     # a quarter of the members
    python -m vae_jax.report --over_seeds runs/results_dsprites/*/

Six methods on the fully connected network of the β-VAE paper and
disentanglement_lib (`configs.dsprites_experiment('fc')`: ReLU encoder, tanh
decoder, 10,000 steps), each at the setting of its experiment file, and
β-VAE on disentanglement_lib's conv network ('reference_conv', 30,000
steps): the networks the published score ranges come from.

    β-VAE        beta_vae.py:fc             β = 4
    β-TCVAE      beta_tcvae.py:fc           β = 6 on the TC, estimator 'mws'
    AnnealedVAE  capacity_vae.py:fc         γ = 1000, C: 0 → 25 nats over the run,
                                            |mean KL − C| (capacity_form 'batch_mean')
    FactorVAE    factor_vae.py:fc           γ = 10, permuted codes of the same batch
    DIP-VAE-I    dip_vae_i.py:fc            λ_od = 10, λ_d = 100
    DIP-VAE-II   dip_vae_ii.py:fc           λ_od = λ_d = 10
    β-VAE        beta_vae.py:reference_conv β = 4

Seeds 0..N−1 (`:seeds=N`, default 3). Every member's final evaluation scores
the encoder mean with the reference protocol (disentanglement_lib's sample
counts) and bounds the likelihood with k = 100. `report --over_seeds` folds
the seeds into mean ± sd per row.
"""

from vae_jax import configs

DEFAULT_SEEDS = 3


def get_config(arg: str = ''):
  switches, _ = configs.parse_seeds(arg, ('tiny',), DEFAULT_SEEDS)
  config = configs.dsprites_experiment('fc')
  return configs.make_tiny(config) if 'tiny' in switches else config


def get_sweep(config, arg: str = ''):
  seeds = list(range(configs.parse_seeds(arg, ('tiny',), DEFAULT_SEEDS)[1]))
  conv_steps = 3 * config.train.num_steps  # 30,000: the conv networks' length
  return [
      {('objective.name', 'objective.beta'): [('beta', 4.0), ('beta_tc', 6.0)],
       'seed': seeds},
      {('objective.name', 'objective.capacity_steps'):
           [('capacity', config.train.num_steps)], 'seed': seeds},
      {'objective.name': ['factor_vae'], 'seed': seeds},  # γ = 10: the field's default
      {('objective.name', 'objective.lambda_od', 'objective.lambda_d'):
           [('dip_vae_i', 10.0, 100.0), ('dip_vae_ii', 10.0, 10.0)], 'seed': seeds},
      {('objective.name', 'objective.beta'): [('beta', 4.0)],
       ('model.architecture', 'model.decoder_activation', 'train.num_steps'):
           [('reference_conv', '', conv_steps)],  # its decoder: ReLU, as the encoder
       'seed': seeds},
  ]
