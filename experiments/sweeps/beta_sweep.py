"""β sweep on dSprites: β ∈ {1, 2, 4, 6, 8, 16} × seeds {0, 1, 2} (18 members).

    ./launch.sh sweep experiments/sweeps/beta_sweep.py                # 1200-unit MLP
    ./launch.sh sweep experiments/sweeps/beta_sweep.py:conv           # Burgess conv net
    ./launch.sh sweep experiments/sweeps/beta_sweep.py --config.train.num_steps=500

The grid of the published β-VAE disentanglement studies (Higgins et al. 2017;
Locatello et al. 2019 use β ∈ {1, 2, 4, 6, 8, 16}): the set-up of
experiments/beta_vae.py with β and the seed swept. All 18 members differ only
in β and seed, so they train as ONE vmapped population (one compiled step).
Each member's workdir gets the five disentanglement scores; the sweep
directory gets results.md/.csv, metrics_vs_beta.png (seeds as error bars) and
rate_distortion.png.

18 members × experiments/beta_vae.py:fc — meant for a GPU/TPU at the full
10,000 steps; on a CPU use a short --config.train.num_steps.
"""

from vae_jax import configs


def get_config(arg: str = ''):
  switches = configs.parse_arg(arg, ('fc', 'conv', 'reference_conv', 'tiny'))
  config = configs.dsprites_experiment(configs.choose(switches, ('fc', 'conv', 'reference_conv')))
  config.objective.name = 'beta'
  return configs.make_tiny(config) if 'tiny' in switches else config


def get_sweep():
  return {'objective.beta': [1.0, 2.0, 4.0, 6.0, 8.0, 16.0], 'seed': [0, 1, 2]}
