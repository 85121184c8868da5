"""The benchmarks measure what they claim: FLOP counts and the torch reference."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special

from benchmarks import cases, conv_formulations
from benchmarks.__main__ import BENCHMARKS
from benchmarks.__main__ import main as benchmarks_main
from conftest import load_experiment
from vae_jax import steps
from vae_jax import train_state
from vae_jax.models import gaussian
from vae_jax.models import likelihoods


@pytest.mark.parametrize('case', ['mlp_b128', pytest.param('conv_b64', marks=pytest.mark.slow)])
def test_train_flops_match_xla_cost_analysis(case):
  """The analytic model FLOPs are XLA's count of the dense/conv work of a step."""
  config = cases.step_config(case)
  config.data.batch_size = 8
  shape = (28, 28, 1) if config.data.name != 'dsprites' else (64, 64, 1)
  spec_data = cases.data_lib.DataSpec(config.data.name, False, shape, 0, 'none')
  dataset = type('D', (), {'spec': spec_data})()
  spec = train_state.make_spec(config, dataset.spec)
  params = train_state.init_state(spec, 0).params
  x = jnp.zeros((8, *shape), jnp.float32)
  y = jnp.zeros((8,), jnp.int32)
  hparams = train_state.make_hparams(config, dataset_size=1)
  grad = jax.jit(lambda p, x: jax.grad(lambda p: steps.batch_loss(
      p, x, y, jax.random.key(0), hparams, jnp.int32(0), spec)[0])(p))
  # Counted on lax's convolutions: vae_jax.conv's transposed conv also
  # multiplies zero taps (2.25x), which are no model FLOPs.
  with conv_formulations.models_convolutions(conv_formulations.CONTENDERS['flax']):
    xla = grad.lower(params, x).compile().cost_analysis()
  xla = xla[0] if isinstance(xla, list) else xla
  ours = cases.train_flops(config, shape)
  # XLA also counts elementwise work (activations, likelihood) and skips the
  # zero-padding taps at the borders of the convolutions.
  assert 0.9 * ours <= xla['flops'] <= 1.15 * ours


def test_torch_reference_is_the_same_network_and_loss():
  """Flax parameters copied into the torch model give the same encoder, decoder and loss."""
  torch = pytest.importorskip('torch')
  from benchmarks import torch_vae  # pylint: disable=g-import-not-at-top
  for case in ('mlp_b128', 'conv_b64'):
    config = cases.step_config(case)
    shape = (28, 28, 1) if config.data.name != 'dsprites' else (64, 64, 1)
    spec = train_state.make_spec(config, cases.data_lib.DataSpec(
        config.data.name, False, shape, 0, 'none'))
    params = train_state.init_state(spec, 0).params['params']
    net = torch_vae.TorchVAE(config.model, shape)
    _copy_params(torch, net, params, getattr(net, 'start', None))
    x = np.random.default_rng(0).random((3, *shape), np.float32)
    mu, logvar = jax.vmap(lambda x_: spec.model.apply({'params': params}, x_, None,
                                                      method=spec.model.encode))(x)
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    with torch.no_grad():
      mu_t, logvar_t = net.encoder(xt).chunk(2, dim=1)
      logits_t = net.decoder(mu_t)
    np.testing.assert_allclose(mu_t.numpy(), mu, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(logvar_t.numpy(), logvar, rtol=1e-4, atol=1e-4)
    logits = jax.vmap(lambda z: spec.model.apply({'params': params}, z, None,
                                                 method=spec.model.decode)['logits'])(mu)
    np.testing.assert_allclose(logits_t.numpy().transpose(0, 2, 3, 1), logits,
                               rtol=1e-3, atol=1e-3)
    with torch.no_grad():
      recon_t, kl_t = net.terms(xt, torch.zeros(3, config.model.latent_dim))
    recon = -jax.vmap(lambda x_, l: likelihoods.log_prob('bernoulli', x_, {'logits': l}))(
        x, logits)
    kl = jnp.sum(gaussian.kl_to_standard(mu, logvar), axis=1)
    np.testing.assert_allclose(recon_t.numpy(), recon, rtol=1e-4)
    np.testing.assert_allclose(kl_t.numpy(), kl, rtol=1e-3, atol=1e-5)


def _copy_params(torch, net, params, start) -> None:
  """Flax Dense/Conv/ConvTranspose kernels → torch Linear/Conv2d/ConvTranspose2d.

  `start` (C, H, W) of a conv net: flax flattens feature maps as (H, W, C),
  torch as (C, H, W), so the Dense layers next to the convolutions are permuted.
  """
  def layers(tree, prefix):
    return [tree[k] for k in sorted((k for k in tree if k.startswith(prefix)),
                                    key=lambda k: int(k.rsplit('_', 1)[1]))]
  enc, dec = params['encoder'], params['decoder']
  flax_layers = layers(enc, 'Conv_') + layers(enc, 'Dense_') + layers(dec, 'Dense_') + layers(
      dec, 'ConvTranspose_')
  torch_layers = [m for m in list(net.encoder) + list(net.decoder)
                  if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
  assert len(flax_layers) == len(torch_layers)
  num_enc_conv = len(layers(enc, 'Conv_'))
  first_dense, last_dense = num_enc_conv, len(flax_layers) - len(layers(dec, 'ConvTranspose_')) - 1
  for i, (flax_layer, module) in enumerate(zip(flax_layers, torch_layers)):
    kernel, bias = np.asarray(flax_layer['kernel']), np.asarray(flax_layer['bias'])
    if start is not None and i == first_dense:  # rows (H, W, C) -> (C, H, W)
      c, h, w = start
      kernel = kernel.reshape(h, w, c, -1).transpose(2, 0, 1, 3).reshape(c * h * w, -1)
    if start is not None and i == last_dense:  # columns (H, W, C) -> (C, H, W)
      c, h, w = start
      kernel = kernel.reshape(-1, h, w, c).transpose(0, 3, 1, 2).reshape(-1, c * h * w)
      bias = bias.reshape(h, w, c).transpose(2, 0, 1).reshape(-1)
    if isinstance(module, torch.nn.Linear):
      weight = kernel.T
      if module.in_features != kernel.shape[0] or weight.shape != tuple(module.weight.shape):
        raise AssertionError('layer sizes differ')
    elif isinstance(module, torch.nn.ConvTranspose2d):
      # lax.conv_transpose (no kernel flip) = torch's transposed conv with the kernel flipped.
      weight = kernel[::-1, ::-1].transpose(2, 3, 0, 1)
    else:
      weight = kernel.transpose(3, 2, 0, 1)
    module.weight.data = torch.from_numpy(np.ascontiguousarray(weight))
    module.bias.data = torch.from_numpy(np.array(bias))


@pytest.mark.parametrize('case', ['mlp_b128', 'fc_b64'])
def test_step_profile_matmuls_are_the_model_flops(case):
  """The 'dense matmuls alone' part does exactly the step's model FLOPs, in GEMMs."""
  from benchmarks import step_profile  # pylint: disable=g-import-not-at-top
  config = cases.step_config(case)
  config.data.batch_size = 4
  shape = (28, 28, 1) if config.data.name != 'dsprites' else (64, 64, 1)
  run, flops = step_profile._matmuls_alone(config, shape, repeats=1)  # pylint: disable=protected-access
  assert flops == cases.train_flops(config, shape)
  run()  # the GEMMs of those shapes compile and run


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.parametrize('name', BENCHMARKS)
def test_quick_benchmark_runs_and_prints_its_table(name, capsys):
  # `python -m benchmarks --quick` (a few steps each, figures meaningless) keeps
  # every benchmark runnable; torch columns stay empty where torch is absent.
  # In this process: the programs it compiles land in the tests' compilation cache.
  with jax.numpy_rank_promotion('allow'):  # as the script runs (the tests raise on it)
    benchmarks_main(['--quick', f'--only={name}'])
  out = capsys.readouterr().out
  section = out.split(f'## {name}\n', 1)[1]
  rows = [line for line in section.splitlines() if line.startswith('| ') and '---' not in line]
  assert len(rows) >= 2, out[-2000:]  # the header and at least one measured row
  assert 'wrote' not in out  # --quick never overwrites results.json


@pytest.mark.parametrize('bits', [8, 16])
def test_narrow_bernoulli_draws_the_quantized_probability(bits):
  """u < p·2^bits with u uniform on [0, 2^bits): P(x = 1) = ⌈p·2^bits⌉ / 2^bits,
  0 at p = 0 and 1 at p = 1 (Monte Carlo, 5 standard errors)."""
  from benchmarks import step_variants  # pylint: disable=g-import-not-at-top
  n = 200_000
  p = jnp.asarray([0.0, 0.3, 1.0 / 255.0, 1.0], jnp.float32)
  draws = step_variants.narrow_bernoulli(jax.random.key(0), jnp.tile(p, (n, 1)), bits)
  assert draws.shape == (n, 4) and draws.dtype == jnp.bool_
  frequency = np.mean(np.asarray(draws), axis=0)
  levels = 2.0**bits
  expected = np.ceil(np.asarray(p, np.float64) * levels) / levels
  assert frequency[0] == 0.0 and frequency[3] == 1.0
  standard_error = np.sqrt(expected * (1 - expected) / n)
  np.testing.assert_array_less(np.abs(frequency - expected)[1:3], 5 * standard_error[1:3])
  bits_ = step_variants.narrow_uniform_bits(jax.random.key(1), (n,), bits)
  assert int(bits_.max()) < levels and int(bits_.min()) >= 0


def test_flattened_adam_equals_adam_per_leaf():
  """optax.flatten(Adam): every parameter in one vector, the same updates."""
  import optax  # pylint: disable=g-import-not-at-top
  config = load_experiment('test')
  spec = train_state.make_spec(config, cases.data_lib.DataSpec('fashion_mnist', False, (28, 28, 1),
                                                         0, 'dynamic'))
  params = train_state.init_state(spec, 0).params
  per_leaf, flat = spec.optimizer, optax.flatten(spec.optimizer)
  states = [per_leaf.init(params), flat.init(params)]
  for i in range(4):
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(i), len(leaves))
    grads = jax.tree.unflatten(tree, [jax.random.normal(k, l.shape) * 10.0**(i - 2)
                                      for k, l in zip(keys, leaves)])
    (a, states[0]), (b, states[1]) = (opt.update(grads, s, params)
                                      for opt, s in zip((per_leaf, flat), states))
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
      np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-6, atol=1e-12)
    params = jax.tree.map(lambda p, u: p - 1e-3 * u, params, a)


def test_step_variants_swap_only_their_part():
  """The benchmark's variants really run: same maths gives the same step (written-out
  likelihood, flattened Adam), other binarization draws give another loss."""
  from benchmarks import step_variants  # pylint: disable=g-import-not-at-top
  config = load_experiment('test')
  config.data.name = 'fashion_mnist'
  config.data.binarize = 'dynamic'
  dataset = cases.synthetic_dataset(config, num_train=64, num_eval=8)
  names = ('as is', 'likelihood: written out, flattened', 'adam: one flattened update',
           'binarize: 8-bit draws')
  trainers = {name: step_variants.VariantTrainer(config, dataset,
                                                 step_variants.VARIANTS[name][0])
              for name in names}
  losses = {name: trainer.steps(3) for name, trainer in trainers.items()}
  base = trainers['as is'].state.params
  for name in names[1:3]:
    np.testing.assert_allclose(losses[name], losses['as is'], rtol=1e-5)
    for x, y in zip(jax.tree.leaves(trainers[name].state.params), jax.tree.leaves(base)):
      np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-4, atol=1e-6)
  assert abs(losses['binarize: 8-bit draws'] - losses['as is']) > 1e-3 * abs(losses['as is'])


@pytest.mark.e2e
@pytest.mark.slow
def test_accelerator_check_quick_names_the_device_and_writes_every_table(tmp_path):
  from benchmarks import accelerator_check  # pylint: disable=g-import-not-at-top
  path = str(tmp_path / 'check.json')
  with jax.numpy_rank_promotion('allow'):  # as the script runs (the tests raise on it)
    report = accelerator_check.main(['--quick', f'--json={path}'])
  with open(path) as f:
    saved = json.load(f)
  assert saved['device']['platform'] == jax.devices()[0].platform
  assert saved['device']['device_kind'] == jax.devices()[0].device_kind
  assert saved['matmul']['gflops'] > 0
  for key, _ in accelerator_check.SECTIONS:
    section = saved[key]
    assert section['rows'] and all(len(r) == len(section['header']) for r in section['rows'])
  step = saved['train_step']['rows'][0]
  assert step[0] == 'mlp_b128' and step[1] > 0 and 0 < step[5] == pytest.approx(
      step[4] / saved['matmul']['gflops'])
  assert [r[0] for r in saved['sweep']['rows']] == ['sweep8_mlp']
  assert saved['memory']['rows'][0][2] > 0  # a fresh process's peak RSS, MiB
  assert report['quick'] is True


# Logits where the written-out softplus could part from jax.nn.softplus: 0 (the
# kink of max(l, 0)), small, moderate, and far in both tails (exp(−|l|) is
# subnormal or 0 in float32 past ~87, in float64 past ~708).
EDGE_LOGITS = (0.0, 1e-3, -1e-3, 0.5, -0.5, 3.0, -3.0, 30.0, -30.0, 100.0, -100.0, 1e4, -1e4)


@pytest.mark.parametrize('dtype', ['float32', 'float64'])
def test_written_out_bernoulli_log_prob_equals_the_softplus_form_with_its_gradient(dtype):
  """The benchmark's written-out likelihood: pixel by pixel, value and d/dlogits
  equal likelihoods.bernoulli_log_prob's (x·l − jax.nn.softplus(l)) and the exact
  log-likelihood and x − σ(l) to rounding (the value never less accurately)."""
  from benchmarks import step_variants  # pylint: disable=g-import-not-at-top

  pixels = [(x, l) for l in EDGE_LOGITS for x in (0.0, 1.0, 0.3)]
  eps = np.finfo(dtype).eps
  with jax.enable_x64(dtype == 'float64'):
    x = jnp.asarray([p[0] for p in pixels], dtype)[:, None]
    logits = jnp.asarray([p[1] for p in pixels], dtype)[:, None]
    both = lambda f: jax.vmap(jax.value_and_grad(f, argnums=1))(x, logits)
    value, grad = both(step_variants.written_out_bernoulli_log_prob)
    old_value, old_grad = both(likelihoods.bernoulli_log_prob)
    assert value.dtype == grad.dtype == jnp.dtype(dtype)
    value, old_value = np.asarray(value, np.float64), np.asarray(old_value, np.float64)
    grad, old_grad = np.asarray(grad, np.float64)[:, 0], np.asarray(old_grad, np.float64)[:, 0]
  # The pixels as the dtype holds them (0.3 is not a float32), then in float64.
  x64, l64 = (np.asarray([p[i] for p in pixels], dtype).astype(np.float64) for i in (0, 1))
  exact = x64 * special.log_expit(l64) + (1.0 - x64) * special.log_expit(-l64)
  # Rounding of a sum of terms of these magnitudes: x·l, max(l, 0), log1p(e^−|l|).
  # XLA's CPU flushes subnormals (σ(−100) in float32) to 0: `tiny` absolute.
  tiny = np.finfo(dtype).tiny
  rounding = 2 * eps * (np.abs(x64 * l64) + np.maximum(l64, 0.0) +
                        np.log1p(np.exp(-abs(l64)))) + tiny
  assert np.all(np.abs(value - old_value) <= rounding)
  assert np.all(np.abs(value - exact) <= np.abs(old_value - exact) + 2 * eps * np.abs(exact))
  assert np.all(np.abs(value - exact) <= rounding)
  # d/dl log p = x − σ(l) = x·σ(−l) − (1 − x)·σ(l), without cancellation in float64.
  sig, sig_neg = special.expit(l64), special.expit(-l64)
  exact_grad = x64 * sig_neg - (1.0 - x64) * sig
  grad_rounding = 4 * eps * (x64 + sig) + tiny
  assert np.all(np.abs(grad - exact_grad) <= grad_rounding)
  assert np.all(np.abs(grad - old_grad) <= 2 * grad_rounding)
  # Where x = 0 and l < 0 the gradient −σ(l) keeps its relative accuracy, however small.
  small = (x64 == 0.0) & (l64 < 0.0)
  np.testing.assert_allclose(grad[small], exact_grad[small], rtol=4 * eps, atol=tiny)
  # l = 0: log p = −log 2 for any x; the derivative at the kink is x − σ(0) = x − ½.
  at_zero = l64 == 0.0
  np.testing.assert_allclose(value[at_zero], -np.log(2.0), rtol=2 * eps)
  np.testing.assert_allclose(grad[at_zero], x64[at_zero] - 0.5, rtol=2 * eps)
  # l = ±1e4: a confident right answer costs 0 nats, a wrong one |l|.
  far = np.abs(l64) == 1e4
  np.testing.assert_allclose(value[far], x64[far] * l64[far] - np.maximum(l64[far], 0.0),
                             rtol=2 * eps)
  assert np.all(np.isfinite(value)) and np.all(np.isfinite(grad))


@pytest.mark.parametrize('setup', ['beta_vae:fc', 'vae'])
def test_evaluation_floors_count_the_train_steps_forward_layers(setup):
  """The evaluation benchmark's per-example encoder and decoder multiply-adds are
  the forward layers that the train step's FLOP count (checked against XLA) sums."""
  from benchmarks import evaluation  # pylint: disable=g-import-not-at-top
  config = evaluation._config(setup, quick=False)  # pylint: disable=protected-access
  shape = (64, 64, 1) if config.data.name == 'dsprites' else (28, 28, 1)
  encoder, decoder = cases.mlp_macs(config, shape)
  first_layer = int(np.prod(shape)) * config.model.hidden_dims[0]
  assert 2.0 * config.data.batch_size * (3 * (encoder + decoder) - first_layer) == (
      cases.train_flops(config, shape))
