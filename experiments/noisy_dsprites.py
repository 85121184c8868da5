"""β-VAE (β = 4) on noisy dSprites: experiments/beta_vae.py:fc with noise.

    python -m vae_jax.main --config=experiments/noisy_dsprites.py        # 10,000 steps
    python -m vae_jax.main --config=experiments/noisy_dsprites.py:tiny   # a smoke test

Noisy dSprites (vae_jax.data.noisy_dsprites, Locatello et al. 2019): the
white dSprites sprite on U(0, 1) noise, 64×64×3, the same five factors.
Everything else is `beta_vae.py:fc` (`vae_jax.configs.dsprites_experiment`
'fc': the 1200-unit MLP, 10 latents, Bernoulli decoder on the continuous
pixels as in disentanglement_lib, Adam 5e-4, batch 64, the disentanglement
scores at every evaluation), with data.binarize='none' (required) and the
scores on noisy dSprites (eval.factor_source='noisy_dsprites').

Expected runtime: not measured. The first and last layers are 3× wider than
on dSprites (12,288 pixels), about 2.5× the training FLOPs of
`beta_vae.py:fc`. Results: not yet run to completion.
"""

from vae_jax import configs


def get_config(arg: str = ''):
  switches = configs.parse_arg(arg, ('tiny',))
  config = configs.dsprites_experiment('fc')
  config.data.name = 'noisy_dsprites'
  config.data.binarize = 'none'  # continuous pixels
  config.eval.factor_source = 'noisy_dsprites'
  config.objective.name = 'beta'
  config.objective.beta = 4.0
  return configs.make_tiny(config) if 'tiny' in switches else config
