"""WAE-MMD's λ on Fashion-MNIST: λ ∈ {10, 100, 1000, 10000} × seeds (one vmapped population).

    ./launch.sh sweep experiments/sweeps/wae_lambda.py                 # 5,000 steps, seed 0
    ./launch.sh sweep experiments/sweeps/wae_lambda.py:seeds=3
    python -m vae_jax.report --over_seeds runs/wae_lambda/*/

The set-up of experiments/wae_mmd.py (the VAE's network and data, Gaussian
encoder) with λ swept. The paper's λ = 10 belongs to its MNIST setting,
whose reconstruction cost 0.05·‖x − x̂‖² is ≈ 1 per image; here the
reconstruction is a Bernoulli NLL of ≈ 200 nats, so the same λ weighs the
MMD ≈ 100× less. The final evaluation reports, next to recon and the
likelihood bounds (k = 1000), the held-out MMD² of the codes to the prior
with the training kernel (mmd_to_prior) and the KL of the aggregate
posterior's moment-matched Gaussian to the prior, diagonal and with the
full covariance: docs/results.md reads λ off this table.
"""

from vae_jax import configs


def get_config(arg: str = ''):
  switches, _ = configs.parse_seeds(arg, ('tiny',), 1)
  config = configs.get_config()  # the network, data and optimizer of vae.py
  config.objective.name = 'wae_mmd'
  config.train.num_steps = 5_000
  config.train.eval_every_steps = 5_000
  config.eval.iw_samples = 1_000
  return configs.make_tiny(config) if 'tiny' in switches else config


def get_sweep(config, arg: str = ''):
  del config
  _, num_seeds = configs.parse_seeds(arg, ('tiny',), 1)
  return {'objective.wae_lambda': [10.0, 100.0, 1000.0, 10000.0],
          'seed': list(range(num_seeds))}
