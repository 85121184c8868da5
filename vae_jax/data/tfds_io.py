"""Reading prepared TFDS datasets (never downloaded) into host numpy batches."""

import sys
from collections.abc import Iterator

import numpy as np

# Examples per tf.data batch when reading TFDS (then concatenated on host).
TFDS_BATCH = 10_000


def first_line(error: BaseException) -> str:
  """The first non-empty line of an exception message."""
  lines = [line.strip() for line in str(error).splitlines() if line.strip()]
  return lines[0] if lines else type(error).__name__


def read_error_types() -> tuple[type[BaseException], ...]:
  """Exceptions meaning 'a prepared TFDS dataset could not be read'."""
  tf = sys.modules.get('tensorflow')
  tf_errors = (tf.errors.OpError,) if tf is not None else ()
  return (OSError, ValueError) + tf_errors


def numpy_batches(tfds, builder, name: str,
                  split: str) -> Iterator[dict[str, np.ndarray]]:
  """The examples of a prepared split, in file order, as numpy batches."""
  ds = tfds.load(name, split=split, data_dir=str(builder.data_dir_root),
                 download=False, batch_size=TFDS_BATCH, shuffle_files=False)
  return iter(tfds.as_numpy(ds))
