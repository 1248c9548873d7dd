"""Devices, processes and shardings: one mesh axis ``data``; state replicated, batches sharded.

The same code runs on one CPU, N fake CPU devices (``JAX_NUM_CPU_DEVICES=N``), a multi-GPU host and a
multi-host pod. Under ``jax.jit`` BatchNorm statistics are computed over the global batch (XLA inserts
the cross-device reductions), i.e. synchronised BatchNorm.
"""
from __future__ import annotations

import jax
import numpy as np
from absl import flags
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P


from vidrec.errors import UserError
DATA = "data"


def define_flags() -> None:
  """The command-line flags of a multi-process job (train.py, eval.py)."""
  flags.DEFINE_string("coordinator_address", None,
                      "HOST:PORT of process 0, for multi-process runs JAX cannot auto-detect.")
  flags.DEFINE_integer("num_processes", None, "Number of processes (with --coordinator_address).")
  flags.DEFINE_integer("process_id", None, "This process's id (with --coordinator_address).")


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None) -> None:
  """Joins a multi-process job, with the arguments or else the flags of ``define_flags``. Without a
  coordinator this is a single-process run, or a cluster JAX detects itself (TPU pods, SLURM, ...)."""
  if coordinator_address is None and "coordinator_address" in flags.FLAGS:
    coordinator_address = flags.FLAGS.coordinator_address
    num_processes, process_id = flags.FLAGS.num_processes, flags.FLAGS.process_id
  if coordinator_address:
    jax.distributed.initialize(coordinator_address=coordinator_address, num_processes=num_processes,
                               process_id=process_id)


def make_mesh() -> Mesh:
  """A 1-D mesh over every device of every process, axis ``data``."""
  return jax.make_mesh((jax.device_count(),), (DATA,), axis_types=(jax.sharding.AxisType.Auto,))


def check_batch_size(global_batch: int) -> None:
  """Fails early (before any compilation) when the global batch cannot be split evenly."""
  devices, processes = jax.device_count(), jax.process_count()
  if global_batch % devices or global_batch % processes:
    raise UserError(
        f"batch_size={global_batch} does not divide across {devices} devices ({processes} processes): "
        f"use a multiple of {devices}, e.g. --config.batch_size={max(devices, global_batch // devices * devices)}.")


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def data_sharded(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P(DATA))


def to_global(batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
  """This process's rows -> one global ``jax.Array`` per key, sharded over ``data``."""
  sharding = data_sharded(mesh)
  return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in batch.items()}


def local_rows(x: jax.Array) -> np.ndarray:
  """The rows of a ``data``-sharded global array that this process fed, in order."""
  shards = sorted(x.addressable_shards, key=lambda s: s.index[0].start or 0)
  rows, seen = [], set()
  for s in shards:
    start = s.index[0].start or 0
    if start not in seen:
      seen.add(start)
      rows.append(np.asarray(s.data))
  return np.concatenate(rows)
