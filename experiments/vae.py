"""Plain VAE: 784-500-20 ReLU MLP, Bernoulli decoder, dynamically binarized Fashion-MNIST.

    python -m vae_jax.main --config=experiments/vae.py

The architecture of the official Flax VAE example (Adam 1e-3, batch 128), on
Fashion-MNIST read from local files (Debian's dataset-fashion-mnist package,
or --config.data.local_dir) or TFDS. Each training pixel is resampled
Bernoulli(intensity) every time it is used; the 10,000 test images are
binarized once with a fixed key.

Measured (docs/results.md), 20,000 steps, final evaluation with k = 5000
importance samples for each of the 10,000 test images: held-out nelbo
238.07 nats (recon 218.57, kl 19.51), nll_iw 234.40 nats (k = 5000); nelbo
602.12 at step 0 and 246.72 after 2,000 steps.
"""

from vae_jax import configs


def get_config(arg: str = ''):
  switches = configs.parse_arg(arg, ('tiny',))
  config = configs.get_config()  # the network, data and optimizer above
  config.train.num_steps = 20_000
  return configs.make_tiny(config) if 'tiny' in switches else config
