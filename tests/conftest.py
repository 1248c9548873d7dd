"""Shared fixtures: 4 fake CPU devices, a tiny built synthetic dataset and a tiny ResNet3D config.

The tests' models are tiny, so compiling costs far more than running them. Every test process (pytest,
its xdist workers and the processes tests start, which inherit the environment) therefore compiles with
XLA's CPU backend optimisations off (2.7x less CPU for conftest's tiny train step; XLA's buffer
assignment, which tests/test_memory_levers.py reads, is the same) and shares one persistent compilation
cache for the run, so an identical function compiled again (each ``trainer.train`` of the same config, a
resumed run, its uninterrupted twin) is loaded from disk (6x less CPU for that train step). CPU seconds
on an AMD EPYC shared with other work: U2S's staged schedule 130 -> 55, U2S remat 86 -> 31, resume 53 -> 21.
"""
import os
import shutil
import tempfile

os.environ.setdefault("JAX_NUM_CPU_DEVICES", "4")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The convolution path auto picks for the tests' tiny shapes, fixed: under auto, a paper-size
# jax.eval_shape would time real convolutions at paper size (430 s for JointLSTM's VGG16 on 2 idle
# cores) and write the user's ~/.cache. tests/test_conv_autotune.py sets auto itself.
os.environ.setdefault("VIDREC_CONV3D", "temporal_sum")
_FAST_COMPILE = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
if _FAST_COMPILE not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_FAST_COMPILE}".strip()
# Made by the first process of a run (the xdist controller, or pytest alone) unless set already (a
# cache kept across runs), inherited by the rest. A size limit turns on the cache's file lock, so that
# no process reads an entry another is still writing.
_OWN_CACHE = "JAX_COMPILATION_CACHE_DIR" not in os.environ
if _OWN_CACHE:
  os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="vidrec-tests-xla-cache-")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(4 << 30))

import pytest  # noqa: E402

from vidrec.config import base_config  # noqa: E402


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> str:
  """A data dir holding the built ``synthetic_actions/tiny`` (48 train / 24 test videos, 32 px)."""
  from vidrec.data import datasets
  path = str(tmp_path_factory.mktemp("tfds"))
  datasets.load_builder("synthetic_actions/tiny", path)
  return path


def tiny_config(data_dir: str):
  """A ResNet3D small enough to train a few steps in seconds on a CPU."""
  c = base_config()
  c.model.update(name="resnet3d", width=4, num_stages=2)
  c.dataset.update(name="synthetic_actions/tiny", data_dir=data_dir)
  c.input.update(clip_len=4, stride=2, num_test_clips=2, resize=(28,), crop=24, test_spatial="three")
  c.optimizer.update(lr=0.05, schedule="cosine", weight_decay=1e-4)
  c.batch_size = 8
  c.eval.batch_size = 8
  c.num_train_steps = 6
  c.log_every_steps = 1
  c.checkpoint_every_steps = 3
  return c


def pytest_unconfigure(config):
  if _OWN_CACHE and not hasattr(config, "workerinput"):     # the process that made the cache removes it
    shutil.rmtree(os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)
