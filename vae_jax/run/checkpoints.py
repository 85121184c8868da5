"""Orbax checkpoints of the train state in `<workdir>/checkpoints/<step>/`.

Saves are asynchronous (training continues while the state is written) and
atomic (Orbax writes to a temporary directory and renames it when complete),
so a run killed at any moment leaves only whole checkpoints; `close` waits
for the save in flight.

Before a restore, the checkpoint's stored tree (its metadata: every array's
path, shape and dtype) is compared with the template's: a checkpoint of
another model is refused by that comparison, so Orbax never starts a restore
that must fail (its worker threads would print tracebacks of their own).
For the same reason restores, saves and `close` run in `guards.signals_held`
blocks: a signal that stops the command at once waits for their end.

With several processes (`jax.distributed`) every process makes the same calls
in the same order: Orbax writes each replicated array once (from process 0)
and finalizes a step after every process's part is written; an unreadable
checkpoint is moved by process 0 while the others wait (`_set_aside`). The
workdir must be on a file system every process sees.
"""

import contextlib
import logging as std_logging
import os
import shutil
import time
from typing import Callable, Optional

import jax
import orbax.checkpoint as ocp
from absl import logging

from vae_jax.run import guards
from vae_jax.run import parallel
from vae_jax.errors import WorkdirError


# Words of Orbax's errors for a readable checkpoint that does not fit the template
# (a second guard: `misfit` compares the stored tree with the template first).
MISMATCH_SIGNS = ('tree structures do not match', 'not compatible with the stored shape')
# What Orbax warns of when a manager opens a directory read-only, as asked.
READ_ONLY_NOTICES = ('read_only=True, setting', 'Given directory is read only')


class _DropNotices(std_logging.Filter):
  def filter(self, record) -> bool:
    return not any(notice in record.getMessage() for notice in READ_ONLY_NOTICES)


@contextlib.contextmanager
def _read_only_notices_dropped():
  """Orbax's notices that a read-only manager is read-only, not shown."""
  notices = _DropNotices()
  logger = std_logging.getLogger('absl')
  logger.addFilter(notices)
  try:
    yield
  finally:
    logger.removeFilter(notices)


def _path(keys: tuple) -> str:
  return '.'.join(str(k) for k in keys)


def misfit(stored: dict, wanted: dict) -> Optional[str]:
  """The first difference between two flat {path: array-like} trees (paths,
  then shapes and dtypes; the parameters before the optimizer's copies of
  them), in words; None if they fit."""
  order = lambda keys: sorted(keys, key=lambda k: (k[0] != 'params', k))
  missing, extra = order(set(wanted) - set(stored)), order(set(stored) - set(wanted))
  if missing or extra:
    more = lambda keys: f' and {len(keys) - 1} more' if len(keys) > 1 else ''
    parts = [f'{what} {_path(keys[0])}{more(keys)}'
             for what, keys in (('lacks', missing), ('has an unexpected', extra)) if keys]
    return f'the stored tree {" and ".join(parts)}'
  for keys in order(wanted):
    have, want = stored[keys], wanted[keys]
    if tuple(have.shape) != tuple(want.shape) or have.dtype != want.dtype:
      return (f'{_path(keys)} is stored as {have.dtype}{list(have.shape)}, the config '
              f'needs {want.dtype}{list(want.shape)}')
  return None


class _Preserved:
  """An Orbax preservation policy: keeps the checkpoints whose step `keep(step)` is True."""

  def __init__(self, keep: Callable[[int], bool]):
    self.keep = keep

  def should_preserve(self, checkpoints, *, context) -> list:
    del context
    return [bool(self.keep(int(c.step))) for c in checkpoints]


class Checkpointer:
  """Saves and restores one run's TrainState."""

  def __init__(self, workdir: str, max_to_keep: int = 3, read_only: bool = False,
               preserve: Optional[Callable[[int], bool]] = None):
    """Keeps the newest `max_to_keep` checkpoints, and any older one whose step
    `preserve(step)` is True (asked again at every save)."""
    policy = None
    if preserve is not None:
      policy = ocp.checkpoint_managers.AnyPreservationPolicy(
          [ocp.checkpoint_managers.LatestN(max_to_keep), _Preserved(preserve)])
    with _read_only_notices_dropped() if read_only else contextlib.nullcontext():
      options = ocp.CheckpointManagerOptions(
          max_to_keep=None if policy else max_to_keep, preservation_policy=policy,
          create=not read_only, enable_async_checkpointing=not read_only,
          read_only=read_only)
      self._manager = ocp.CheckpointManager(
          os.path.abspath(os.path.join(workdir, 'checkpoints')), options=options,
          item_handlers=ocp.StandardCheckpointHandler())

  def reload(self) -> None:
    """Reads the steps on disk again (another process's saves)."""
    self._manager.reload()

  def latest_step(self) -> Optional[int]:
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    return sorted(self._manager.all_steps())

  def restore(self, step: int, template):
    """The checkpoint at `step` shaped like `template`; WorkdirError if it is
    missing or unreadable (nothing is moved)."""
    if step not in self._manager.all_steps():
      raise WorkdirError(f'no checkpoint at step {step} in {self._manager.directory}; '
                         f'the steps saved are {self.all_steps()}')
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
    self._refuse_another_model(step, abstract)
    try:
      with guards.signals_held():
        return self._manager.restore(step, args=ocp.args.StandardRestore(abstract))
    except Exception as e:  # pylint: disable=broad-except
      others = [s for s in self.all_steps() if s != step]
      raise WorkdirError(f'the checkpoint at step {step} in {self._manager.directory} '
                         f'cannot be read ({type(e).__name__}); pass another step (saved: '
                         f'{others})') from None

  def _stored_tree(self, step: int) -> Optional[dict]:
    """{path: metadata with shape and dtype} of the checkpoint at `step`; None if
    its metadata cannot be read (the restore then finds it unreadable)."""
    try:
      with guards.signals_held():
        metadata = self._manager.item_metadata(step)
      tree = metadata.tree if hasattr(metadata, 'tree') else metadata
      stored = ocp.tree.to_flat_dict(tree)
    except Exception:  # pylint: disable=broad-except
      return None
    described = all(hasattr(v, 'shape') and hasattr(v, 'dtype') for v in stored.values())
    return stored if described else None

  def _refuse_another_model(self, step: int, abstract) -> None:
    """WorkdirError if the checkpoint at `step` readably holds a tree that does
    not fit `abstract` (another model); nothing is moved."""
    stored = self._stored_tree(step)
    if stored is None:
      return
    wanted = ocp.tree.to_flat_dict(ocp.tree.serialize_tree(abstract, keep_empty_nodes=True))
    difference = misfit(stored, wanted)
    if difference:
      raise self._another_model(step, difference)

  def _another_model(self, step: int, difference: str) -> WorkdirError:
    return WorkdirError(
        f'the checkpoint at step {step} in {self._manager.directory} holds another model '
        f'than the config describes ({difference}); resume with the config it was trained '
        'with or pass a new --workdir')

  def save(self, step: int, state) -> None:
    """Starts an asynchronous save of `state` at `step` (no-op if present)."""
    if step in self._manager.all_steps():
      return
    with guards.signals_held():
      self._manager.save(step, args=ocp.args.StandardSave(state))

  def restore_latest(self, template, max_step: Optional[int] = None,
                     move_unreadable: bool = True):
    """The newest readable checkpoint (at most `max_step`) shaped like `template`, or None.

    A checkpoint that fails to restore (partial or corrupt files) is moved to
    `<workdir>/checkpoints_unreadable/` with a warning (kept, never deleted;
    left in place if not `move_unreadable`) and the previous one is tried. A
    readable checkpoint of another model (shapes or structure differ from
    `template`) is a WorkdirError: nothing is moved.
    """
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
    for step in sorted(self._manager.all_steps(), reverse=True):
      if max_step is not None and step > max_step:
        continue
      self._refuse_another_model(step, abstract)
      try:
        with guards.signals_held():
          return self._manager.restore(step, args=ocp.args.StandardRestore(abstract))
      except Exception as e:  # pylint: disable=broad-except
        first_line = str(e).splitlines()[0][:200] if str(e) else ''
        if any(sign in str(e) for sign in MISMATCH_SIGNS):
          raise self._another_model(step, first_line.rstrip(':')) from None
        if not move_unreadable:
          logging.warning('checkpoint at step %d in %s is unreadable (%s: %s); trying an '
                          'older one', step, self._manager.directory, type(e).__name__,
                          first_line)
          continue
        moved = self._set_aside(step)
        logging.warning('checkpoint at step %d in %s is unreadable (%s: %s); moved to %s, '
                        'trying an older one', step, self._manager.directory,
                        type(e).__name__, first_line, moved)
    return None

  def _set_aside(self, step: int) -> str:
    """Moves an unreadable checkpoint out of the manager's directory (process 0
    moves it; every process waits for the move, then rereads the steps)."""
    source = os.path.join(str(self._manager.directory), str(step))
    target_dir = os.path.join(os.path.dirname(str(self._manager.directory)),
                              'checkpoints_unreadable')
    target = os.path.join(target_dir, f'{step}-{int(time.time())}')
    if parallel.is_primary():
      os.makedirs(target_dir, exist_ok=True)
      shutil.move(source, target)
    parallel.sync_processes(f'vae_jax_set_aside_{step}')
    self._manager.reload()
    return target

  def close(self) -> None:
    """Waits for any save in flight, then releases the manager."""
    with guards.signals_held():
      self._manager.wait_until_finished()
      self._manager.close()
