"""Plain VAE: 784-500-20 ReLU MLP, Bernoulli decoder, dynamically binarized Fashion-MNIST.

    python -m vae_jax.main --config=experiments/vae.py

The architecture of the official Flax VAE example (Adam 1e-3, batch 128), on
Fashion-MNIST read from local files (Debian's dataset-fashion-mnist package,
or --config.data.local_dir) or TFDS. Each training pixel is resampled
Bernoulli(intensity) every time it is used; the 10,000 test images are
binarized once with a fixed key.

Measured on a 2-core CPU (README "Results"): 20,000 steps train in ≈2.5 min
(≈150 steps/s); the final evaluation (k = 5000 importance samples for each
of the 10,000 test images) adds 5–9 min. Held-out: nelbo 238.07 nats
(recon 218.57, kl 19.51), nll_iw 234.40 nats (k = 5000); nelbo 602.12 at
step 0 and 246.72 after 2,000 steps.
"""

from vae_jax import configs


def get_config(arg: str = ''):
  switches = configs.parse_arg(arg, ('tiny',))
  config = configs.get_config()
  config.data.name = 'fashion_mnist'
  config.data.binarize = 'dynamic'
  config.model.architecture = 'mlp'
  config.model.hidden_dims = (500,)
  config.model.latent_dim = 20
  config.model.likelihood = 'bernoulli'
  config.objective.name = 'elbo'
  config.train.num_steps = 20_000
  config.train.learning_rate = 1e-3
  return configs.make_tiny(config) if 'tiny' in switches else config
