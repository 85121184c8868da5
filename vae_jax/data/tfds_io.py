"""Reading prepared TFDS datasets (never downloaded) into host numpy batches.

TensorFlow and tensorflow_datasets are the optional extra `vae_jax[tfds]`:
only this path imports them (`import_tfds`), so dSprites, local IDX
directories and Debian's Fashion-MNIST never load TensorFlow.
"""

import importlib
import sys
from collections.abc import Iterator

import numpy as np

from vae_jax.errors import DataError

# Examples per tf.data batch when reading TFDS (then concatenated on host).
TFDS_BATCH = 10_000

# What installs TensorFlow and tensorflow_datasets (pyproject.toml's extra).
TFDS_EXTRA = "pip install 'vae_jax[tfds]'"


def import_tfds(name: str, alternative: str):
  """The tensorflow_datasets module, or DataError naming the `tfds` extra.

  TensorFlow is imported first: without it tensorflow_datasets imports only
  in part (it logs a traceback and lacks `builder` and `load`).

  Args:
    name: the TFDS dataset asked for (for the message).
    alternative: what else the user can do, the clause ending the message.
  """
  for module, label in (('tensorflow', 'TensorFlow'),
                        ('tensorflow_datasets', 'tensorflow_datasets')):
    try:
      importlib.import_module(module)
    except ImportError as e:
      raise DataError(f'TFDS dataset {name!r} needs {label}, which is not '
                      f'installed: {TFDS_EXTRA}, or {alternative}.') from e
  return sys.modules['tensorflow_datasets']


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
