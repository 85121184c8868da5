"""Fashion-MNIST ablation: β ∈ {0.5, 1, 2, 4} × latent size ∈ {2, 10, 20, 50}.

    ./launch.sh sweep experiments/sweeps/fmnist_ablation.py
    ./launch.sh sweep experiments/sweeps/fmnist_ablation.py --config.train.num_steps=1000

The network of experiments/vae.py (784-500-latent MLP, Bernoulli decoder,
dynamically binarized Fashion-MNIST, Adam 1e-3, batch 128), 10,000 steps,
loss recon + β·kl. Members with the same latent size differ only in β and
train as one vmapped population; the four latent sizes are four groups (their
parameter shapes differ). Held-out nelbo, recon, kl, active units and nll_iw
(k = 1000) per member in results.md; metrics_vs_beta.png,
metrics_vs_latent_dim.png and rate_distortion.png in the sweep directory.
"""

from vae_jax import configs


def get_config(arg: str = ''):
  switches = configs.parse_arg(arg, ('tiny',))
  config = configs.get_config()  # the network, data and optimizer of vae.py
  config.objective.name = 'beta'
  config.eval.iw_samples = 1000
  return configs.make_tiny(config) if 'tiny' in switches else config


def get_sweep():
  return {'objective.beta': [0.5, 1.0, 2.0, 4.0], 'model.latent_dim': [2, 10, 20, 50]}
