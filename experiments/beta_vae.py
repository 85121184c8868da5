"""β-VAE (β = 4) on procedural dSprites, 10 latents, Bernoulli decoder.

    python -m vae_jax.main --config=experiments/beta_vae.py        # conv network
    python -m vae_jax.main --config=experiments/beta_vae.py:fc     # 1200-unit MLP

Two networks:
- default `conv`: Burgess et al. (2018): 4 conv layers (32 channels, 4×4,
  stride 2) → FC 256 → FC 256 → 10 latents, mirrored decoder. Use it on a
  GPU/TPU. XLA's CPU convolutions are slow (RUNTIME_CONV).
- `:fc`: the fully connected network of the β-VAE paper (Higgins et al.
  2017): 4096 → 1200 → 1200 → 10, decoder 10 → 1200 → 1200 → 1200 → 4096.
  About 4× faster than conv on a CPU: use it there (RUNTIME_FC).

dSprites is rendered procedurally in JAX from factor indices (no download);
10,000 fixed random factor combinations are held out for evaluation.
Adam 5e-4, batch 64, as in Burgess et al.

Measured on a 2-core CPU (see README "Results"): RUNTIME_AND_RESULT
"""

from vae_jax import configs


def get_config(arg: str = 'conv'):
  config = configs.get_config()
  config.data.name = 'dsprites'
  config.data.batch_size = 64
  config.model.latent_dim = 10
  config.model.likelihood = 'bernoulli'
  if arg == 'fc':
    config.model.architecture = 'mlp'
    config.model.hidden_dims = (1200, 1200)
    config.model.decoder_hidden_dims = (1200, 1200, 1200)
  elif arg == 'conv':
    config.model.architecture = 'conv'
    config.model.conv_channels = (32, 32, 32, 32)
    config.model.hidden_dims = (256, 256)
  else:
    raise ValueError(f"unknown variant {arg!r} of beta_vae.py; use ':conv' or ':fc'")
  config.objective.name = 'beta'
  config.objective.beta = 4.0
  config.train.num_steps = 30_000
  config.train.learning_rate = 5e-4
  config.train.eval_every_steps = 5_000
  config.train.checkpoint_every_steps = 5_000
  config.eval.batch_size = 250
  return config
