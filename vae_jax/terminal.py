"""Terminal output: a tqdm bar with log lines above it."""

import contextlib
import logging as python_logging
import sys

import tqdm


class _AboveTheBar:
  """A text stream that writes each whole line above the live tqdm bars of `terminal`
  (`tqdm.write`: clear the bars, write the line, redraw them); a partial line
  waits for its end."""

  def __init__(self, terminal):
    self.terminal = terminal
    self._partial = ''

  def write(self, text: str) -> int:
    lines, newline, self._partial = (self._partial + text).rpartition('\n')
    if newline:
      tqdm.tqdm.write(lines, file=self.terminal)
    return len(text)

  def flush(self) -> None:
    self.terminal.flush()

  def finish(self) -> None:
    """Writes a pending partial line as it is."""
    if self._partial:
      self.terminal.write(self._partial)
      self._partial = ''

  def __getattr__(self, name: str):  # isatty, fileno, encoding, ... of the terminal
    return getattr(self.terminal, name)


def _stream_handlers() -> list:
  """The logging.StreamHandlers of the root logger (absl's Python handler included)."""
  handlers = [getattr(h, 'python_handler', h) for h in python_logging.getLogger().handlers]
  return [h for h in handlers if isinstance(h, python_logging.StreamHandler)]


@contextlib.contextmanager
def progress_bar(**tqdm_args):
  """A tqdm bar on sys.stderr if that is a terminal (else a disabled one).

  While the bar is live, sys.stderr and every logging handler that writes to
  it (absl's included) write through `_AboveTheBar`, so a log line starts on
  its own line above the bar instead of inside the bar's line. Everything is
  restored on exit, and the bar closed.
  """
  terminal = sys.stderr
  bar = tqdm.tqdm(file=terminal, dynamic_ncols=True, disable=not terminal.isatty(),
                  **tqdm_args)
  if bar.disable:
    try:
      yield bar
    finally:
      bar.close()
    return
  shared = _AboveTheBar(terminal)
  handlers = [h for h in _stream_handlers() if h.stream is terminal]
  sys.stderr = shared
  for handler in handlers:
    handler.stream = shared
  try:
    yield bar
  finally:
    for handler in handlers:
      handler.stream = terminal
    sys.stderr = terminal
    shared.finish()
    bar.close()
