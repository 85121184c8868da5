"""vae_jax: functional JAX/Flax variational autoencoders (VAE, β-VAE, CVAE, AE, β-TCVAE,
FactorVAE, DIP-VAE-I/II, WAE-MMD, IWAE) and their evaluation.

    import vae_jax
    summary = vae_jax.fit('experiments/beta_vae.py:fc', 'runs/b')  # or a ConfigDict
    model = vae_jax.load('runs/b')   # a trained run: encode, decode, sample, scores

`load` and `Model` live in vae_jax.api; `config`, `fit` and `sweep` in
vae_jax.python_api; both are imported on first use (so that the command line
starts without importing JAX until it needs it).
"""

import importlib

__version__ = "0.1.0"

_HOMES = {'load': 'api', 'Model': 'api', 'config': 'python_api', 'fit': 'python_api',
          'sweep': 'python_api'}
__all__ = list(_HOMES)


def __getattr__(name: str):
  if name in _HOMES:
    return getattr(importlib.import_module(f'vae_jax.{_HOMES[name]}'), name)
  raise AttributeError(f'module vae_jax has no attribute {name!r}')
