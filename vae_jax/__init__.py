"""vae_jax: functional JAX/Flax variational autoencoders (VAE, β-VAE, CVAE, AE)."""

__version__ = "0.1.0"
