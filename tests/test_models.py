"""Tests for vae_jax.models: shapes, jit/vmap consistency, architecture, labels."""

import math

import jax

jax.config.update('jax_numpy_rank_promotion', 'raise')

import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
import numpy as np
import pytest

from vae_jax import configs, models
from vae_jax.models import conv, layers
from vae_jax.errors import ConfigError

LATENT = 6
NUM_CLASSES = 10

# name: (model overrides, image shape)
ARCHITECTURES = {
    'mlp': (dict(architecture='mlp', hidden_dims=(64,)), (28, 28, 1)),
    'conv': (dict(architecture='conv', conv_channels=(32, 64), hidden_dims=(64,)),
             (28, 28, 1)),
    'burgess': (dict(architecture='conv', conv_channels=(32, 32, 32, 32),
                     hidden_dims=(256, 256)), (64, 64, 1)),
}

# (architecture, likelihood, conditional): every architecture, likelihood and
# the CVAE appear at least once, without compiling the full product.
CASES = [
    ('mlp', 'bernoulli', False),
    ('mlp', 'gaussian_learned', True),
    ('conv', 'gaussian_fixed', False),
    ('conv', 'bernoulli', True),
    ('burgess', 'bernoulli', False),
    ('burgess', 'gaussian_learned', True),
]
SLOW_CASES = (('conv', 'gaussian_fixed', False), ('burgess', 'bernoulli', False))
CASE_IDS = [f'{a}-{l}-{"cvae" if c else "vae"}' for a, l, c in CASES]


def _model_config(architecture: str, likelihood: str = 'bernoulli',
                  conditional: bool = False):
  overrides, image_shape = ARCHITECTURES[architecture]
  config = configs.get_config()
  for key, value in overrides.items():
    config.model[key] = value
  config.model.latent_dim = LATENT
  config.model.likelihood = likelihood
  config.model.conditional = conditional
  configs.validate(config)
  return config.model, image_shape


def _build(architecture: str, likelihood: str = 'bernoulli', conditional: bool = False,
           seed: int = 0):
  """(model, params, image_shape, model config) initialised on one example."""
  model_config, image_shape = _model_config(architecture, likelihood, conditional)
  model = models.build(model_config, image_shape, NUM_CLASSES)
  x = jnp.zeros(image_shape, jnp.float32)
  params = model.init(jax.random.key(seed), x, jnp.zeros((), jnp.int32))
  return model, params, image_shape, model_config


def _images(shape, num: int, seed: int = 0) -> jax.Array:
  rng = np.random.default_rng(seed)
  return jnp.asarray((rng.random((num,) + tuple(shape)) < 0.4).astype(np.float32))


def _encode(model, params, x, y):
  return model.apply(params, x, y, method=models.VAE.encode)


def _decode(model, params, z, y):
  return model.apply(params, z, y, method=models.VAE.decode)


def _close(a, b):
  jax.tree.map(lambda u, v: np.testing.assert_allclose(
      np.asarray(u), np.asarray(v), rtol=1e-5, atol=1e-5), a, b)


@pytest.mark.parametrize('architecture, likelihood, conditional', [
    pytest.param(*c, marks=pytest.mark.slow) if c in SLOW_CASES else c for c in CASES
], ids=CASE_IDS)
def test_encode_decode_shapes_jit_and_vmap(architecture, likelihood, conditional):
  model, params, image_shape, model_config = _build(architecture, likelihood, conditional)
  xs = _images(image_shape, 2)
  ys = jnp.array([1, 7], jnp.int32)
  zs = jax.random.normal(jax.random.key(1), (2, LATENT))

  mu, logvar = _encode(model, params, xs[0], ys[0])
  assert mu.shape == (LATENT,) and logvar.shape == (LATENT,)
  assert mu.dtype == jnp.float32 and np.all(np.isfinite(np.asarray(logvar)))
  out = _decode(model, params, zs[0], ys[0])
  if likelihood == 'bernoulli':
    assert set(out) == {'logits'}
    assert out['logits'].shape == image_shape
  else:
    assert set(out) == {'mean', 'log_scale'}
    assert out['mean'].shape == image_shape and out['log_scale'].shape == ()
    if likelihood == 'gaussian_fixed':
      np.testing.assert_allclose(float(out['log_scale']),
                                 math.log(model_config.gaussian_scale), rtol=1e-6)

  # jit gives what eager gives.
  encode_jit = jax.jit(lambda p, x, y: _encode(model, p, x, y))
  decode_jit = jax.jit(lambda p, z, y: _decode(model, p, z, y))
  _close(encode_jit(params, xs[0], ys[0]), (mu, logvar))
  _close(decode_jit(params, zs[0], ys[0]), out)

  # vmap over a batch equals a Python loop over its examples.
  batched_enc = jax.vmap(lambda x, y: _encode(model, params, x, y))(xs, ys)
  batched_dec = jax.vmap(lambda z, y: _decode(model, params, z, y))(zs, ys)
  assert batched_enc[0].shape == (2, LATENT)
  for i in range(2):
    _close(jax.tree.map(lambda t, i=i: t[i], batched_enc),
           _encode(model, params, xs[i], ys[i]))
    _close(jax.tree.map(lambda t, i=i: t[i], batched_dec),
           _decode(model, params, zs[i], ys[i]))
  # ... and the examples really differ (the loop is not comparing constants).
  assert not np.allclose(np.asarray(batched_enc[0][0]), np.asarray(batched_enc[0][1]))


def test_burgess_architecture():
  model, params, image_shape, _ = _build('burgess')
  shapes = jax.tree.map(lambda a: a.shape, params['params'])
  encoder, decoder = shapes['encoder'], shapes['decoder']
  assert image_shape == (64, 64, 1)
  # Encoder: 4 convs of 32 4×4 filters, then two 256-wide Dense and the head.
  assert sorted(encoder) == ['Conv_0', 'Conv_1', 'Conv_2', 'Conv_3',
                             'Dense_0', 'Dense_1', 'Dense_2']
  assert encoder['Conv_0']['kernel'] == (4, 4, 1, 32)
  for i in (1, 2, 3):
    assert encoder[f'Conv_{i}']['kernel'] == (4, 4, 32, 32)
  assert encoder['Dense_0']['kernel'] == (4 * 4 * 32, 256)  # 64 / 2⁴ = 4
  assert encoder['Dense_1']['kernel'] == (256, 256)
  assert encoder['Dense_2']['kernel'] == (256, 2 * LATENT)
  # Decoder mirrors it: z → 256 → 256 → 4·4·32 → 3 transposed convs of 32 → 1.
  assert sorted(decoder) == ['ConvTranspose_0', 'ConvTranspose_1', 'ConvTranspose_2',
                             'ConvTranspose_3', 'Dense_0', 'Dense_1', 'Dense_2']
  assert decoder['Dense_0']['kernel'] == (LATENT, 256)
  assert decoder['Dense_1']['kernel'] == (256, 256)
  assert decoder['Dense_2']['kernel'] == (256, 4 * 4 * 32)
  for i in (0, 1, 2):
    assert decoder[f'ConvTranspose_{i}']['kernel'] == (4, 4, 32, 32)
  assert decoder['ConvTranspose_3']['kernel'] == (4, 4, 32, 1)
  # Feature maps halve at every conv (64 → 32 → 16 → 8 → 4), and the decoder
  # doubles them back to the image.
  x = _images(image_shape, 1)[0]
  _, state = model.apply(params, x, None, method=models.VAE.encode,
                         capture_intermediates=True)
  conv_shapes = [state['intermediates']['encoder'][f'Conv_{i}']['__call__'][0].shape
                 for i in range(4)]
  assert conv_shapes == [(32, 32, 32), (16, 16, 32), (8, 8, 32), (4, 4, 32)]
  out, state = model.apply(params, jnp.zeros(LATENT), None, method=models.VAE.decode,
                           capture_intermediates=True)
  deconv_shapes = [state['intermediates']['decoder'][f'ConvTranspose_{i}']['__call__'][0]
                   .shape for i in range(4)]
  assert deconv_shapes == [(8, 8, 32), (16, 16, 32), (32, 32, 32), (64, 64, 1)]
  assert out['logits'].shape == (64, 64, 1)


@pytest.mark.parametrize('architecture', ['mlp', 'conv'])
def test_conditional_model_uses_the_label(architecture):
  model, params, image_shape, _ = _build(architecture, conditional=True)
  x = _images(image_shape, 1)[0]
  z = jax.random.normal(jax.random.key(2), (LATENT,))
  label = lambda k: jnp.asarray(k, jnp.int32)
  enc_a, enc_b = (_encode(model, params, x, label(k)) for k in (2, 5))
  dec_a, dec_b = (_decode(model, params, z, label(k)) for k in (2, 5))
  for a, b in zip(enc_a, enc_b):
    assert np.max(np.abs(np.asarray(a) - np.asarray(b))) > 1e-4
  assert np.max(np.abs(np.asarray(dec_a['logits'] - dec_b['logits']))) > 1e-4
  # The label enters as a one-hot vector: Dense kernels grow by NUM_CLASSES rows.
  flat = params['params']
  assert flat['decoder']['Dense_0']['kernel'].shape[0] == LATENT + NUM_CLASSES


@pytest.mark.parametrize('architecture', ['mlp', 'conv'])
def test_unconditional_model_ignores_the_label(architecture):
  model, params, image_shape, _ = _build(architecture, conditional=False)
  x = _images(image_shape, 1)[0]
  z = jax.random.normal(jax.random.key(3), (LATENT,))
  enc = [_encode(model, params, x, jnp.asarray(k, jnp.int32)) for k in (2, 5)]
  dec = [_decode(model, params, z, jnp.asarray(k, jnp.int32)) for k in (2, 5)]
  jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)),
               enc[0], enc[1])
  jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)),
               dec[0], dec[1])
  assert params['params']['decoder']['Dense_0']['kernel'].shape[0] == LATENT


def test_gaussian_learned_has_a_trainable_log_scale():
  model, params, image_shape, _ = _build('mlp', 'gaussian_learned')
  decoder_params = params['params']['decoder']
  assert decoder_params['log_scale'].shape == ()
  assert float(decoder_params['log_scale']) == 0.0
  z = jax.random.normal(jax.random.key(4), (LATENT,))
  y = jnp.zeros((), jnp.int32)
  new = jax.tree.map(lambda a: a, params)
  new['params']['decoder']['log_scale'] = jnp.asarray(-1.25, jnp.float32)
  out = _decode(model, new, z, y)
  assert float(out['log_scale']) == -1.25
  _close(out['mean'], _decode(model, params, z, y)['mean'])
  # A gradient flows to it: d/dlogσ of Σ log N(x; m, σ²) at σ = 1 is Σ (x − m)² − 1.
  x = _images(image_shape, 1)[0]

  def log_lik(p):
    o = _decode(model, p, z, y)
    diff = x - o['mean']
    return jnp.sum(-0.5 * diff * diff * jnp.exp(-2 * o['log_scale']) - o['log_scale'])

  grads = jax.grad(log_lik)(params)
  mean = _decode(model, params, z, y)['mean']
  np.testing.assert_allclose(float(grads['params']['decoder']['log_scale']),
                             float(jnp.sum((x - mean) ** 2) - x.size), rtol=1e-4)


def test_gaussian_fixed_uses_the_config_scale():
  model_config, image_shape = _model_config('mlp', 'gaussian_fixed')
  model_config.gaussian_scale = 0.37
  model = models.build(model_config, image_shape, NUM_CLASSES)
  x = jnp.zeros(image_shape, jnp.float32)
  params = model.init(jax.random.key(0), x, jnp.zeros((), jnp.int32))
  assert 'log_scale' not in params['params']['decoder']
  out = _decode(model, params, jnp.ones(LATENT), jnp.zeros((), jnp.int32))
  np.testing.assert_allclose(float(out['log_scale']), math.log(0.37), rtol=1e-6)


@pytest.mark.parametrize('conv_channels, image_shape', [
    ((32, 64, 64), (28, 28, 1)),  # 28 is not divisible by 8
    ((32, 64), (30, 30, 1)),  # 30 is not divisible by 4
    ((32, 32, 32, 32), (64, 48 + 2, 3)),  # only the width fails
])
def test_conv_with_indivisible_image_raises_config_error(conv_channels, image_shape):
  model_config, _ = _model_config('conv')
  model_config.conv_channels = conv_channels
  with pytest.raises(ConfigError, match='divisible by'):
    models.build(model_config, image_shape, NUM_CLASSES)
  # The MLP has no such constraint.
  model_config.architecture = 'mlp'
  assert isinstance(models.build(model_config, image_shape, NUM_CLASSES), models.VAE)


def _layer_fan_ins(params: dict) -> dict:
  """{(module, layer): PyTorch's fan-in} of the conv model's layers: in features
  (+ one-hot label) for Dense, 16·Cin for a conv, 16·Cout for a transposed conv."""
  fans = {}
  for module, module_layers in params['params'].items():
    for name, layer in module_layers.items():
      kernel = layer['kernel']
      if name.startswith('ConvTranspose_'):
        fans[module, name] = conv.KERNEL**2 * kernel.shape[3]
      elif name.startswith('Conv_'):
        fans[module, name] = conv.KERNEL**2 * kernel.shape[2]
      else:
        fans[module, name] = kernel.shape[0]
  return fans


@pytest.mark.parametrize('architecture', ['mlp', pytest.param('conv', marks=pytest.mark.slow)])
def test_torch_init_draws_pytorch_default_ranges_and_variances(architecture):
  """model.init='torch': kernel and bias of every layer ~ U(±1/√fan_in) with
  PyTorch's fan-in (a transposed conv's from its output channels); 'flax'
  passes nothing, so the layers keep flax's defaults (tests/test_golden.py)."""
  assert layers.initializers('flax', 100) == {}
  config = configs.get_config()
  config.model.update(architecture=architecture, conv_channels=(8, 16), hidden_dims=(48,),
                      latent_dim=3, conditional=True, init='torch')
  configs.validate(config)
  image_shape = (8, 8, 1)
  model = models.build(config.model, image_shape, NUM_CLASSES)
  params = jax.jit(model.init)(jax.random.key(0), jnp.zeros(image_shape, jnp.float32),
                               jnp.zeros((), jnp.int32))
  fans = _layer_fan_ins(params)
  if architecture == 'conv':
    assert fans['decoder', 'ConvTranspose_0'] == 16 * 8  # output channels, not 16 input ones
    assert fans['decoder', 'ConvTranspose_1'] == 16 * 1
    assert fans['encoder', 'Conv_1'] == 16 * 8
    assert fans['encoder', 'Dense_0'] == 2 * 2 * 16 + NUM_CLASSES  # the label appended
  else:
    assert fans['encoder', 'Dense_0'] == 8 * 8 + NUM_CLASSES
    assert fans['decoder', 'Dense_0'] == 3 + NUM_CLASSES
  for (module, name), fan_in in fans.items():
    bound = 1.0 / math.sqrt(fan_in)
    for leaf in ('kernel', 'bias'):
      values = np.asarray(params['params'][module][name][leaf]).ravel()
      assert np.all(np.abs(values) <= bound), (module, name, leaf)
      if values.size >= 20:  # spread over the range: P(all within ±b/2) = 2^−n
        assert np.max(np.abs(values)) > 0.5 * bound, (module, name, leaf)
    kernel = np.asarray(params['params'][module][name]['kernel']).ravel()
    if kernel.size >= 1000:
      # U(−b, b): variance b²/3; the sample variance's relative standard error
      # is √(0.8/n) (excess kurtosis −1.2): 5 of them allowed (a fan-in off by
      # 2× is 5× that).
      tolerance = 5 * math.sqrt(0.8 / kernel.size) * bound**2 / 3
      assert abs(np.mean(kernel**2) - bound**2 / 3) < tolerance, (module, name)


def test_init_config_value_is_validated():
  config = configs.get_config()
  config.model.init = 'kaiming'
  with pytest.raises(ConfigError, match='model.init'):
    configs.validate(config)


def test_fc_decoder_activation_is_its_own_setting():
  # The β-VAE paper's fc network: ReLU encoder, tanh decoder (experiments' :fc).
  config = configs.dsprites_experiment('fc')
  assert (config.model.activation, config.model.decoder_activation) == ('relu', 'tanh')
  reference = configs.dsprites_experiment('reference_conv')
  assert reference.model.architecture == 'reference_conv'
  assert configs.dsprites_experiment('conv').model.decoder_activation == ''  # its ReLU
  config = configs.get_config()
  config.model.hidden_dims, config.model.decoder_hidden_dims = (5,), (4, 3)
  config.model.latent_dim, config.model.decoder_activation = 2, 'tanh'
  configs.validate(config)
  model = models.build(config.model, (2, 2, 1), 0)
  params = model.init(jax.random.key(0), jnp.zeros((2, 2, 1)), jnp.zeros((), jnp.int32))
  dec = {k: (np.asarray(v['kernel']), np.asarray(v['bias']))
         for k, v in params['params']['decoder'].items()}
  z = np.array([0.3, -1.2], np.float32)
  h = np.tanh(z @ dec['Dense_0'][0] + dec['Dense_0'][1])
  h = np.tanh(h @ dec['Dense_1'][0] + dec['Dense_1'][1])
  logits = (h @ dec['Dense_2'][0] + dec['Dense_2'][1]).reshape(2, 2, 1)
  out = _decode(model, params, jnp.asarray(z), jnp.zeros((), jnp.int32))
  np.testing.assert_allclose(np.asarray(out['logits']), logits, rtol=1e-5, atol=1e-6)
  # The encoder keeps its own (ReLU): its first layer's output is never negative.
  enc = params['params']['encoder']['Dense_0']
  x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 2, 1)), jnp.float32)
  first = np.maximum(np.asarray(x).reshape(-1) @ np.asarray(enc['kernel'])
                     + np.asarray(enc['bias']), 0)
  mu, _ = _encode(model, params, x, jnp.zeros((), jnp.int32))
  head = params['params']['encoder']['Dense_1']
  np.testing.assert_allclose(np.asarray(mu), (first @ np.asarray(head['kernel'])
                                              + np.asarray(head['bias']))[:2], rtol=1e-5)
  config.model.decoder_activation = 'sigmoid'
  with pytest.raises(ConfigError, match='decoder_activation'):
    configs.validate(config)
