"""Shared fixtures: 4 fake CPU devices, a tiny built synthetic dataset and a tiny ResNet3D config."""
import os

os.environ.setdefault("JAX_NUM_CPU_DEVICES", "4")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

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
