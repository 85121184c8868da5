"""vae_jax: functional JAX/Flax variational autoencoders (VAE, β-VAE, CVAE, AE, β-TCVAE,
FactorVAE, DIP-VAE-I/II, WAE-MMD, IWAE) and their evaluation.

    import vae_jax
    model = vae_jax.load('runs/<run>')   # a trained run: encode, decode, sample, scores

`load` and `Model` live in vae_jax.api, imported on first use (so that the
command line starts without importing JAX until it needs it).
"""

__version__ = "0.1.0"

__all__ = ['load', 'Model']


def __getattr__(name: str):
  if name in __all__:
    from vae_jax import api  # pylint: disable=g-import-not-at-top
    return getattr(api, name)
  raise AttributeError(f'module vae_jax has no attribute {name!r}')
