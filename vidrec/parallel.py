"""Devices, processes and shardings: one mesh axis ``data``; state replicated, batches sharded.

The same code runs on one CPU, N fake CPU devices (``JAX_NUM_CPU_DEVICES=N``), a multi-GPU host and a
multi-host pod. Under ``jax.jit`` BatchNorm statistics are computed over the global batch (XLA inserts
the cross-device reductions), i.e. synchronised BatchNorm.
"""
from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA = "data"


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None) -> None:
  """Joins a multi-process job. With no arguments, only where JAX can auto-detect a cluster
  (TPU pods, SLURM, ...); otherwise pass the coordinator explicitly (e.g. 127.0.0.1:1234)."""
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
    raise ValueError(
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
