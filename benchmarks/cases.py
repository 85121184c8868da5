"""The benchmarked set-ups: experiment configs and data that need no download."""

import os

import jax
import ml_collections
import numpy as np

from vae_jax import config_files
from vae_jax import data as data_lib
from vae_jax.data import dsprites

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# name: (experiment file, variant, batch size)
STEP_CASES = {
    'mlp_b128': ('vae', None, 128),  # 784-500-20 MLP VAE, Bernoulli, Fashion-MNIST shape
    'mlp_b1024': ('vae', None, 1024),
    'fc_b64': ('beta_vae', 'fc', 64),  # 1200-unit MLP β-VAE on 64×64 dSprites
    'conv_b64': ('beta_vae', 'conv', 64),  # conv β-VAE (Burgess et al.) on 64×64 dSprites
}


def step_cases(quick: bool) -> tuple:
  """The STEP_CASES a benchmark measures: --quick (a check that it runs) the first only."""
  return tuple(STEP_CASES)[:1] if quick else tuple(STEP_CASES)


def experiment(name: str, variant=None) -> ml_collections.ConfigDict:
  """get_config() of experiments/<name>.py (with its variant argument)."""
  path = os.path.join(REPO, 'experiments', f'{name}.py')
  return config_files.load_config(path if variant is None else f'{path}:{variant}')


def step_config(case: str) -> ml_collections.ConfigDict:
  name, variant, batch = STEP_CASES[case]
  config = experiment(name, variant)
  config.data.batch_size = batch
  return config


def synthetic_images(num: int, shape: tuple, seed: int = 0) -> np.ndarray:
  """uint8 images [num, *shape] (speed does not depend on the pixel values)."""
  return np.random.default_rng(seed).integers(0, 256, (num, *shape), dtype=np.uint8)


def synthetic_dataset(config, num_train: int = 60_000, num_eval: int = 10_000):
  """A device-resident 28×28 dataset shaped like Fashion-MNIST, random pixels."""
  images = synthetic_images(num_train + num_eval, (28, 28, 1))
  labels = np.arange(num_train + num_eval, dtype=np.int32) % 10
  spec = data_lib.DataSpec(name=config.data.name, procedural=False, image_shape=(28, 28, 1),
                           num_classes=10, binarize=config.data.binarize)
  arrays = {'train_x': jax.numpy.asarray(images[:num_train]),
            'train_y': jax.numpy.asarray(labels[:num_train]),
            'eval_x': jax.numpy.asarray(images[num_train:]),
            'eval_y': jax.numpy.asarray(labels[num_train:])}
  return data_lib.Dataset(spec=spec, arrays=arrays, train_ids=None,
                          eval_ids=np.arange(num_eval, dtype=np.int32), num_train=num_train,
                          source='synthetic')


def dataset(config):
  """The benchmark data of `config`: procedural dSprites, or synthetic 28×28."""
  if config.data.name == 'dsprites':
    return data_lib.load(config.data)
  return synthetic_dataset(config)


def host_images(config, ds, num: int = 8192) -> np.ndarray:
  """uint8 images [num, H, W, C] for the torch reference (dSprites pre-rendered)."""
  if config.data.name == 'dsprites':
    ids = ds.train_ids[np.random.default_rng(0).choice(len(ds.train_ids), num, replace=False)]
    rendered = jax.jit(dsprites.render_indices)(ids)
    return (np.asarray(rendered) * 255).astype(np.uint8)
  return np.asarray(ds.arrays['train_x'][:max(num, config.data.batch_size)])


def train_flops(config, image_shape: tuple) -> float:
  """Multiply-add FLOPs of one train step's dense and conv layers (2 per MAC).

  Forward, weight gradients and input gradients of every layer except the
  first layer's input gradient (never needed): the model FLOPs of the step.
  """
  height, width, channels = image_shape
  batch, model = config.data.batch_size, config.model
  latent = model.latent_dim
  hidden = list(model.hidden_dims)
  decoder_hidden = list(model.decoder_hidden_dims or hidden[::-1])
  layers = []  # multiply-adds per example of each layer, input to output
  if model.architecture == 'conv':
    conv = list(model.conv_channels)
    side_h, side_w, cin = height, width, channels
    for cout in conv:
      side_h, side_w = side_h // 2, side_w // 2
      layers.append(16 * cin * cout * side_h * side_w)
      cin = cout
    flat = side_h * side_w * conv[-1]
    layers += _dense([flat] + hidden + [2 * latent])
    decoder = _dense([latent] + decoder_hidden + [flat])
    outs = conv[::-1][1:] + [channels]
    for cin_, cout in zip(conv[::-1], outs):
      decoder.append(16 * cin_ * cout * side_h * side_w)  # per input pixel
      side_h, side_w = side_h * 2, side_w * 2
    layers += decoder
  else:
    encoder, decoder = mlp_layer_macs(model, image_shape)
    layers += encoder + decoder
  macs = 3 * sum(layers) - layers[0]
  return 2.0 * batch * macs


def mlp_layer_macs(model, image_shape: tuple) -> tuple:
  """(encoder, decoder) lists of multiply-adds per example of each dense layer
  of an MLP VAE (`model` = config.model)."""
  pixels = int(np.prod(image_shape))
  hidden = list(model.hidden_dims)
  decoder_hidden = list(model.decoder_hidden_dims or hidden[::-1])
  return (_dense([pixels] + hidden + [2 * model.latent_dim]),
          _dense([model.latent_dim] + decoder_hidden + [pixels]))


def mlp_macs(config, image_shape: tuple) -> tuple:
  """(encoder, decoder) multiply-adds per example of an MLP VAE."""
  if config.model.architecture != 'mlp':
    raise ValueError(f'{config.model.architecture!r} is not an MLP')
  return tuple(sum(layers) for layers in mlp_layer_macs(config.model, image_shape))


def _dense(sizes: list) -> list:
  return [a * b for a, b in zip(sizes[:-1], sizes[1:])]

