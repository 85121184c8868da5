"""The codes of factor combinations under a representation, each combination encoded once.

The disentanglement scores draw ~2.9 M factor combinations at the reference
protocol, but a factor dataset has fewer distinct ones (dSprites: 737,280), so
`FactorCodes` keeps a table indexed by a combination's flat index and encodes
(renders, then calls `representation_fn` on) only the combinations it has not
seen, in batches of exactly ENCODE_BATCH (the last one filled up with repeats:
one compiled shape). Every score of one `all_scores` call
shares one table: a model's whole evaluation encodes each image at most once.

Codes are the same numbers as encoding each draw where it is drawn (the
representation is a deterministic function of the image, and a batch's rows do
not depend on the batch they are in); `encode_once=False` does exactly that,
calling `representation_fn` on the draws as the scores ask for them — the way to
score a stochastic representation (e.g. sampled codes), and the reference the
tests and the evaluation benchmark compare with.
"""

import math
from typing import Callable

import numpy as np

from vae_jax.data.factors import FactorSource

RepresentationFn = Callable[[np.ndarray], np.ndarray]

# Images per source.images / representation_fn call (bounds host memory).
ENCODE_BATCH = 1000

# Largest factor space given a table (codes float32 [combinations, D] and a mask).
_MAX_TABLE_COMBINATIONS = 1 << 25


def _checked(code, num: int) -> np.ndarray:
  code = np.asarray(code)
  if code.ndim != 2 or len(code) != num:
    raise ValueError(f'representation_fn must map {num} images to codes [{num}, D], '
                     f'got shape {code.shape}')
  return code


def encode_each(representation_fn: RepresentationFn, source: FactorSource,
                factors: np.ndarray) -> np.ndarray:
  """Codes float64 [N, D] of the images of factor classes [N, F], every row encoded."""
  codes = []
  for start in range(0, len(factors), ENCODE_BATCH):
    chunk = factors[start:start + ENCODE_BATCH]
    codes.append(_checked(representation_fn(source.images(chunk)), len(chunk)))
  return np.concatenate(codes).astype(np.float64)


class FactorCodes:
  """factors int [N, F] → codes float64 [N, D] of `source`'s images under
  `representation_fn`; with `encode_once`, each combination encoded once."""

  def __init__(self, representation_fn: RepresentationFn, source: FactorSource,
               encode_once: bool = True):
    self.representation_fn, self.source = representation_fn, source
    self.sizes = tuple(int(s) for s in source.factor_sizes)
    self.encode_once = encode_once and math.prod(self.sizes) <= _MAX_TABLE_COMBINATIONS
    self._table = None  # float32 [combinations, D], allocated at the first codes
    self._known = np.zeros(math.prod(self.sizes) if self.encode_once else 0, bool)

  def _flat(self, factors: np.ndarray) -> np.ndarray:
    return np.ravel_multi_index(tuple(np.asarray(factors).T), self.sizes)

  def prepare(self, factors: np.ndarray) -> None:
    """Encodes the combinations among factors [N, F] not yet in the table (in full
    batches); without encode_once, nothing (each call encodes its own draws)."""
    if not self.encode_once or not len(factors):
      return
    flat = np.unique(self._flat(factors))
    missing = flat[~self._known[flat]]
    for start in range(0, len(missing), ENCODE_BATCH):
      ids = missing[start:start + ENCODE_BATCH]
      batch = np.resize(ids, ENCODE_BATCH)  # the last batch filled up with repeats
      images = self.source.images(np.stack(np.unravel_index(batch, self.sizes), axis=1))
      code = _checked(self.representation_fn(images), ENCODE_BATCH)[:len(ids)]
      if self._table is None:
        self._table = np.zeros((len(self._known), code.shape[1]), code.dtype)
      self._table[ids] = code
      self._known[ids] = True

  def __call__(self, factors: np.ndarray) -> np.ndarray:
    """Codes float64 [N, D] of factor classes [N, F]."""
    if not self.encode_once:
      return encode_each(self.representation_fn, self.source, factors)
    self.prepare(factors)
    if not len(factors):
      return np.zeros((0, 0 if self._table is None else self._table.shape[1]))
    return self._table[self._flat(factors)].astype(np.float64)


def factor_codes(representation_fn, source: FactorSource,
                 encode_once: bool = True) -> FactorCodes:
  """`representation_fn` if it already is a FactorCodes of `source`, else a new one."""
  if isinstance(representation_fn, FactorCodes) and representation_fn.source is source:
    return representation_fn
  return FactorCodes(representation_fn, source, encode_once)


def sample_codes(codes_of: FactorCodes, rng: np.random.Generator,
                 num: int) -> tuple[np.ndarray, np.ndarray]:
  """(codes float64 [num, D], factor classes int32 [num, F]) of uniform samples."""
  factors = codes_of.source.sample_factors(rng, num)
  return codes_of(factors), factors


def seed_from(rng: np.random.Generator) -> int:
  """A random_state for sklearn estimators drawn from `rng`."""
  return int(rng.integers(2**31 - 1))
