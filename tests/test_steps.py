"""Tests for vae_jax.steps on a tiny in-memory dataset (no real data needed)."""

import jax

jax.config.update('jax_numpy_rank_promotion', 'raise')

import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
import numpy as np
import optax
import pytest

from vae_jax import configs, models, steps
from vae_jax import train_state
from vae_jax import key_streams
from vae_jax import data as data_lib

IMAGE_SHAPE = (8, 8, 1)
NUM_TRAIN, NUM_CLASSES, BATCH, LATENT, HIDDEN = 16, 4, 4, 3, 16
SEED = 0


def _dataset(binarize: str = 'none', seed: int = 0) -> data_lib.Dataset:
  """A Dataset built directly from small random uint8 images, as data.load does."""
  rng = np.random.default_rng(seed)
  train_x = rng.integers(0, 256, (NUM_TRAIN,) + IMAGE_SHAPE, dtype=np.uint8)
  eval_x = rng.integers(0, 256, (8,) + IMAGE_SHAPE, dtype=np.uint8)
  spec = data_lib.DataSpec(name='tiny', procedural=False, image_shape=IMAGE_SHAPE,
                           num_classes=NUM_CLASSES, binarize=binarize)
  arrays = {'train_x': jnp.asarray(train_x),
            'train_y': jnp.asarray(np.arange(NUM_TRAIN) % NUM_CLASSES, jnp.int32),
            'eval_x': jnp.asarray(eval_x),
            'eval_y': jnp.asarray(np.arange(8) % NUM_CLASSES, jnp.int32)}
  return data_lib.Dataset(spec=spec, arrays=arrays, train_ids=None,
                          eval_ids=np.arange(8, dtype=np.int32), num_train=NUM_TRAIN,
                          source='test fixture')


def _config(objective: str = 'elbo', **train):
  config = configs.get_config()
  config.seed = SEED
  config.data.batch_size = BATCH
  config.model.architecture = 'mlp'
  config.model.hidden_dims = (HIDDEN,)
  config.model.latent_dim = LATENT
  config.objective.name = objective
  config.train.learning_rate = 1e-2
  config.train.num_steps = 100
  for key, value in train.items():
    config.train[key] = value
  configs.validate(config)
  return config


@pytest.fixture(name='setup', scope='module')
def setup_fixture():
  """(config, dataset, spec, hparams) of a plain ELBO run on the tiny data."""
  config = _config()
  dataset = _dataset()
  return config, dataset, train_state.make_spec(config, dataset.spec), train_state.make_hparams(config, dataset_size=1)


def _host(tree):
  """A host copy (the train step donates its input state)."""
  return jax.tree.map(np.array, jax.device_get(tree))


def _batch(dataset, indices, key=None):
  key = jax.random.key(0) if key is None else key
  return data_lib.get_batch(dataset.spec, dataset.arrays, 'train', jnp.asarray(indices), key)


# ------------------------------------------------------------ per-example vmap


def _hand_batch_terms(spec, params, x, y, key, beta):
  """The batch loss written out: loop over examples, stack, formulas by hand."""
  model = spec.model
  keys = jax.random.split(key, x.shape[0])
  enc = [model.apply(params, x[i], y[i], method=models.VAE.encode)
         for i in range(x.shape[0])]
  mu = jnp.stack([m for m, _ in enc])
  logvar = jnp.stack([lv for _, lv in enc])
  eps = jnp.stack([jax.random.normal(k, (LATENT,)) for k in keys])
  z = mu + jnp.exp(0.5 * logvar) * eps
  logits = jnp.stack([model.apply(params, z[i], y[i], method=models.VAE.decode)['logits']
                      for i in range(x.shape[0])])
  loglik = jnp.sum(x * jax.nn.log_sigmoid(logits) + (1 - x) * jax.nn.log_sigmoid(-logits),
                   axis=(1, 2, 3))
  kl = 0.5 * jnp.sum(mu**2 + jnp.exp(logvar) - 1 - logvar, axis=1)
  recon = -loglik
  return {'loss': jnp.mean(recon + beta * kl), 'recon': jnp.mean(recon),
          'kl': jnp.mean(kl), 'nelbo': jnp.mean(recon + kl)}


@pytest.mark.parametrize('objective, beta', [('elbo', 1.0), ('beta', 4.0)])
def test_batch_loss_equals_hand_written_batch(setup, objective, beta):
  dataset = setup[1]
  config = _config(objective)
  config.objective.beta = beta
  spec = train_state.make_spec(config, dataset.spec)
  hparams = train_state.make_hparams(config, dataset_size=1)
  params = train_state.init_state(spec, SEED).params
  x, y = _batch(dataset, [3, 0, 7, 12])
  key = jax.random.key(5)
  loss, terms = steps.batch_loss(params, x, y, key, hparams, jnp.asarray(0), spec)
  expected = _hand_batch_terms(spec, params, x, y, key, beta)
  np.testing.assert_allclose(float(loss), float(expected['loss']), rtol=1e-5)
  for name in ('recon', 'kl', 'nelbo'):
    np.testing.assert_allclose(float(terms[name]), float(expected[name]), rtol=1e-5)
  assert terms['kl_per_dim'].shape == (LATENT,)
  np.testing.assert_allclose(float(jnp.sum(terms['kl_per_dim'])), float(terms['kl']),
                             rtol=1e-5)
  # A different key draws different z (the keys really are per example).
  other, _ = steps.batch_loss(params, x, y, jax.random.key(6), hparams, jnp.asarray(0),
                              spec)
  assert float(other) != float(loss)


# ---------------------------------------------------------------- compilation


def test_train_step_compiles_once(monkeypatch):
  config = _config('beta')
  dataset = _dataset()
  spec = train_state.make_spec(config, dataset.spec)
  hparams = train_state.make_hparams(config, dataset_size=1)
  traces = []
  original = steps.batch_loss

  def counting_batch_loss(*args, **kwargs):
    traces.append(1)
    return original(*args, **kwargs)

  monkeypatch.setattr(steps, 'batch_loss', counting_batch_loss)
  cache_before = steps.train_step._cache_size()  # pylint: disable=protected-access
  state = train_state.init_state(spec, SEED)
  betas, rates = [1.0, 2.0, 0.5, 4.0, 3.0], [1e-3, 2e-3, 5e-4, 1e-3, 1e-4]
  for step, (beta, rate) in enumerate(zip(betas, rates)):
    indices = dataset.train_indices(SEED, step, BATCH)
    step_hparams = dict(hparams, beta=jnp.asarray(beta, jnp.float32),
                        learning_rate=jnp.asarray(rate, jnp.float32))
    state, metrics = steps.train_step(state, dataset.arrays, indices, step_hparams, spec)
    np.testing.assert_allclose(float(metrics['learning_rate']), rate, rtol=1e-6)
    np.testing.assert_allclose(float(metrics['loss']),
                               float(metrics['recon'] + beta * metrics['kl']), rtol=1e-5)
  assert len(traces) == 1
  assert steps.train_step._cache_size() - cache_before == 1  # pylint: disable=protected-access
  assert int(state.step) == 5


# ------------------------------------------------------------------- training


def test_one_step_is_an_adam_update_of_the_batch_loss(setup):
  _, dataset, spec, hparams = setup
  state = train_state.init_state(spec, SEED)
  before = _host(state.params)
  indices = jnp.asarray([1, 5, 9, 13], jnp.int32)
  # The step's keys and batch, rebuilt outside it.
  data_key, sample_key = key_streams.step_keys(jnp.asarray(SEED), jnp.asarray(0))
  x, y = _batch(dataset, indices, data_key)
  grads = jax.grad(lambda p: steps.batch_loss(p, x, y, sample_key, hparams,
                                              jnp.asarray(0), spec)[0])(state.params)
  adam = optax.adam(1e-2, b1=0.9, b2=0.999, eps=1e-8)
  updates, _ = adam.update(grads, adam.init(state.params), state.params)
  expected = _host(optax.apply_updates(state.params, updates))

  state, metrics = steps.train_step(state, dataset.arrays, indices, hparams, spec)
  after = _host(state.params)
  assert int(state.step) == 1
  for path, old in jax.tree_util.tree_leaves_with_path(before):
    new = after
    for entry in path:
      new = new[entry.key]
    change = np.abs(new - old)
    assert change.max() > 0.0, path  # every parameter array moved ...
    assert change.max() <= 1e-2 * (1 + 1e-5), path  # ... by at most lr (Adam, step 1)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
               after, expected)
  np.testing.assert_allclose(float(metrics['grad_norm']), float(optax.tree.norm(grads)),
                             rtol=1e-5)


def test_loss_decreases_on_a_fixed_batch(setup):
  _, dataset, spec, hparams = setup
  state = train_state.init_state(spec, SEED)
  indices = jnp.asarray([0, 1, 2, 3], jnp.int32)
  losses = []
  for _ in range(30):
    state, metrics = steps.train_step(state, dataset.arrays, indices, hparams, spec)
    losses.append(float(metrics['loss']))
  assert np.all(np.isfinite(losses))
  first, last = np.mean(losses[:5]), np.mean(losses[-5:])
  assert last < first - 0.05 * abs(first), (first, last)


def _three_steps(spec, hparams, dataset, seed):
  state = train_state.init_state(spec, seed)
  for step in range(3):
    indices = dataset.train_indices(seed, step, BATCH)
    state, _ = steps.train_step(state, dataset.arrays, indices, hparams, spec)
  return _host(state.params)


def test_same_seed_is_bit_identical_and_seeds_differ():
  config = _config()
  dataset = _dataset(binarize='dynamic')  # the data key matters too
  spec = train_state.make_spec(config, dataset.spec)
  hparams = train_state.make_hparams(config, dataset_size=1)
  run_a = _three_steps(spec, hparams, dataset, seed=0)
  run_b = _three_steps(spec, hparams, dataset, seed=0)
  run_c = _three_steps(spec, hparams, dataset, seed=1)
  jax.tree.map(np.testing.assert_array_equal, run_a, run_b)
  differ = jax.tree.map(lambda a, c: not np.array_equal(a, c), run_a, run_c)
  assert all(jax.tree.leaves(differ))


def test_train_steps_equal_one_step_at_a_time(setup):
  """K steps in one dispatch are K train_step calls: same states, metrics stacked [K]."""
  _, dataset, spec, hparams = setup
  indices = np.stack([dataset.train_indices(SEED, step, BATCH) for step in range(3)])
  state = train_state.init_state(spec, SEED)
  singles = []
  for row in indices:
    state, metrics = steps.train_step(state, dataset.arrays, row, hparams, spec)
    singles.append(_host(metrics))
  expected = _host(state)
  state, metrics = steps.train_steps(train_state.init_state(spec, SEED), dataset.arrays, indices,
                                     hparams, spec)
  jax.tree.map(lambda a, e: np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-6),
               _host(state), expected)
  for key, values in _host(metrics).items():
    assert values.shape == (3,)
    np.testing.assert_allclose(values, [m[key] for m in singles], rtol=1e-5, atol=1e-6)
  assert int(state.step) == 3


# --------------------------------------------------------------- lr schedules


def _lr(schedule, step, **train):
  hparams = train_state.make_hparams(_config(**train), dataset_size=1)
  return float(steps.learning_rate(schedule, jnp.asarray(step, jnp.int32), hparams))


def test_constant_learning_rate():
  for step in (0, 1, 50, 100, 10_000):
    assert _lr('constant', step) == pytest.approx(1e-2, rel=1e-6)


def test_warmup_learning_rate():
  # lr(t) = peak·min(1, (t + 1)/W): linear, the W-th update (t = W − 1) at the peak.
  values = [_lr('constant', t, warmup_steps=10) for t in range(15)]
  np.testing.assert_allclose(values[:10], 1e-2 * np.arange(1, 11) / 10, rtol=1e-6)
  np.testing.assert_allclose(values[10:], 1e-2, rtol=1e-6)
  np.testing.assert_allclose(np.diff(values[:10]), 1e-3, rtol=1e-4)


def test_cosine_learning_rate():
  lr = lambda t: _lr('cosine', t, num_steps=100)
  assert lr(0) == pytest.approx(1e-2, rel=1e-6)
  assert lr(50) == pytest.approx(5e-3, rel=1e-5)
  assert lr(25) == pytest.approx(1e-2 * 0.5 * (1 + np.cos(np.pi / 4)), rel=1e-5)
  assert abs(lr(100)) < 1e-9
  assert abs(lr(150)) < 1e-9
  values = [lr(t) for t in range(0, 101, 10)]
  assert np.all(np.diff(values) < 0)
  # With warm-up the two multiply.
  warm = _lr('cosine', 4, num_steps=100, warmup_steps=10)
  assert warm == pytest.approx(1e-2 * 0.5 * 0.5 * (1 + np.cos(np.pi * 0.04)), rel=1e-5)


# ---------------------------------------------------------------- golden value


def _log_sigmoid(v):
  return -np.logaddexp(0.0, -v)


def _dense_stack(layers: dict, h: np.ndarray) -> np.ndarray:
  """Dense_0 … Dense_n with ReLU between them, in float64 numpy."""
  names = sorted(layers, key=lambda n: int(n.split('_')[1]))
  for i, name in enumerate(names):
    h = h @ layers[name]['kernel'].astype(np.float64) + layers[name]['bias']
    if i < len(names) - 1:
      h = np.maximum(h, 0.0)
  return h


def test_first_step_loss_matches_a_hand_computation(setup):
  _, dataset, spec, hparams = setup
  state = train_state.init_state(spec, SEED)
  params = _host(state.params)['params']
  indices = np.array([2, 11, 6, 15], np.int32)
  # binarize='none': the batch is exactly the stored bytes / 255.
  x = np.asarray(dataset.arrays['train_x'])[indices].astype(np.float64) / 255.0
  _, sample_key = key_streams.step_keys(jnp.asarray(SEED), jnp.asarray(0))
  eps = [np.asarray(jax.random.normal(k, (LATENT,)), np.float64)
         for k in jax.random.split(sample_key, BATCH)]
  losses = []
  for i in range(BATCH):
    out = _dense_stack(params['encoder'], x[i].reshape(-1))
    mu, logvar = out[:LATENT], out[LATENT:]
    z = mu + np.exp(0.5 * logvar) * eps[i]
    logits = _dense_stack(params['decoder'], z).reshape(IMAGE_SHAPE)
    loglik = np.sum(x[i] * _log_sigmoid(logits) + (1 - x[i]) * _log_sigmoid(-logits))
    kl = 0.5 * np.sum(mu**2 + np.exp(logvar) - 1 - logvar)
    losses.append(-loglik + kl)
  expected = np.mean(losses)
  assert 20.0 < expected < 200.0  # ≈ 64 pixels × log 2 at init, plus a small KL

  x32, y = _batch(dataset, indices)
  loss, _ = steps.batch_loss(state.params, x32, y, sample_key, hparams, jnp.asarray(0),
                             spec)
  np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
  _, metrics = steps.train_step(state, dataset.arrays, jnp.asarray(indices), hparams, spec)
  np.testing.assert_allclose(float(metrics['loss']), expected, rtol=1e-5)
  np.testing.assert_allclose(float(metrics['nelbo']), expected, rtol=1e-5)


# ------------------------------------------------------------------ optimizer


def _grads_and_params(scale: float):
  rng = np.random.default_rng(7)
  params = {'a': jnp.asarray(rng.normal(size=(3, 4)), jnp.float32),
            'b': {'c': jnp.asarray(rng.normal(size=(5,)), jnp.float32)}}
  grads = jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape), jnp.float32),
                       params)
  norm = optax.tree.norm(grads)
  return jax.tree.map(lambda g: g * scale / norm, grads), params


def _one_update(opt, grads, params):
  updates, _ = opt.update(grads, opt.init(params), params)
  return updates


def _optimizer(train):
  """The run's Adam scaling from config.train (as StepSpec.optimizer)."""
  return train_state.adam(float(train.adam_b1), float(train.adam_b2), float(train.adam_eps),
                          float(train.grad_clip_norm))


def test_adam_clips_by_global_norm():
  # A large eps makes Adam's first update depend on the gradient's scale, so
  # clipping is visible in it: u = g/(|g| + eps) instead of sign(g).
  lr, clip = 0.1, 0.5
  train = _config(grad_clip_norm=clip, adam_eps=1.0).train
  grads, params = _grads_and_params(scale=10.0)
  ours = _one_update(_optimizer(train), grads, params)
  clipped = jax.tree.map(lambda g: g * clip / 10.0, grads)
  adam = optax.adam(lr, b1=train.adam_b1, b2=train.adam_b2, eps=train.adam_eps)
  reference = _one_update(adam, clipped, params)
  # The step applies −lr·update; optax.adam already includes −lr.
  jax.tree.map(lambda u, r: np.testing.assert_allclose(-lr * u, r, rtol=1e-5, atol=1e-8),
               ours, reference)
  np.testing.assert_allclose(float(optax.tree.norm(ours)) * lr,
                             float(optax.tree.norm(reference)), rtol=1e-5)
  # Without clipping the update is different (larger).
  unclipped = _one_update(_optimizer(_config(adam_eps=1.0).train), grads, params)
  assert float(optax.tree.norm(unclipped)) > 2 * float(optax.tree.norm(ours))
  # Gradients already inside the ball are left alone.
  small, _ = _grads_and_params(scale=0.2)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6),
               _one_update(_optimizer(train), small, params),
               _one_update(_optimizer(_config(adam_eps=1.0).train), small,
                           params))
