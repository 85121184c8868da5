"""The two weight initialisations side by side: model.init ∈ {flax, torch} × seeds {0, 1, 2}.

    ./launch.sh sweep experiments/sweeps/init_choice.py             # vae.py, 10,000 steps
    ./launch.sh sweep experiments/sweeps/init_choice.py:fc          # beta_vae.py:fc
    ./launch.sh sweep experiments/sweeps/init_choice.py:conv --config.train.num_steps=5000
    python -m vae_jax.report --steps_to=nelbo:245,242.15 runs/init_choice/*/

'flax' is LeCun-normal weights and zero biases; 'torch' is PyTorch's
defaults (weights and biases U(±1/√fan_in)): see vae_jax/models/layers.py.
The default switch is the set-up of experiments/vae.py (784-500-20 MLP,
dynamically binarized Fashion-MNIST, Adam 1e-3, batch 128) evaluated every
250 steps (held-out nelbo over the 10,000 test images), so that `report
--steps_to` reads off the steps each member needs to reach a held-out nelbo;
nll_iw with k = 100 at the end. `:fc` and `:conv` are experiments/beta_vae.py's
two networks (β = 4, dSprites) with the disentanglement scores at the end
(reference sample counts / 10). Each init is one group: its three seeds train
as one population.
"""

from vae_jax import configs


def get_config(arg: str = ''):
  switches = configs.parse_arg(arg, ('vae', 'fc', 'conv', 'tiny'))
  variant = configs.choose(switches, ('vae', 'fc', 'conv'))
  if variant == 'vae':
    config = configs.get_config()
    config.train.num_steps = 10_000
    config.train.eval_every_steps = 250
    config.eval.iw_samples = 100
  else:
    config = configs.dsprites_experiment(variant)
    config.objective.name = 'beta'
    config.objective.beta = 4.0
    config.eval.disentanglement_divisor = 10
  return configs.make_tiny(config) if 'tiny' in switches else config


def get_sweep():
  return {'model.init': ['flax', 'torch'], 'seed': [0, 1, 2]}
