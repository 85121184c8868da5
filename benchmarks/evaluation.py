"""Evaluation: the time of each part of a final evaluation, next to its floor.

Two set-ups at their full evaluation protocol: experiments/beta_vae.py:fc
(procedural dSprites, 10,000 held-out images, nll_iw at k = 100, the five
disentanglement estimators behind the seven scores at the reference sample
counts) and experiments/vae.py (28×28 images shaped like Fashion-MNIST,
10,000 held-out, nll_iw at k = 5000). The model is freshly initialised: the
cost of each part does not depend on the weights.

Parts, each timed once after a warm-up call that compiles it:
- ELBO pass: the per-example terms over the evaluation set;
- nll_iw: the importance-weighted bound;
- each disentanglement score, two ways side by side (WAYS: 'before' encodes
  each draw where it is drawn and fits one model after another, as the
  scores did before the shared table of codes; 'after' is the default: each
  factor combination encoded once, per-factor fits in parallel threads),
  with the time inside the encoder (the representation function) and
  whether the two ways' scores are identical;
- pictures: every image grid of one evaluation;
- the final evaluation's total, both ways (ELBO pass, nll_iw and pictures
  are the same code both ways: timed once).
Floor: the part's model FLOPs (dense layers, 2 per multiply-add) at the
measured fp32 matmul rate; for a score, that of its encoder passes (the
estimators have no FLOP floor: their part is reported as the 'rest').
--quick: one batch of held-out images, a sample divisor of 200 and k ≤ 20
(checks that it runs; its figures mean nothing).
"""

import copy
import sys
import time

import jax
import numpy as np

from benchmarks import cases, timing
from vae_jax import train_state
from vae_jax.data import factors
from vae_jax.evaluation import disentanglement, factor_codes, loop
from vae_jax.pictures import eval_pictures

SETUPS = {'beta_vae:fc': ('beta_vae', 'fc'), 'vae': ('vae', None)}
HEADER = ['set-up', 'part', 'seconds', 'of which encoder s', 'floor s', 'floor / time']


class _CountedEncoder:
  """The scores' representation function, counting its images and seconds."""

  def __init__(self, fn):
    self.fn, self.images, self.seconds = fn, 0, 0.0

  def __call__(self, images: np.ndarray) -> np.ndarray:
    start = time.perf_counter()
    out = self.fn(images)
    self.seconds += time.perf_counter() - start
    self.images += len(images)
    return out


def _datasets(config, quick: bool) -> tuple:
  """(the held-out set, a one-batch copy whose pass compiles the same programs)."""
  batch = max(config.eval.batch_size, config.eval.iw_batch_size)

  def held_out(num: int):
    if config.data.name != 'dsprites':
      return cases.synthetic_dataset(config, num_train=128, num_eval=num)
    sized = copy.deepcopy(config)
    sized.data.eval_size = num
    return cases.dataset(sized)
  small = held_out(batch)
  return (small, small) if quick else (held_out(10_000), small)


def _config(name: str, quick: bool):
  experiment, variant = SETUPS[name]
  config = cases.experiment(experiment, variant)
  if quick:
    config.eval.iw_samples = min(config.eval.iw_samples, 20)
    config.eval.disentanglement_divisor = 200
    config.eval.num_images = 4
  return config


def measure(name: str, quick: bool, gflops: float) -> list:
  """Table rows of one set-up: [set-up, part, seconds, encoder s, floor s, floor / time]."""
  config = _config(name, quick)
  dataset, warmup = _datasets(config, quick)
  spec = train_state.make_spec(config, dataset.spec)
  params = jax.device_put(train_state.init_state(spec, config.seed).params,
                          jax.local_devices()[0])
  encoder, decoder = cases.mlp_macs(config, dataset.spec.image_shape)
  seconds_of = lambda macs: 2.0 * macs / (gflops * 1e9)
  num, k, ev = dataset.num_eval, config.eval.iw_samples, config.eval
  rows = []

  def row(part, seconds, floor, encoder_seconds=None):
    rows.append([name, part, seconds, '' if encoder_seconds is None else encoder_seconds,
                 '' if floor is None else floor, '' if floor is None else floor / seconds])

  elbo = lambda data: loop.elbo_terms(params, spec, data, seed=config.seed,
                                      batch_size=ev.batch_size)
  iw = lambda data: loop.importance_weighted_nll(params, spec, data, k, seed=config.seed,
                                                 batch_size=ev.iw_batch_size,
                                                 chunk_size=ev.iw_chunk_size)
  elbo(warmup), iw(warmup)  # compiles
  terms, seconds = timing.timed(lambda: elbo(dataset))
  row(f'ELBO pass, {num} images', seconds, seconds_of(num * (encoder + decoder)))
  _, seconds = timing.timed(lambda: iw(dataset))
  row(f'nll_iw, k={k}, {num} images', seconds, seconds_of(num * (encoder + k * decoder)))

  score_rows, score_totals = (_score_rows(name, config, params, spec, encoder, seconds_of)
                              if config.eval.disentanglement else ([], {}))

  moments = (terms['mu'], terms['logvar'], terms['labels'])
  metrics = {'kl': float(np.mean(terms['kl'])), 'recon': float(np.mean(terms['recon'])),
             'kl_per_dim': np.mean(terms['kl_per_dim'], axis=0)}
  pictures = lambda: eval_pictures.make_pictures(
      spec.model, params, dataset, seed=config.seed, num_images=ev.num_images,
      stochastic=True, step=0, metrics=metrics, moments=moments, history=[])
  pictures()  # compiles
  _, seconds = timing.timed(pictures)
  row(f'pictures, {ev.num_images} per grid', seconds, None)
  shared = sum(r[2] for r in rows)  # ELBO pass, nll_iw, pictures: the same code both ways
  totals = [[name, f'final evaluation, {way}', shared + five, '', '', '']
            for way, five in score_totals.items()]
  return rows[:2] + score_rows + rows[2:] + totals  # the scores after nll_iw


# The two ways of scoring, timed side by side: today's reference (each draw encoded
# where it is drawn, the fits one after another) and the default.
WAYS = {'before': dict(encode_once=False, workers=1), 'after': dict(encode_once=True, workers=0)}


def _score_rows(name, config, params, spec, encoder_macs: int, seconds_of) -> tuple:
  """(rows, {way: seconds}): the rows of the five estimators, each timed both WAYS
  in turn (each way with its own table of codes, shared by its five estimators as
  in all_scores), their totals and whether the two ways' scores are identical;
  the totals by way."""
  source = factors.factor_source(config.eval.factor_source, config.data.tfds_data_dir)
  representation = loop.representation_fn(params, spec.model)
  representation(np.asarray(source.images(source.sample_factors(np.random.default_rng(0), 8))))
  n = max(1, config.eval.disentanglement_divisor)
  counted = {way: _CountedEncoder(representation) for way in WAYS}
  codes = {way: factor_codes.FactorCodes(counted[way], source, o['encode_once'])
           for way, o in WAYS.items()}
  calls = {way: disentanglement.protocol(n, o['workers']) for way, o in WAYS.items()}
  rows, scores, totals = [], {}, dict.fromkeys(WAYS, 0.0)
  for score in calls['before']:
    for way in WAYS:
      counted[way].images, counted[way].seconds = 0, 0.0
      scores[way, score], seconds = timing.timed(
          lambda: calls[way][score](codes[way], source, np.random.default_rng(0)))
      floor = seconds_of(counted[way].images * encoder_macs)
      rows.append([name, f'{score} (divisor {n}), {way}', seconds, counted[way].seconds,
                   floor, floor / seconds])
      totals[way] += seconds
  same = all(scores['before', s] == scores['after', s] for s in calls['before'])
  rows += [[name, f'the five scores, {way}', totals[way], '', '', ''] for way in WAYS]
  rows.append([name, 'scores identical before and after', 'yes' if same else 'NO', '', '', ''])
  return rows, totals


def run(quick: bool) -> tuple:
  """(table text, results dict)."""
  gflops = timing.matmul_gflops(size=256 if quick else 2048)
  rows = []
  for name in SETUPS:
    rows += measure(name, quick, gflops)
  results = {f'evaluation_seconds: {r[0]}: {r[1]}': r[2] for r in rows}
  text = (f'fp32 matmul rate {gflops:.0f} GFLOP/s (the floors); one timed call per part '
          'after a warm-up call\n\n' + timing.table(HEADER, rows))
  return text, results


if __name__ == '__main__':
  print(run(quick='--quick' in sys.argv)[0])
