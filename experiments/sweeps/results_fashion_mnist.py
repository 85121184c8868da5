"""The Fashion-MNIST rows of docs/results.md, each over seeds: one command for the table.

    python -m vae_jax.main --mode=sweep --config=experiments/sweeps/results_fashion_mnist.py \\
        --workdir=runs/results_fashion_mnist                  # 7 rows × 3 seeds
    ... --sweep_shard=0/7                                     # a seventh of the members
    python -m vae_jax.report --over_seeds runs/results_fashion_mnist/*/

The network, data and optimizer of experiments/vae.py (MLP 784-500-20,
Bernoulli decoder, dynamically binarized Fashion-MNIST, Adam 1e-3, batch
128), 20,000 steps, the final bound with k = 5000 over the 10,000 test images:

    VAE        vae.py                 the ELBO
    CVAE       cvae.py                label-conditioned; its nll_iw is −log p(x|y),
                                      nll_iw_marginal = −log Σ_y p(y) p(x|y)
    AE         ae.py                  z = mu, no KL (no likelihood)
    IWAE       iwae.py                the k = 5 bound
    ELBO, k=5  iwae.py:elbo_k         the ELBO over 5 samples: the IWAE's cost
    WAE-MMD    wae_mmd.py             λ = WAE_LAMBDA (experiments/sweeps/wae_lambda.py)
    anomaly    anomaly.py             trousers left out of training, k = 1000

Seeds 0..N−1 (`:seeds=N`, default 3); `report --over_seeds` folds them into
mean ± sd per row.
"""

from vae_jax import configs

DEFAULT_SEEDS = 3
WAE_LAMBDA = 100.0  # experiments/wae_mmd.py's (chosen by experiments/sweeps/wae_lambda.py)


def get_config(arg: str = ''):
  switches, _ = configs.parse_seeds(arg, ('tiny',), DEFAULT_SEEDS)
  config = configs.get_config()  # the network, data and optimizer of vae.py
  config.train.num_steps = 20_000
  return configs.make_tiny(config) if 'tiny' in switches else config


def get_sweep(config, arg: str = ''):
  del config
  seeds = list(range(configs.parse_seeds(arg, ('tiny',), DEFAULT_SEEDS)[1]))
  return [
      {'objective.name': ['elbo', 'ae'], 'seed': seeds},
      {'objective.name': ['elbo'], 'model.conditional': [True], 'seed': seeds},
      {('objective.name', 'objective.iw_k'): [('iwae', 5), ('elbo_k', 5)], 'seed': seeds},
      {('objective.name', 'objective.wae_lambda'): [('wae_mmd', WAE_LAMBDA)], 'seed': seeds},
      {'objective.name': ['elbo'],
       ('data.exclude_classes', 'eval.anomaly', 'eval.iw_samples'): [((1,), True, 1000)],
       'seed': seeds},
  ]
