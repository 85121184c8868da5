"""Files written whole or not at all: a temporary file beside the target, renamed over it.

A run stopped at any moment (a signal, a kill, a full disk) leaves the old
file or the new one, never half of one: `os.replace` is atomic on POSIX file
systems. A stray `<name>.tmp` is left only by a kill (SIGKILL, power loss).
"""

import contextlib
import os


@contextlib.contextmanager
def atomic(path: str):
  """Yields a temporary path beside `path` to write; renames it to `path` when
  the block ends normally and removes it when the block raises (any exception,
  KeyboardInterrupt included)."""
  tmp = f'{path}.tmp'
  try:
    yield tmp
    os.replace(tmp, path)
  except BaseException:
    with contextlib.suppress(OSError):
      os.remove(tmp)
    raise
