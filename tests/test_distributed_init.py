"""Multi-host start-up (vidrec.parallel.initialize): JAX's own cluster detection decides, checked with
simulated SLURM / Open MPI environments and a recorded ``jax.distributed.initialize`` (no cluster starts)."""
import jax
import pytest
from jax._src import clusters

from vidrec import parallel

CLUSTER_VARS = ("SLURM_JOB_ID", "SLURM_STEP_NODELIST", "SLURM_NTASKS", "SLURM_PROCID", "SLURM_LOCALID",
                "OMPI_MCA_orte_hnp_uri", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK",
                "OMPI_COMM_WORLD_LOCAL_RANK", "JAX_COORDINATOR_PORT")
SLURM = {"SLURM_JOB_ID": "4242", "SLURM_STEP_NODELIST": "gpu[007-010]", "SLURM_NTASKS": "4",
         "SLURM_PROCID": "2", "SLURM_LOCALID": "0"}
OMPI = {"OMPI_MCA_orte_hnp_uri": "1531576320.0;tcp://10.96.0.1:34911", "OMPI_COMM_WORLD_SIZE": "8",
        "OMPI_COMM_WORLD_RANK": "5", "OMPI_COMM_WORLD_LOCAL_RANK": "1"}


@pytest.fixture
def calls(monkeypatch):
  for var in CLUSTER_VARS:
    monkeypatch.delenv(var, raising=False)
  recorded = []
  monkeypatch.setattr(jax.distributed, "initialize", lambda *a, **kw: recorded.append((a, kw)))
  return recorded


def _resolved() -> tuple:
  """What ``jax.distributed.initialize()`` would fill in by itself here."""
  return clusters.ClusterEnv.auto_detect_unset_distributed_params(None, None, None, None, None, None)


def test_plain_single_process_run_does_not_initialize(calls):
  assert parallel.detected_cluster() is None
  parallel.initialize()
  assert calls == []


@pytest.mark.parametrize("env,expected", [
    (SLURM, ("gpu007:12345", 4, 2, [0])), (OMPI, ("10.96.0.1:12345", 8, 5, [1]))])
def test_detected_cluster_initializes_without_arguments(calls, monkeypatch, env, expected):
  for k, v in {**env, "JAX_COORDINATOR_PORT": "12345"}.items():
    monkeypatch.setenv(k, v)
  parallel.initialize()
  assert calls == [((), {})]
  assert _resolved() == expected   # coordinator, process count, rank, local device of this process


def test_one_task_job_and_opt_out_stay_single_process(calls, monkeypatch):
  for k, v in {**SLURM, "SLURM_NTASKS": "1", "SLURM_PROCID": "0"}.items():
    monkeypatch.setenv(k, v)
  parallel.initialize()
  for k, v in SLURM.items():
    monkeypatch.setenv(k, v)
  parallel.initialize(auto=False)
  assert calls == []


def test_explicit_coordinator_wins(calls, monkeypatch):
  for k, v in SLURM.items():
    monkeypatch.setenv(k, v)
  parallel.initialize("10.0.0.1:1234", 2, 1)
  assert calls == [((), {"coordinator_address": "10.0.0.1:1234", "num_processes": 2, "process_id": 1})]
