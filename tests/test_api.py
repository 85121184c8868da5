"""vae_jax.load: a trained run as a model object, its numbers equal to the evaluation's."""

import json
import os
import re

import numpy as np
import pytest

import vae_jax
from conftest import REPO, cli, load_experiment, write_fake_mnist
from vae_jax import configs, train
from vae_jax import data as data_lib
from vae_jax.data import dsprites, image_arrays

pytestmark = pytest.mark.e2e  # every test here makes or reads a run


def _summary(workdir: str) -> dict:
  with open(os.path.join(workdir, 'summary.json')) as f:
    return json.load(f)


@pytest.fixture(scope='module')
def vae_run(tmp_path_factory, fake_mnist_dir):
  """A tiny MLP VAE on fake Fashion-MNIST-format data (dynamic binarization)."""
  config = configs.make_tiny(load_experiment('vae'))
  config.data.local_dir = fake_mnist_dir
  workdir = str(tmp_path_factory.mktemp('api') / 'vae')
  train.train_and_evaluate(config, workdir)
  test = image_arrays.load_idx_dir(fake_mnist_dir)
  return workdir, test.test_images, test.test_labels


@pytest.fixture(scope='module')
def vae(vae_run):
  return vae_jax.load(vae_run[0])


def test_elbo_and_nll_iw_equal_the_evaluation(vae_run, vae):
  workdir, images, _ = vae_run
  summary = _summary(workdir)
  terms = vae.elbo(images)
  assert set(terms) == {'recon', 'kl', 'nelbo'} and terms['nelbo'].shape == (len(images),)
  np.testing.assert_allclose(terms['nelbo'], terms['recon'] + terms['kl'], rtol=1e-6)
  assert float(np.mean(terms['nelbo'])) == pytest.approx(summary['nelbo'], rel=1e-5)
  assert float(np.mean(terms['kl'])) == pytest.approx(summary['kl'], rel=1e-5)
  nll = vae.nll_iw(images, k=summary['iw_samples'])
  assert float(np.mean(nll)) == pytest.approx(summary['nll_iw'], rel=1e-5)


def test_scores_do_not_depend_on_the_batch(vae_run, vae):
  images = vae_run[1]
  full = vae.nll_iw(images, k=8)
  part = vae.nll_iw(images[10:15], k=8, indices=np.arange(10, 15))
  np.testing.assert_allclose(part, full[10:15], rtol=1e-5)
  np.testing.assert_allclose(vae.elbo(images[:7])['nelbo'], vae.elbo(images)['nelbo'][:7],
                             rtol=1e-5)


def test_inputs_uint8_float_with_or_without_channel_axis(vae_run, vae):
  images = vae_run[1][:5]  # uint8 [5, 28, 28, 1]
  mu, sigma = vae.encode(images)
  assert mu.shape == sigma.shape == (5, vae.latent_dim) and np.all(sigma > 0)
  for same in (images[..., 0], images.astype(np.float32) / 255.0,
               (images[..., 0] / 255.0).astype(np.float64)):
    np.testing.assert_allclose(vae.encode(same)[0], mu, rtol=1e-5, atol=1e-6)
  _, logvar = vae.encode(images, return_logvar=True)
  np.testing.assert_allclose(np.exp(0.5 * logvar), sigma, rtol=1e-6)
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  np.testing.assert_allclose(vae.encode(jnp.asarray(images))[0], mu, rtol=1e-6)


def test_decode_sample_reconstruct_interpolate_traverse(vae_run, vae):
  images = vae_run[1][:6]
  samples = vae.sample(5, seed=3)
  assert samples.shape == (5, 28, 28, 1) and samples.min() >= 0 and samples.max() <= 1
  np.testing.assert_array_equal(samples, vae.sample(5, seed=3))
  assert not np.array_equal(samples, vae.sample(5, seed=4))
  mu, _ = vae.encode(images)
  recon = vae.reconstruct(images)
  np.testing.assert_allclose(recon, vae.decode(mu), rtol=1e-6)
  for method in ('linear', 'spherical'):
    path = vae.interpolate(images[:3], images[3:], num_points=5, method=method)
    assert path.shape == (3, 5, 28, 28, 1)
    np.testing.assert_allclose(path[:, 0], recon[:3], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(path[:, -1], recon[3:], rtol=1e-4, atol=1e-5)
  offsets = [-2.0, 0.0, 2.0]  # added to mu, as in the traversal pictures
  grid = vae.traverse(images[:2], dim=1, offsets=offsets)
  assert grid.shape == (2, 3, 28, 28, 1)
  z = np.repeat(mu[:2, None], 3, axis=1)
  z[:, :, 1] += offsets
  np.testing.assert_allclose(grid, vae.decode(z.reshape(6, -1)).reshape(grid.shape),
                             rtol=1e-6)
  # Many examples run in several fixed-size batches.
  many = np.concatenate([vae_run[1]] * 5)  # 320 > BATCH
  np.testing.assert_allclose(vae.encode(many)[0][-64:], vae.encode(vae_run[1])[0],
                             rtol=1e-5, atol=1e-6)


BAD_INPUTS = [
    (lambda m, x: m.encode(x[0]), 'x is one image of shape (28, 28, 1); pass a batch '
                                  '[N, 28, 28, 1], e.g. x[None]'),
    (lambda m, x: m.encode(x[:, 0]), 'must be images [N, 28, 28, 1] or [N, 28, 28], got '
                                     'shape (64, 28, 1)'),
    (lambda m, x: m.sample(-1), 'n must be a positive number of images, got -1'),
    (lambda m, x: m.sample(2.5), 'n must be a positive number of images, got 2.5'),
    (lambda m, x: m.encode(x[:, :14]), 'got shape (64, 14, 28, 1)'),
    (lambda m, x: m.encode(x.astype(np.int64)), 'got dtype int64'),
    (lambda m, x: m.encode(x.astype(np.float32)), 'float pixels in [0, 1]'),
    (lambda m, x: m.encode(x, y=np.zeros(64, int)), 'not conditional'),
    (lambda m, x: m.decode(np.zeros((2, 7))), 'latents [N, 3]'),
    (lambda m, x: m.nll_iw(x, k=0), 'positive number of samples'),
    (lambda m, x: m.traverse(x[:1], dim=3, offsets=[0.0]), 'dim must be in 0..2'),
    (lambda m, x: m.interpolate(x[:2], x[:3]), 'as many images'),
    (lambda m, x: m.elbo(x, indices=np.arange(3)), 'indices must be integers [64]'),
]


@pytest.mark.parametrize('call,message', BAD_INPUTS)
def test_bad_input_is_a_value_error_naming_expected_and_got(vae_run, vae, call, message):
  with pytest.raises(ValueError, match=re.escape(message)):
    call(vae, vae_run[1])


@pytest.fixture(scope='module')
def dsprites_runs(tmp_path_factory):
  """(CVAE workdir, AE workdir) of experiments/test.py (procedural dSprites)."""
  root = tmp_path_factory.mktemp('api_dsprites')
  cvae = load_experiment('test')
  cvae.model.conditional = True
  train.train_and_evaluate(cvae, str(root / 'cvae'))
  ae = load_experiment('test')
  ae.objective.name = 'ae'
  train.train_and_evaluate(ae, str(root / 'ae'))
  return str(root / 'cvae'), str(root / 'ae')


def test_cvae_needs_labels_and_matches_the_evaluation(dsprites_runs):
  workdir = dsprites_runs[0]
  model = vae_jax.load(workdir)
  assert model.num_classes == 3 and model.image_shape == (64, 64, 1)
  eval_ids = data_lib.load(load_experiment('test').data).eval_ids
  images = np.asarray(dsprites.render_indices(eval_ids))
  labels = np.asarray(dsprites.index_to_factors(eval_ids))[:, 1]
  with pytest.raises(ValueError, match='pass labels y'):
    model.encode(images)
  with pytest.raises(ValueError, match=re.escape('y must be in 0..2')):
    model.encode(images, y=np.full(len(images), 3))
  nelbo = model.elbo(images, labels, indices=eval_ids)['nelbo']
  assert float(np.mean(nelbo)) == pytest.approx(_summary(workdir)['nelbo'], rel=1e-5)
  assert model.sample(4, y=[0, 1, 2, 0]).shape == (4, 64, 64, 1)
  assert model.interpolate(images[:2], images[2:4], num_points=3, y=labels[:2]).shape == (
      2, 3, 64, 64, 1)


def test_autoencoder_refuses_what_it_cannot_serve(dsprites_runs):
  model = vae_jax.load(dsprites_runs[1])
  images = np.asarray(dsprites.render_indices(np.arange(4)))
  assert model.reconstruct(images).shape == images.shape
  for call in (lambda: model.sample(2), lambda: model.elbo(images),
               lambda: model.nll_iw(images, k=4)):
    with pytest.raises(ValueError, match="'ae' trains a deterministic autoencoder"):
      call()


def test_load_a_given_step_and_bad_workdirs(dsprites_runs, tmp_path):
  first = vae_jax.load(dsprites_runs[0], step=3)
  last = vae_jax.load(dsprites_runs[0])
  assert (first.step, last.step) == (3, 6)
  from vae_jax.errors import WorkdirError  # pylint: disable=g-import-not-at-top
  with pytest.raises(WorkdirError, match=re.escape('the steps saved are [3, 6]')):
    vae_jax.load(dsprites_runs[0], step=4)
  with pytest.raises(WorkdirError, match='no config.json'):
    vae_jax.load(str(tmp_path))


def test_load_passes_over_an_unreadable_newest_checkpoint_quietly(dsprites_runs, tmp_path,
                                                                  caplog):
  import shutil  # pylint: disable=g-import-not-at-top
  import warnings  # pylint: disable=g-import-not-at-top
  from vae_jax.errors import WorkdirError  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path / 'run')
  shutil.copytree(dsprites_runs[0], workdir)
  caplog.set_level('WARNING')
  assert vae_jax.load(workdir).step == 6
  # Orbax's notices that a read-only manager is read-only are not shown.
  assert not [r for r in caplog.records if 'read only' in r.getMessage()
              or 'read_only' in r.getMessage()]
  for root, _, names in os.walk(os.path.join(workdir, 'checkpoints', '6')):
    for name in names:
      with open(os.path.join(root, name), 'wb') as f:
        f.write(b'\x00garbage')
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter('always')
    model = vae_jax.load(workdir)
  assert model.step == 3
  assert any('step 6) cannot be read; loaded step 3' in str(w.message) for w in caught)
  assert os.path.isdir(os.path.join(workdir, 'checkpoints', '6'))  # left where it was
  with pytest.raises(WorkdirError, match=re.escape('pass another step (saved: [3])')):
    vae_jax.load(workdir, step=6)


def _readme_example() -> str:
  with open(os.path.join(REPO, 'README.md')) as f:
    text = f.read()
  section = text.split('## Use a trained model', 1)[1]
  return re.search(r'```python\n(.*?)```', section, re.S).group(1)


def test_readme_example_runs_verbatim(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  train.train_and_evaluate(load_experiment('test'), 'runs/demo')
  namespace = {}
  exec(compile(_readme_example(), 'README.md', 'exec'), namespace)  # pylint: disable=exec-used
  assert namespace['samples'].shape == (16, 64, 64, 1)
  assert np.all(np.isfinite(namespace['nll'])) and namespace['nll'].shape == (8,)


# --------------------------------------------------------------- command line


@pytest.mark.slow
def test_workdir_alone_resumes_evaluates_and_refuses_other_changes(tmp_path):
  workdir = str(tmp_path / 'run')
  out = cli('--config=experiments/test.py', f'--workdir={workdir}',
            '--config.train.num_steps=3')
  assert out.returncode == 0, out.stderr[-2000:]
  # --workdir alone (with overrides of settings that keep the trained function).
  out = cli(f'--workdir={workdir}', '--config.train.num_steps=6',
            '--config.train.log_every_steps=1', '--config.eval.iw_samples=4')
  assert out.returncode == 0, out.stderr[-2000:]
  assert 'from step 3' in out.stderr
  with open(os.path.join(workdir, 'run.json')) as f:
    changed = json.load(f)['changed_on_resume']
  assert changed == {'train.num_steps': [3, 6], 'train.log_every_steps': [2, 1],
                     'eval.iw_samples': [8, 4]}
  assert _summary(workdir)['step'] == 6 and _summary(workdir)['iw_samples'] == 4
  # Run again when finished: it says so (no "resuming"), and run.json keeps the record
  # of every earlier start, the changes made on resume included.
  out = cli(f'--workdir={workdir}')
  assert out.returncode == 0, out.stderr[-2000:]
  assert 'is finished (step 6 of 6): nothing to train' in out.stderr
  assert 'resuming' not in out.stderr
  with open(os.path.join(workdir, 'run.json')) as f:
    record = json.load(f)
  assert record['start_step'] == 6 and record['changed_on_resume'] == {}
  assert [r['start_step'] for r in record['earlier_starts']] == [0, 3]
  assert record['earlier_starts'][1]['changed_on_resume'] == changed
  assert all('earlier_starts' not in r for r in record['earlier_starts'])
  # --mode=eval without --config, with another k; it adds no TensorBoard events file
  # (whose pictures would stand beside the run's own at the same step).
  events = lambda: sorted(n for n in os.listdir(workdir) if n.startswith('events.'))
  before_eval = events()
  out = cli('--mode=eval', f'--workdir={workdir}', '--config.eval.iw_samples=20')
  assert out.returncode == 0, out.stderr[-2000:]
  assert _summary(workdir)['iw_samples'] == 20
  assert events() == before_eval
  # Anything else is refused, every differing key named with both values.
  before = sorted(os.listdir(os.path.join(workdir, 'checkpoints')))
  out = cli(f'--workdir={workdir}', '--config.model.latent_dim=5', '--config.seed=2')
  assert out.returncode == 2 and 'Traceback' not in out.stderr
  assert 'model.latent_dim: saved 3 vs now 5' in out.stderr
  assert 'seed: saved 0 vs now 2' in out.stderr
  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == before
  out = cli(f'--workdir={tmp_path}/empty')
  assert out.returncode == 2 and 'no config.json' in out.stderr


@pytest.mark.slow
def test_score_mode_writes_per_example_scores_and_auroc(vae_run, tmp_path):
  workdir = vae_run[0]
  other = write_fake_mnist(str(tmp_path / 'other'), num_train=8, num_test=12, seed=5)
  out = cli('--mode=score', f'--workdir={workdir}', f'--score_data={other}')
  assert out.returncode == 0, out.stderr[-2000:]
  assert out.stdout.splitlines()[-1] == (
      f'results: {workdir}/scores/other.json (per-example scores: {workdir}/scores/other.npz)')
  with open(os.path.join(workdir, 'scores', 'other.json')) as f:
    summary = json.load(f)
  scores = np.load(os.path.join(workdir, 'scores', 'other.npz'))
  assert scores['nll_iw'].shape == scores['nelbo'].shape == (12,)
  assert summary['examples'] == 12 and 0.0 <= summary['auroc'] <= 1.0
  assert summary['nll_iw'] == pytest.approx(float(np.mean(scores['nll_iw'])))
  assert summary['own_test_nll_iw'] == pytest.approx(_summary(workdir)['nll_iw'], rel=1e-5)
  # Images of another shape: one line, exit 2.
  small = str(tmp_path / 'small')
  os.makedirs(small)
  from vae_jax.data import idx  # pylint: disable=g-import-not-at-top
  idx.write_idx(os.path.join(small, 't10k-images-idx3-ubyte.gz'),
                np.zeros((3, 14, 14), np.uint8))
  idx.write_idx(os.path.join(small, 't10k-labels-idx1-ubyte.gz'), np.zeros(3, np.uint8))
  out = cli('--mode=score', f'--workdir={workdir}', f'--score_data={small}')
  assert out.returncode == 2 and 'Traceback' not in out.stderr
  assert 'does not fit the model' in out.stderr and '(3, 14, 14, 1)' in out.stderr


def _outputs_md_scoring_example() -> str:
  with open(os.path.join(REPO, 'docs', 'outputs.md')) as f:
    section = f.read().split('## Scoring new data', 1)[1]
  return re.search(r'```python\n(.*?)```', section, re.S).group(1)


def test_score_a_set_written_as_documented_and_a_missing_directory(vae_run, tmp_path,
                                                                    monkeypatch):
  workdir, images = vae_run[0], vae_run[1]
  monkeypatch.chdir(tmp_path)
  np.save('my_images.npy', images[:6, ..., 0])
  exec(_outputs_md_scoring_example(), {})  # pylint: disable=exec-used
  # The example's set has labels; one without them is scored too (they are optional).
  os.remove(os.path.join('my_set', 't10k-labels-idx1-ubyte.gz'))
  out = cli('--mode=score', f'--workdir={workdir}', f'--score_data={tmp_path / "my_set"}')
  assert out.returncode == 0, out.stderr[-2000:]
  scores = np.load(os.path.join(workdir, 'scores', 'my_set.npz'))
  assert scores['nll_iw'].shape == (6,) and 'labels' not in scores.files
  # A directory that does not exist is said to be one, not taken for a dataset name.
  out = cli('--mode=score', f'--workdir={workdir}', f'--score_data={tmp_path / "nowhere"}')
  assert out.returncode == 2 and 'Traceback' not in out.stderr
  assert f'no such directory (looked in {tmp_path / "nowhere"})' in out.stderr
