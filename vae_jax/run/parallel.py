"""Data parallelism over every device of every host with `jax.sharding`.

One `Mesh` with a single 'data' axis over all devices. A training batch (the
indices gathered inside the jitted step) is split along it; the parameters,
optimizer state and the device-resident dataset are replicated. XLA inserts
the gradient all-reduce, so the step's maths is unchanged: a run on N devices
gives the results of one device up to float summation order.

Multi-host (TPU pods, GPU clusters, or several processes of one machine):
`initialize_distributed()` starts `jax.distributed` when the environment asks
for it (see its docstring); every process then computes the same global batch
indices from (seed, step) and keeps the slice its devices hold, so no data
moves between hosts. Every process runs the same jitted computations in the
same order (training steps, checkpoint saves and restores, `max_over_processes`);
only the primary process (`is_primary`, process 0) evaluates and writes the
run's files, on a local copy of the replicated parameters (`to_one_device`).
On CPUs the cross-process all-reduce is jax's default CPU collectives
implementation, gloo over TCP (`jax_cpu_collectives_implementation`).
"""

import os
from typing import Optional

import jax
import numpy as np
from absl import logging
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from vae_jax.errors import ConfigError

DATA_AXIS = 'data'


def initialize_distributed() -> bool:
  """Starts `jax.distributed` when asked; True if it did.

  Asked by VAE_JAX_DISTRIBUTED=1 (cluster detected automatically on Cloud
  TPU, Slurm and Open MPI) or by JAX_COORDINATOR_ADDRESS with JAX_NUM_PROCESSES
  and JAX_PROCESS_ID set (any other cluster). Must run before any computation.
  """
  address = os.environ.get('JAX_COORDINATOR_ADDRESS')
  if os.environ.get('VAE_JAX_DISTRIBUTED', '0') in ('', '0') and not address:
    return False
  kwargs = {}
  if address:
    kwargs = dict(coordinator_address=address,
                  num_processes=int(os.environ['JAX_NUM_PROCESSES']),
                  process_id=int(os.environ['JAX_PROCESS_ID']))
  jax.distributed.initialize(**kwargs)
  logging.info('jax.distributed: process %d of %d, %d devices in all',
               jax.process_index(), jax.process_count(), jax.device_count())
  return True


def is_primary() -> bool:
  """True in the process that evaluates and writes the run's files (process 0;
  the only process without `jax.distributed`)."""
  return jax.process_index() == 0


def max_over_processes(value: int) -> int:
  """The largest of every process's `value` (a collective: every process calls it)."""
  if jax.process_count() == 1:
    return int(value)
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  return int(np.max(multihost_utils.process_allgather(np.int32(value))))


def sync_processes(name: str) -> None:
  """Waits until every process reaches the barrier `name` (no-op in one process)."""
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    multihost_utils.sync_global_devices(name)


def data_mesh(batch_size: int, name: str = 'config.data.batch_size') -> Optional[Mesh]:
  """A 'data' mesh over all devices, or None with one device.

  ConfigError unless the global `batch_size` splits evenly over the devices.
  """
  devices = jax.devices()
  if len(devices) == 1:
    return None
  if batch_size % len(devices):
    raise ConfigError(f'{name}={batch_size} does not split over the {len(devices)} '
                      f'devices; use a multiple of {len(devices)} (the per-device batch '
                      f'is {name} / {len(devices)})')
  return Mesh(np.asarray(devices), (DATA_AXIS,))


def replicate(tree, mesh: Optional[Mesh]):
  """Every leaf of `tree` on every device of `mesh`; without a mesh, on the first
  local device, committed there as a restored checkpoint's arrays are (a fresh
  and a resumed run then share their compiled programs)."""
  if mesh is None:
    return jax.device_put(tree, jax.local_devices()[0])
  sharding = NamedSharding(mesh, PartitionSpec())
  if jax.process_count() == 1:
    return jax.device_put(tree, sharding)
  return jax.tree.map(
      lambda a: jax.make_array_from_callback(np.shape(a), sharding,
                                             lambda index: np.asarray(a)[index]), tree)


def shard_batch(indices: np.ndarray, mesh: Optional[Mesh]):
  """Host batch indices [..., B] as a global array split along its last axis.

  Each host passes the same global indices and places only its devices' part.
  """
  if mesh is None:
    return indices
  spec = PartitionSpec(*([None] * (indices.ndim - 1)), DATA_AXIS)
  sharding = NamedSharding(mesh, spec)
  return jax.make_array_from_callback(indices.shape, sharding, lambda index: indices[index])


def to_one_device(tree):
  """A copy of `tree` on the first local device (evaluation runs unsharded).

  With several processes each leaf must be replicated (the train state is):
  the copy is this process's first shard, so evaluating it needs no other
  process.
  """
  if jax.process_count() == 1:
    return jax.device_put(tree, jax.local_devices()[0])

  def local(leaf):
    if not isinstance(leaf, jax.Array) or leaf.is_fully_addressable:
      return leaf
    if not leaf.is_fully_replicated:
      raise ValueError(f'a {leaf.shape} leaf sharded over processes has no local copy')
    return leaf.addressable_data(0)
  return jax.tree.map(local, tree)
