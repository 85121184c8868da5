"""The unsupervised disentanglement study on dSprites: 6 methods × 6 settings × seeds.

    python -m vae_jax.main --mode=sweep --config=experiments/sweeps/disentanglement_study.py
    ...disentanglement_study.py:conv          the Burgess conv network (default: fc)
    ...disentanglement_study.py:reference_conv  disentanglement_lib's conv network
    ...disentanglement_study.py:fc,seeds=10   10 seeds (default 3)
    ...disentanglement_study.py:tiny,seeds=1  CI-sized: 36 tiny members, a few steps

The methods and hyperparameter grids of Locatello et al. (2019), "Challenging
Common Assumptions in the Unsupervised Learning of Disentangled
Representations" (disentanglement_lib's unsupervised_study_v1):

    β-VAE        objective 'beta'        β ∈ {1, 2, 4, 6, 8, 16}
    AnnealedVAE  objective 'capacity'    γ = 1000, C_max ∈ {5, 10, 25, 50, 75, 100} nats,
                                         C ramped 0 → C_max over the first third of the run
    FactorVAE    objective 'factor_vae'  γ ∈ {10, 20, 30, 40, 50, 100}
    DIP-VAE-I    objective 'dip_vae_i'   λ_od ∈ {1, 2, 5, 10, 20, 50}, λ_d = 10·λ_od
    DIP-VAE-II   objective 'dip_vae_ii'  λ_od ∈ {1, 2, 5, 10, 20, 50}, λ_d = λ_od
    β-TCVAE      objective 'beta_tc'     β ∈ {1, 2, 4, 6, 8, 10}

Seeds 0..N−1 (`seeds=N`, default 3; the study has 50). Everything else is
the set-up of the project's dSprites experiments (experiments/beta_vae.py,
`configs.dsprites_experiment`): 10 latents, Bernoulli decoder, batch 64,
Adam 5e-4, 10,000 steps (fc) or 30,000 (the conv networks). The study trains 300,000
steps at Adam 1e-4 and ramps the AnnealedVAE's capacity over 100,000 of
them; here the ramp is a third of train.num_steps (read after the command
line's overrides). Members are named method_value_seed
(`factor_vae_factor_gamma=40_seed=2`); each method's 6 × N members differ
only in vmapped hyperparameters and train as one population (6 groups).

Sweep directory: every member's workdir with its seven disentanglement
scores (summary.json), results.md/.csv (a row per member) and the study:
study.md/.csv (per method and setting the median and 25th–75th percentile
over seeds of each score, plus recon and kl) and study_<score>.png (score
per method, the members as dots coloured by setting) — vae_jax/sweeps/study.py.
docs/experiments.md lists the commands and outputs.

Runtime on one GPU, estimated (not measured; docs/experiments.md): the
training is minutes (6.1 PFLOP of model FLOPs for fc with 3 seeds), the
scoring 4.5–7 h one member after another (DCI's scikit-learn trees stay on
the host: ≈ 2.5 min a member with three free host cores, 4 with two), about
1.5 h on a 16-core host with `--config.eval.inline=False
--config.eval.workers=3` scoring beside the training; shard it
(`--sweep_shard=I/N`) to score in parallel. On a 2-core x86 CPU running
other work, the shortened run

    python -m vae_jax.main --mode=sweep \\
        --config=experiments/sweeps/disentanglement_study.py:fc,seeds=1 \\
        --config.train.num_steps=100 --config.data.eval_size=1000 \\
        --config.eval.iw_samples=10 --config.eval.disentanglement_divisor=100

(36 members, 100 steps each, scores on 1/100 of the protocol's samples)
took 1 h 13 min wall (35 min CPU): 25 min training, 48 min evaluating,
mostly the scores' sklearn fits (docs/experiments.md has the breakdown).
"""

from vae_jax import configs

LAMBDAS_OD = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0)
DEFAULT_SEEDS = 3


def _parse(arg: str) -> tuple:
  """(network/tiny switches, number of seeds) of 'fc,tiny,seeds=N'."""
  return configs.parse_seeds(arg, ('fc', 'conv', 'reference_conv', 'tiny'), DEFAULT_SEEDS)


def get_config(arg: str = ''):
  switches, _ = _parse(arg)
  config = configs.dsprites_experiment(configs.choose(switches, ('fc', 'conv', 'reference_conv')))
  return configs.make_tiny(config) if 'tiny' in switches else config


def get_sweep(config, arg: str = ''):
  seeds = list(range(_parse(arg)[1]))
  ramp = max(1, config.train.num_steps // 3)  # the study: 100,000 of 300,000 steps
  return [
      {'objective.name': ['beta'], 'objective.beta': [1.0, 2.0, 4.0, 6.0, 8.0, 16.0],
       'seed': seeds},
      {('objective.name', 'objective.gamma', 'objective.capacity_steps'):
           [('capacity', 1000.0, ramp)],
       'objective.capacity_max': [5.0, 10.0, 25.0, 50.0, 75.0, 100.0], 'seed': seeds},
      {'objective.name': ['factor_vae'],
       'objective.factor_gamma': [10.0, 20.0, 30.0, 40.0, 50.0, 100.0], 'seed': seeds},
      {'objective.name': ['dip_vae_i'],
       ('objective.lambda_od', 'objective.lambda_d'): [(v, 10.0 * v) for v in LAMBDAS_OD],
       'seed': seeds},
      {'objective.name': ['dip_vae_ii'],
       ('objective.lambda_od', 'objective.lambda_d'): [(v, v) for v in LAMBDAS_OD],
       'seed': seeds},
      {'objective.name': ['beta_tc'], 'objective.beta': [1.0, 2.0, 4.0, 6.0, 8.0, 10.0],
       'seed': seeds},
  ]
