"""Devices, processes and shardings: one mesh axis ``data``; state replicated, batches sharded.

The same code runs on one CPU, N fake CPU devices (``JAX_NUM_CPU_DEVICES=N``), a multi-GPU host and a
multi-host pod. Under ``jax.jit`` BatchNorm statistics are computed over the global batch (XLA inserts
the cross-device reductions), i.e. synchronised BatchNorm.
"""
from __future__ import annotations

import jax
import numpy as np
from absl import flags, logging
from jax._src import clusters
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA = "data"


def define_flags() -> None:
  """The command-line flags of a multi-process job (train.py, eval.py)."""
  flags.DEFINE_string("coordinator_address", None,
                      "HOST:PORT of process 0, for multi-process runs JAX cannot auto-detect.")
  flags.DEFINE_integer("num_processes", None, "Number of processes (with --coordinator_address).")
  flags.DEFINE_integer("process_id", None, "This process's id (with --coordinator_address).")
  flags.DEFINE_bool("auto_distributed", True, "Join the job of a cluster JAX detects (Cloud TPU, SLURM, "
                    "Open MPI) without --coordinator_address; --noauto_distributed runs single-process.")


# Clusters whose launcher gives every process its rank and the coordinator (JAX's own detection, the
# one ``jax.distributed.initialize()`` uses). Kubernetes/mpi4py are left to --coordinator_address.
AUTO_CLUSTERS = ("gcetpu", "gketpu", "slurm", "ompi")
_TPU_CLUSTERS = ("gcetpu", "gketpu")


def detected_cluster() -> type[clusters.ClusterEnv] | None:
  """The multi-process cluster environment JAX detects here, or None for a plain single process (a
  one-task SLURM/Open MPI job counts as single process; a TPU VM always joins its slice)."""
  for env in clusters.ClusterEnv._cluster_types:  # pylint: disable=protected-access
    if env.name in AUTO_CLUSTERS and env.is_env_present():
      if env.name in _TPU_CLUSTERS or env.get_process_count() > 1:
        return env
  return None


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, auto: bool | None = None) -> None:
  """Joins a multi-process job: with an explicit coordinator (the arguments, or else the flags of
  ``define_flags``), or with ``jax.distributed.initialize()`` and no arguments where JAX detects the
  cluster (``detected_cluster``); otherwise (a plain CPU/GPU run) it does nothing."""
  if coordinator_address is None and "coordinator_address" in flags.FLAGS:
    coordinator_address = flags.FLAGS.coordinator_address
    num_processes, process_id = flags.FLAGS.num_processes, flags.FLAGS.process_id
    auto = flags.FLAGS.auto_distributed if auto is None else auto
  if coordinator_address:
    jax.distributed.initialize(coordinator_address=coordinator_address, num_processes=num_processes,
                               process_id=process_id)
  elif (auto is None or auto) and (env := detected_cluster()) is not None:
    logging.warning("Detected a %s cluster: joining it with jax.distributed.initialize()", env.name)
    jax.distributed.initialize()


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


def process_sum(tree):
  """Sums a pytree of numpy arrays over processes (an all-reduce on the devices: every process gets
  the sum, and no process ever holds the [processes, ...] stack). Integers are summed as int32 and
  floats as float32 (JAX's default precision)."""
  if jax.process_count() == 1:
    return tree
  mesh = make_mesh()

  def stacked(x: np.ndarray) -> jax.Array:
    x = np.asarray(x)
    x = x.astype(np.int32 if np.issubdtype(x.dtype, np.integer) else np.float32)
    local = np.zeros((jax.local_device_count(),) + x.shape, x.dtype)
    local[0] = x
    return jax.make_array_from_process_local_data(data_sharded(mesh), local)

  total = jax.jit(lambda t: jax.tree.map(lambda a: a.sum(0), t), out_shardings=replicated(mesh))(
      jax.tree.map(stacked, tree))
  return jax.tree.map(lambda a: np.asarray(a.addressable_data(0)), total)


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
