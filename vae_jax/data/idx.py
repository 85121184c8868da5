"""Reading and writing MNIST-format IDX files (raw or gzipped), numpy only."""

import gzip
import os
import struct
import zlib

import numpy as np

from vae_jax.errors import DataError

# IDX type code -> big-endian numpy dtype (http://yann.lecun.com/exdb/mnist/).
_CODE_TO_DTYPE = {
    0x08: np.dtype('u1'),
    0x09: np.dtype('i1'),
    0x0B: np.dtype('>i2'),
    0x0C: np.dtype('>i4'),
    0x0D: np.dtype('>f4'),
    0x0E: np.dtype('>f8'),
}
_DTYPE_TO_CODE = {dtype.newbyteorder('='): code
                  for code, dtype in _CODE_TO_DTYPE.items()}

# split -> (images basename, labels basename), without the optional '.gz'.
_SPLIT_FILES = {
    'train': ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte'),
    'test': ('t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'),
}


def expected_file_names() -> str:
  """Returns the four expected IDX file names as one human-readable string."""
  names = [name for pair in _SPLIT_FILES.values() for name in pair]
  return ', '.join(f'{name}[.gz]' for name in names)


def _open(path: str, mode: str):
  """Opens `path` in binary mode, through gzip when it ends with '.gz'."""
  return gzip.open(path, mode) if path.endswith('.gz') else open(path, mode)


def _read_bytes(path: str) -> bytes:
  """Returns the (decompressed) contents of `path`, or raises DataError."""
  try:
    with _open(path, 'rb') as f:
      return f.read()
  except FileNotFoundError as e:
    raise DataError(f'IDX file {path} does not exist.') from e
  except (OSError, EOFError, zlib.error) as e:
    raise DataError(
        f'IDX file {path} is unreadable or truncated ({e}); replace it with a '
        'complete copy.') from e


def _parse_header(path: str, data: bytes) -> tuple[np.dtype, tuple[int, ...]]:
  """Parses the IDX header: returns (big-endian dtype, shape)."""
  bad = f'IDX file {path} is not a valid IDX file'
  if len(data) < 4:
    raise DataError(f'{bad}: it is only {len(data)} bytes long.')
  zero, code, ndim = struct.unpack('>HBB', data[:4])
  if zero != 0 or code not in _CODE_TO_DTYPE:
    raise DataError(f'{bad}: bad magic number 0x{data[:4].hex()}.')
  if len(data) < 4 + 4 * ndim:
    raise DataError(f'{bad}: the header is truncated.')
  shape = struct.unpack(f'>{ndim}I', data[4:4 + 4 * ndim])
  return _CODE_TO_DTYPE[code], tuple(int(d) for d in shape)


def read_idx(path: str) -> np.ndarray:
  """Reads an IDX file (gzipped if `path` ends with '.gz') into a numpy array."""
  data = _read_bytes(path)
  dtype, shape = _parse_header(path, data)
  offset = 4 + 4 * len(shape)
  expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
  if len(data) - offset != expected:
    raise DataError(
        f'IDX file {path} is truncated or corrupt: header shape {shape} needs '
        f'{expected} data bytes but the file has {len(data) - offset}; replace '
        'it with a complete copy.')
  array = np.frombuffer(data, dtype=dtype, offset=offset).reshape(shape)
  return array.astype(dtype.newbyteorder('='))


def write_idx(path: str, array: np.ndarray) -> None:
  """Writes `array` as an IDX file (gzipped if `path` ends with '.gz')."""
  array = np.asarray(array)
  code = _DTYPE_TO_CODE.get(array.dtype.newbyteorder('='))
  if code is None:
    raise ValueError(f'IDX cannot store dtype {array.dtype}.')
  header = struct.pack('>HBB', 0, code, array.ndim)
  header += struct.pack(f'>{array.ndim}I', *array.shape)
  body = array.astype(_CODE_TO_DTYPE[code]).tobytes()
  with _open(path, 'wb') as f:
    f.write(header + body)


def _find_file(directory: str, basename: str) -> str | None:
  """Returns the path of `basename` or `basename.gz` in `directory`, if any."""
  for name in (basename, basename + '.gz'):
    path = os.path.join(directory, name)
    if os.path.isfile(path):
      return path
  return None


def find_idx_split(directory: str, split: str, labels_required: bool = True) -> tuple:
  """Returns the (images, labels) IDX paths of `split` ('train'/'test'); labels None
  if absent and not `labels_required`."""
  if split not in _SPLIT_FILES:
    raise ValueError(f'split must be one of {sorted(_SPLIT_FILES)}, got {split!r}.')
  basenames = _SPLIT_FILES[split]
  paths = [_find_file(directory, name) for name in basenames]
  if not labels_required and paths[0] is not None:
    return paths[0], paths[1]
  missing = [name for name, path in zip(basenames, paths) if path is None]
  if missing:
    raise DataError(
        f'Missing MNIST-format IDX file(s) in {directory}: '
        f'{", ".join(name + "[.gz]" for name in missing)}; the directory must '
        f'hold {expected_file_names()}.')
  return paths[0], paths[1]
