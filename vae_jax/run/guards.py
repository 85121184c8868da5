"""Guards of the training loop: divergence, interrupting signals, out of memory.

- `check_finite`: the loop stops at the first step whose loss, gradient norm
  or updated parameters are not finite, before that state is logged, saved
  or evaluated (the step computes a `finite` flag every step).
- `Interrupts`: SIGINT / SIGTERM while training make the loop save a
  checkpoint at the current step and stop (exit 130 / 143); the same command
  resumes exactly. During an evaluation inside the loop
  (`Interrupts.stopping_at_once`) a signal stops it at once, as below; the
  loop then saves the checkpoint of the step and stops the same way.
- `StopAtOnce`: everywhere else (start-up, --mode=eval, --mode=score) the
  command stops at once (`SignalInterrupt`, exit 130 / 143), except inside
  `signals_held()` blocks (Orbax restores and saves, which run in threads an
  exception would leave behind): those end first. Files are written whole or
  not at all (`files.atomic`), so a stop leaves no half-written file. A stop
  that Python swallowed where it landed (a garbage-collection callback) is
  raised again by `stop_if_signalled`, which the evaluation loops call
  between batches and before they write.
- `out_of_memory_is_a_user_error`: XLA's RESOURCE_EXHAUSTED becomes one line
  naming the settings to lower.
"""

import contextlib
import signal
import sys
from typing import Callable

import jax
import ml_collections
import numpy as np
from absl import logging

from vae_jax.errors import NonFiniteError, ResourceError, SignalInterrupt

# Named (in this order) when a step's `finite` metric is False: the first non-finite one.
LOSS_TERMS = ('loss', 'recon', 'kl', 'grad_norm')


def check_finite(runs: list, unchecked: list, ckpts: list) -> None:
  """NonFiniteError at the first step (and sweep member) whose loss, gradient norm
  or updated parameters are not finite: `unchecked` holds (first step, metrics
  of a dispatch) on the host. Raised before that state is logged, saved or evaluated."""
  for first, record in unchecked:
    finite = np.asarray(record['finite']).reshape(len(record['finite']), -1)  # [K, M]
    if finite.all():
      continue
    k, i = (int(v) for v in np.argwhere(~finite)[0])
    values = {t: float(np.reshape(record[t][k], -1)[i]) for t in LOSS_TERMS}
    term = next((t for t in LOSS_TERMS if not np.isfinite(values[t])), None)
    what = f'{term} ({values[term]})' if term else 'parameters'
    others = ', '.join(f'{t}={v:.4g}' for t, v in values.items() if t != term)
    where = f' in {runs[i].name}' if runs[i].name else ''  # a sweep member
    saved = ckpts[i].latest_step()
    kept = (f'the checkpoints here are finite (the last at step {saved}: --mode=eval '
            'evaluates it)' if saved else 'no checkpoint was saved')
    raise NonFiniteError(
        f'non-finite {what} at step {first + k + 1}{where} ({others}); lower '
        'train.learning_rate or set train.grad_clip_norm and rerun with a new --workdir '
        f'(those settings may not change on resume); {kept}')


class Interrupts:
  """While entered, SIGINT and SIGTERM set `signum`; the loop then checkpoints and stops.

  A second SIGINT raises KeyboardInterrupt at once.
  """

  def __init__(self):
    self.signum = None
    self._previous = {}

  def __enter__(self):
    for signum in (signal.SIGINT, signal.SIGTERM):
      try:
        self._previous[signum] = signal.signal(signum, self._handle)
      except ValueError:  # not the main thread: signals keep their handlers
        pass
    return self

  def _handle(self, signum: int, frame) -> None:  # pylint: disable=unused-argument
    if self.signum == signal.SIGINT and signum == signal.SIGINT:
      raise KeyboardInterrupt
    self.signum = signum
    logging.warning('%s received: stopping after the current steps with a checkpoint '
                    '(a second Ctrl-C stops at once)', signal.Signals(signum).name)

  @contextlib.contextmanager
  def stopping_at_once(self):
    """Within the block (an evaluation inside the training loop), SIGINT and SIGTERM
    raise SignalInterrupt at once, as under `StopAtOnce`; so does a signal received
    before the block."""
    if self.signum is not None:
      raise SignalInterrupt(self.signum)
    installed = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
      try:
        installed[signum] = signal.signal(signum, _stop_at_once)
      except ValueError:  # not the main thread: signals keep their handlers
        pass
    try:
      yield
    finally:
      for signum, handler in installed.items():
        signal.signal(signum, handler)

  def __exit__(self, *exc) -> None:
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)


# How deep in `signals_held` blocks the main thread is, the signal that waits for their
# end, and the signal already raised as a SignalInterrupt (see `stop_if_signalled`).
_HOLD = {'depth': 0, 'pending': None, 'raised': None}


@contextlib.contextmanager
def signals_held():
  """Within the block, a signal that `StopAtOnce` turns into a SignalInterrupt
  waits for the block's end (then it is raised, also over an exception of the
  block); a second SIGINT does not wait."""
  _HOLD['depth'] += 1
  try:
    yield
  finally:
    _HOLD['depth'] -= 1
    if _HOLD['depth'] == 0 and _HOLD['pending'] is not None:
      signum, _HOLD['pending'] = _HOLD['pending'], None
      raise SignalInterrupt(signum)  # pylint: disable=lost-exception


def _stop_at_once(signum: int, frame) -> None:  # pylint: disable=unused-argument
  insisting = signum == signal.SIGINT and _HOLD['pending'] == signal.SIGINT
  if _HOLD['depth'] and not insisting:
    _HOLD['pending'] = signum
    logging.warning('%s received: stopping when the checkpoint in hand is read or written',
                    signal.Signals(signum).name)
    return
  _HOLD['pending'] = None
  _HOLD['raised'] = signum
  raise SignalInterrupt(signum)


def stop_if_signalled() -> None:
  """Raises the SignalInterrupt again if `StopAtOnce` already raised one.

  A signal handler's exception surfaces in whatever Python code runs at that
  moment; when that is a garbage-collection callback or a `__del__` (JAX runs
  some), Python prints it and carries on. Loops call this between their
  steps, so such a stop is lost for one step at most."""
  if _HOLD['raised'] is not None:
    raise SignalInterrupt(_HOLD['raised'])


def _quiet_signal_interrupts(previous: Callable):
  """A sys.unraisablehook that does not print a SignalInterrupt raised where
  Python cannot propagate it (a GC callback, a `__del__`): `stop_if_signalled`
  raises it again where the program can stop, and the user sees only the one
  line saying so. Every other unraisable exception goes to `previous`."""
  def hook(unraisable) -> None:
    if not isinstance(unraisable.exc_value, SignalInterrupt):
      previous(unraisable)
  return hook


class StopAtOnce:
  """While entered, SIGINT and SIGTERM raise SignalInterrupt (a KeyboardInterrupt)
  at once, or at the end of a `signals_held()` block. The training loop's
  `Interrupts` takes the signals over while it runs."""

  def __init__(self):
    self._previous = {}
    self._previous_hook = None

  def __enter__(self):
    _HOLD['raised'] = None
    self._previous_hook = sys.unraisablehook
    sys.unraisablehook = _quiet_signal_interrupts(self._previous_hook)
    for signum in (signal.SIGINT, signal.SIGTERM):
      try:
        self._previous[signum] = signal.signal(signum, _stop_at_once)
      except ValueError:  # not the main thread: signals keep their handlers
        pass
    return self

  def __exit__(self, *exc) -> None:
    _HOLD['raised'] = None
    sys.unraisablehook = self._previous_hook
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)


@contextlib.contextmanager
def out_of_memory_is_a_user_error(lead_config: ml_collections.ConfigDict):
  """Turns XLA's RESOURCE_EXHAUSTED into a ResourceError naming the settings to lower."""
  try:
    yield
  except jax.errors.JaxRuntimeError as e:
    if 'RESOURCE_EXHAUSTED' not in str(e):
      raise
    first_line = str(e).splitlines()[0][:200] if str(e) else ''
    raise ResourceError(
        f'out of device memory ({first_line}); lower data.batch_size (now '
        f'{lead_config.data.batch_size}; with a new --workdir, it may not change on resume) '
        f'or, if it ran out in an evaluation, eval.iw_chunk_size (now '
        f'{lead_config.eval.iw_chunk_size}) or eval.iw_batch_size (now '
        f'{lead_config.eval.iw_batch_size}; these may change on resume)') from None
