"""--mode=score: a trained run scores another dataset (likelihood-based OOD detection).

    python -m vae_jax.main --mode=score --workdir=runs/vae-... --score_data=mnist
    python -m vae_jax.main --mode=score --workdir=runs/vae-... --score_data=path/to/idx_dir

The test split of `--score_data` (a dataset name, or a directory of
MNIST-format IDX files) and the run's own test split are scored with the
importance-weighted bound (k = config.eval.iw_samples, changeable with
--config.eval.iw_samples=K) and the negative ELBO, per example in nats.
Written to <workdir>/scores/<data>.npz (nll_iw, nelbo, and labels when the
data has them) and <data>.json (means, and the AUROC of telling the new data
from the run's own test split by nll_iw: higher nll_iw = more anomalous; it
needs no labels). A likelihood model may give OOD data a HIGHER likelihood
(Nalisnick et al. 2019): the AUROC says which way it went.

A scoring set of your own is a directory with the test images as an IDX file,
t10k-images-idx3-ubyte[.gz] (uint8 [N, H, W] or [N, H, W, C], the model's
image shape), and optionally t10k-labels-idx1-ubyte[.gz] (one integer label
per image; a CVAE run needs them). `vae_jax.data.idx.write_idx(path, array)`
writes both (docs/outputs.md, "Scoring new data").
"""

import os

import ml_collections
import numpy as np
from absl import logging

from vae_jax import api
from vae_jax import train_state
from vae_jax.evaluation import diagnostics
from vae_jax.evaluation import loop as eval_loop
from vae_jax.run import files
from vae_jax import data as data_lib
from vae_jax.run import workdir as workdir_lib
from vae_jax.data import image_arrays
from vae_jax.errors import DataError


def score_name(data_arg: str) -> str:
  """The short name of the scored data: scores/<name>.npz and .json."""
  if os.path.isdir(data_arg):
    return os.path.basename(os.path.normpath(data_arg)) or 'data'
  return data_arg


def results_line(workdir: str, data_arg: str) -> str:
  """The closing line of --mode=score: where the scores are."""
  path = os.path.join(workdir, 'scores', score_name(data_arg))
  return f'results: {path}.json (per-example scores: {path}.npz)'


def _looks_like_a_path(data_arg: str) -> bool:
  """Whether --score_data names a directory (not a dataset name such as
  'emnist/letters'): it starts like a path or its parent directory exists."""
  parent = os.path.dirname(data_arg)
  return data_arg.startswith(('/', '.', '~')) or bool(parent) and os.path.isdir(parent)


def _test_images(data_arg: str, tfds_data_dir: str):
  """(images uint8 [N, H, W, C], labels [N] or None, short name) of the data to score."""
  if os.path.isdir(data_arg):
    images, labels = image_arrays.read_idx_split(data_arg, 'test', labels_required=False)
    return images, labels, score_name(data_arg)
  if _looks_like_a_path(data_arg):
    raise DataError(f'--score_data={data_arg}: no such directory (looked in '
                    f'{os.path.abspath(os.path.expanduser(data_arg))}); pass a directory of '
                    'IDX files or a dataset name such as mnist')
  host = image_arrays.load_image_arrays(data_arg, '', tfds_data_dir)
  return host.test_images, host.test_labels, score_name(data_arg)


def score_workdir(config: ml_collections.ConfigDict, workdir: str, data_arg: str) -> dict:
  """Scores `data_arg` with the run's newest checkpoint; returns the summary written."""
  model = api.load(workdir, config=config)
  if not model.stochastic:
    raise DataError(f'objective {config.objective.name!r} has no likelihood to score '
                    'data with; score with a VAE run')
  images, labels, name = _test_images(data_arg, config.data.tfds_data_dir)
  try:
    model.check_images(images)
  except ValueError as e:
    raise DataError(f'--score_data={data_arg} does not fit the model: {e}') from None
  k = config.eval.iw_samples
  logging.info('scoring %d images of %s with k = %d', len(images), name, k)
  y = labels if model.num_classes else None
  if model.num_classes and labels is None:
    raise DataError(f'--score_data={data_arg} has no labels (t10k-labels-idx1-ubyte), and '
                    'this run is a CVAE, which needs one per image; add them')
  if y is not None and (labels.max(initial=0) >= model.num_classes):
    raise DataError(f'--score_data={data_arg} has labels up to {labels.max()}, but the '
                    f'CVAE knows {model.num_classes} classes')
  nll, nelbo = model.nll_iw(images, k, y), model.elbo(images, y)['nelbo']
  own = data_lib.load(config.data)
  own_spec = train_state.make_spec(config, own.spec)  # as trained (e.g. procedural dSprites)
  own_nll = eval_loop.importance_weighted_nll(
      model.params, own_spec, own, k, seed=config.seed,
      batch_size=config.eval.iw_batch_size, chunk_size=config.eval.iw_chunk_size)
  is_new = np.concatenate([np.ones(len(nll), bool), np.zeros(len(own_nll), bool)])
  summary = {'data': data_arg, 'examples': int(len(nll)), 'iw_samples': k,
             'step': model.step, 'nll_iw': float(np.mean(nll, dtype=np.float64)),
             'nelbo': float(np.mean(nelbo, dtype=np.float64)),
             'own_test_nll_iw': float(np.mean(own_nll, dtype=np.float64)),
             'auroc': diagnostics.auroc(np.concatenate([nll, own_nll]), is_new)}
  out_dir = os.path.join(workdir, 'scores')
  os.makedirs(out_dir, exist_ok=True)
  with files.atomic(os.path.join(out_dir, f'{name}.npz')) as tmp, open(tmp, 'wb') as f:
    np.savez(f, nll_iw=nll, nelbo=nelbo,
             **({} if labels is None else {'labels': labels}))
  workdir_lib.write_json(os.path.join(out_dir, f'{name}.json'), summary)
  logging.info('scores of %s: nll_iw %.2f (own test split %.2f), AUROC %.3f; written to %s',
               name, summary['nll_iw'], summary['own_test_nll_iw'], summary['auroc'],
               out_dir)
  return summary
