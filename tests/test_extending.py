"""The worked examples of docs/extending.md: the 'reference_conv' architecture and
noisy dSprites, a procedural factor dataset (and the registry they join)."""

import functools

import flax.linen as nn
import jax

jax.config.update('jax_numpy_rank_promotion', 'raise')

import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
import numpy as np
import pytest

from conftest import load_experiment
from vae_jax import configs, models, steps, train_state
from vae_jax import data as data_lib
from vae_jax.data import dsprites, factors, noisy_dsprites, procedural
from vae_jax.errors import ConfigError
from vae_jax.models import strided_conv
from vae_jax.run import build

FAST_COMPILE = {'xla_backend_optimization_level': 0}  # as tests/test_conv.py


# --- the 'reference_conv' architecture ---------------------------------------

def _reference_conv_config():
  """The tiny dSprites config (experiments/test.py) with the reference networks."""
  config = load_experiment('test')
  config.model.architecture = 'reference_conv'
  return config


def test_reference_conv_shapes_through_models_build():
  config = _reference_conv_config()
  model = models.build(config.model, (64, 64, 1), 0)
  x, y = jnp.zeros((64, 64, 1)), jnp.int32(0)
  params = jax.eval_shape(model.init, jax.random.key(0), x, y)
  mu, logvar = jax.eval_shape(functools.partial(models.encode_one, model), params, x, y)
  assert mu.shape == logvar.shape == (config.model.latent_dim,)
  z = jnp.zeros((config.model.latent_dim,))
  out = jax.eval_shape(functools.partial(models.decode_one, model), params, z, y)
  assert out['logits'].shape == (64, 64, 1)


def test_reference_conv_refuses_sides_not_divisible_by_16():
  config = _reference_conv_config()
  with pytest.raises(ConfigError, match='divisible by') as error:
    models.build(config.model, (28, 28, 1), 0)
  assert '\n' not in str(error.value)


@pytest.mark.parametrize('side, cin, cout', [(8, 3, 4), (16, 32, 64)])
def test_kernel_2_strided_conv_equals_flax_conv(side, cin, cout):
  reference = nn.Conv(cout, (2, 2), strides=(2, 2), padding='SAME')
  module = strided_conv.StridedConv(cout, kernel_size=2, strides=2)
  rng = np.random.default_rng(0)
  xs = rng.standard_normal((2, side, side, cin), np.float32)
  r = rng.standard_normal((2, side // 2, side // 2, cout), np.float32)

  @functools.partial(jax.jit, compiler_options=FAST_COMPILE)
  def run(xs):
    results = []
    for m in (reference, module):
      params = m.init(jax.random.key(0), xs[0])
      shifted = jax.tree.map(lambda p: p + 0.1, params)
      loss = lambda x, m=m, p=shifted: jnp.sum(jax.vmap(lambda e: m.apply(p, e))(x) * r)
      out = jax.vmap(lambda e, m=m, p=shifted: m.apply(p, e))(xs)
      results.append((params, out, jax.grad(loss)(xs)))
    return results

  (params_ref, out_ref, dx_ref), (params, out, dx) = run(xs)
  jax.tree.map(np.testing.assert_array_equal, params, params_ref)
  np.testing.assert_allclose(out, out_ref, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(dx, dx_ref, rtol=1e-5, atol=1e-5)


def _fast(jitted, spec, **kwargs):
  """jitted(spec=spec, **kwargs), compiled at XLA's lowest optimization level."""
  return jitted.lower(spec=spec, **kwargs).compile(compiler_options=FAST_COMPILE)(**kwargs)


def _train(config, workdir: str, num_steps: int) -> dict:
  """`num_steps` jitted train steps of `config` built as a run is (build_run); metrics [K]."""
  run = build.build_run(config, workdir)
  state = _fast(train_state.init_state, run.spec, seed=config.seed)
  indices = jnp.asarray(np.stack([run.dataset.train_indices(config.seed, s,
                                                            config.data.batch_size)
                                  for s in range(num_steps)]))
  state, metrics = _fast(steps.train_steps, run.spec, state=state, arrays=run.train_arrays,
                         indices=indices, hparams=run.hparams)
  assert int(state.step) == num_steps
  return jax.device_get(metrics)


def test_reference_conv_train_step_is_finite(tmp_path):
  config = _reference_conv_config()
  config.data.batch_size = 2
  metrics = _train(config, str(tmp_path), 1)
  assert np.all(np.isfinite(metrics['loss'])) and np.all(metrics['finite'])


# --- noisy dSprites -----------------------------------------------------------

NOISY = procedural.get('noisy_dsprites')


def _noisy_data_config(**overrides):
  config = configs.get_config().data
  config.update(dict(name='noisy_dsprites', binarize='none', batch_size=8, eval_size=24))
  config.update(overrides)
  return config


_get_batch = jax.jit(data_lib.get_batch, static_argnums=(0, 2))


@pytest.fixture(name='noisy', scope='module')
def noisy_fixture():
  """(dataset, a train batch's indices, the batch with key 0, with key 1, with key 0 again)."""
  dataset = data_lib.load(_noisy_data_config())
  batch = jnp.asarray(dataset.train_indices(0, 3, 8))
  draws = [_get_batch(dataset.spec, dataset.arrays, 'train', batch, jax.random.key(k))
           for k in (0, 1, 0)]
  return dataset, batch, draws


def test_noisy_dsprites_pixels_mask_and_labels(noisy):
  dataset, batch, ((x, y), _, _) = noisy
  x = np.asarray(x)
  assert dataset.spec.image_shape == (64, 64, 3) and x.shape == (8, 64, 64, 3)
  assert x.dtype == np.float32 and x.min() >= 0.0 and x.max() <= 1.0
  sprite = np.asarray(dsprites.render_indices(batch))[..., 0] == 1.0
  np.testing.assert_array_equal(np.all(x == 1.0, axis=-1), sprite)  # the mask is dSprites'
  background = x[~sprite]
  assert background.std() > 0.2 and abs(background.mean() - 0.5) < 0.01  # U(0, 1)
  np.testing.assert_array_equal(np.asarray(y), np.asarray(dsprites.index_to_factors(batch))[:, 1])


def test_noisy_dsprites_noise_is_a_function_of_the_key(noisy):
  _, _, ((x0, _), (x1, _), (again, _)) = noisy
  np.testing.assert_array_equal(np.asarray(x0), np.asarray(again))
  assert not np.array_equal(np.asarray(x0), np.asarray(x1))


def test_noisy_dsprites_evaluation_noise_is_fixed_per_example(noisy):
  dataset, _, _ = noisy
  ids = jnp.asarray(dataset.eval_ids[:8])
  first, _ = _get_batch(dataset.spec, dataset.arrays, 'eval', ids, jax.random.key(0))
  later, _ = _get_batch(dataset.spec, dataset.arrays, 'eval', ids[::-1], jax.random.key(5))
  np.testing.assert_array_equal(np.asarray(first), np.asarray(later)[::-1])
  # The scoring images of the same factor combinations are the same images.
  source = factors.factor_source('noisy_dsprites')
  classes = np.asarray(procedural.index_to_factors(NOISY, ids))[:, 1:]
  np.testing.assert_array_equal(source.images(classes), np.asarray(first))


def test_noisy_dsprites_factor_source_has_dsprites_factors():
  source = factors.factor_source('noisy_dsprites')
  assert source.factor_names == ('shape', 'scale', 'orientation', 'pos_x', 'pos_y')
  assert source.factor_sizes == factors.factor_source('dsprites').factor_sizes
  assert source.factor_sizes == (3, 6, 40, 32, 32)
  images = source.images(source.sample_factors(np.random.default_rng(0), 3))
  assert images.shape == (3, 64, 64, 3) and images.dtype == np.float32


def test_noisy_dsprites_refuses_binarization():
  config = load_experiment('noisy_dsprites', 'tiny')
  configs.validate(config)
  config.data.binarize = 'dynamic'
  with pytest.raises(ConfigError, match='binarize=none') as error:
    configs.validate(config)
  assert '\n' not in str(error.value)


def test_noisy_dsprites_tiny_run_is_finite(tmp_path):
  config = load_experiment('noisy_dsprites', 'tiny')
  metrics = _train(config, str(tmp_path), config.train.num_steps)
  assert metrics['loss'].shape == (6,)
  assert np.all(np.isfinite(metrics['loss'])) and np.all(metrics['finite'])


def test_noisy_dsprites_module_is_its_registry_entry():
  assert noisy_dsprites.PROCEDURAL is NOISY
  assert NOISY.factor_sizes == dsprites.FACTOR_SIZES and not NOISY.binary


# --- the registry ---------------------------------------------------------------

@pytest.mark.parametrize('name', procedural.NAMES)
def test_every_procedural_dataset_is_accepted_by_the_config(name):
  p = procedural.get(name)
  assert p.name == name and len(p.factor_names) == len(p.factor_sizes)
  assert len(p.class_names) == p.num_classes
  assert len(p.traversal_base) == len(p.factor_sizes)
  rendered = jax.eval_shape(p.render, jnp.zeros((2, len(p.factor_sizes)), jnp.int32))
  assert rendered.shape == (2,) + p.image_shape
  config = configs.get_config()
  config.data.name = name
  config.data.binarize = 'none'
  config.eval.factor_source = name
  config.eval.disentanglement = True
  configs.validate(config)
  assert name in configs.DATASETS and name in configs.FACTOR_SOURCES
