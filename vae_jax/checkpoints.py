"""Orbax checkpoints of the train state in `<workdir>/checkpoints/<step>/`.

Saves are asynchronous (training continues while the state is written) and
atomic (Orbax writes to a temporary directory and renames it when complete),
so a run killed at any moment leaves only whole checkpoints; `close` waits
for the save in flight.

With several processes (`jax.distributed`) every process makes the same calls
in the same order: Orbax writes each replicated array once (from process 0)
and finalizes a step after every process's part is written; an unreadable
checkpoint is moved by process 0 while the others wait (`_set_aside`). The
workdir must be on a file system every process sees.
"""

import os
import shutil
import time
from typing import Optional

import jax
import orbax.checkpoint as ocp
from absl import logging

from vae_jax import parallel
from vae_jax.errors import WorkdirError


# Words of Orbax's errors for a readable checkpoint that does not fit the template.
MISMATCH_SIGNS = ('tree structures do not match', 'not compatible with the stored shape')


class Checkpointer:
  """Saves and restores one run's TrainState."""

  def __init__(self, workdir: str, max_to_keep: int = 3, read_only: bool = False):
    options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=not read_only,
                                           enable_async_checkpointing=not read_only,
                                           read_only=read_only)
    self._manager = ocp.CheckpointManager(
        os.path.abspath(os.path.join(workdir, 'checkpoints')), options=options)

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
    try:
      return self._manager.restore(step, args=ocp.args.StandardRestore(abstract))
    except Exception as e:  # pylint: disable=broad-except
      raise WorkdirError(f'the checkpoint at step {step} in {self._manager.directory} '
                         f'cannot be read ({type(e).__name__}); pass another step') from None

  def save(self, step: int, state) -> None:
    """Starts an asynchronous save of `state` at `step` (no-op if present)."""
    if step in self._manager.all_steps():
      return
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
      try:
        return self._manager.restore(step, args=ocp.args.StandardRestore(abstract))
      except Exception as e:  # pylint: disable=broad-except
        first_line = str(e).splitlines()[0][:200] if str(e) else ''
        if any(sign in str(e) for sign in MISMATCH_SIGNS):
          raise WorkdirError(
              f'the checkpoint at step {step} in {self._manager.directory} holds another '
              f'model than the config describes ({first_line.rstrip(":")}); resume with the '
              'config it was trained with or pass a new --workdir') from None
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
    self._manager.wait_until_finished()
    self._manager.close()
