"""Files written whole or not at all: a temporary file beside the target, renamed over it.

A run stopped at any moment (a signal, a kill, a full disk) leaves the old
file or the new one, never half of one: `os.replace` is atomic on POSIX file
systems. The temporary file is this process's own (`.<name>.<random>.tmp`),
so processes writing the same file never mix their bytes; a stray one is
left only by a kill (SIGKILL, power loss).
"""

import contextlib
import os
import tempfile


@contextlib.contextmanager
def atomic(path: str):
  """Yields a temporary path beside `path` to write; renames it to `path` (mode
  0644) when the block ends normally and removes it when the block raises (any
  exception, KeyboardInterrupt included)."""
  handle, tmp = tempfile.mkstemp(dir=os.path.dirname(path) or '.',
                                 prefix=f'.{os.path.basename(path)}.', suffix='.tmp')
  os.close(handle)
  try:
    yield tmp
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
  except BaseException:
    with contextlib.suppress(OSError):
      os.remove(tmp)
    raise
