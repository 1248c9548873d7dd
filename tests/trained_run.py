"""A tiny trained run shared by tests/test_predict.py and tests/test_export.py (session scope: trained once),
with its eval.py scores and the videos of its test split written as files."""
from __future__ import annotations

import contextlib
import json
import shutil
import types
from pathlib import Path
from unittest import mock

import av
import numpy as np
import pytest
import tensorflow as tf

from conftest import tiny_config
from vidrec import evaluate, fs, procedures
from vidrec.data import datasets, pipeline

# Lossless codecs (decoded frames == the frames written), one per container the issue names.
CONTAINERS = (("mp4", "libx264rgb", "rgb24", {"qp": "0", "preset": "ultrafast"}),
              ("webm", "libvpx-vp9", "gbrp", {"lossless": "1", "deadline": "realtime", "cpu-used": "8"}),
              ("avi", "png", "rgb24", {}))


def write_video(path: Path, frames: np.ndarray, codec: str, pix_fmt: str, options: dict) -> Path:
  path.parent.mkdir(parents=True, exist_ok=True)
  with av.open(str(path), "w") as container:
    stream = container.add_stream(codec, rate=25, options=options)
    stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
    for frame in frames:
      container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
    container.mux(stream.encode())
  return path


def record_frames(source: pipeline.VideoSource, index: int) -> np.ndarray:
  """The frames of test record ``index`` exactly as evaluation decodes them (TF's JPEG decoder)."""
  _, (jpegs,) = pipeline.parse_record(source.read(index), ["video"])
  return np.stack([tf.io.decode_jpeg(j, channels=3).numpy() for j in jpegs])


def workdir_alone(workdir: str, dest: Path, keep_dataset_record: bool = True) -> str:
  """A copy of ``workdir`` as another machine gets it: its config's ``dataset.data_dir`` an empty folder
  (and, ``keep_dataset_record=False``, no ``dataset.json``: a run trained before training wrote one)."""
  shutil.copytree(workdir, dest / "run")
  (dest / "empty").mkdir()
  config = json.loads((dest / "run" / "config.json").read_text())
  config["dataset"]["data_dir"] = str(dest / "empty")
  (dest / "run" / "config.json").write_text(json.dumps(config))
  if not keep_dataset_record:
    (dest / "run" / "dataset.json").unlink()
  return str(dest / "run")


def no_dataset() -> contextlib.AbstractContextManager:
  """Opening any dataset fails inside this context."""
  return mock.patch.object(datasets, "load_builder", side_effect=AssertionError("a dataset was opened"))


@pytest.fixture(scope="session")
def trained_run(data_dir, tmp_path_factory):
  """A tiny ResNet3D trained 3 steps and evaluated by ``evaluate.evaluate``; test videos 0-2 written as
  mp4 / webm / avi files in ``folder``."""
  workdir = str(tmp_path_factory.mktemp("predict_run"))
  cfg = tiny_config(data_dir)
  cfg.num_train_steps = cfg.checkpoint_every_steps = 3
  procedures.train(cfg, workdir)
  evaluate.evaluate(cfg, workdir)
  scores = fs.load_npz(fs.path(workdir) / "eval" / "test_scores.npz")
  source = pipeline.VideoSource(datasets.load_builder(cfg.dataset.name, data_dir), "test")
  folder = tmp_path_factory.mktemp("videos")
  files = {str(write_video(folder / f"video{k}.{ext}", record_frames(source, k), codec, fmt, opts)): k
           for k, (ext, codec, fmt, opts) in enumerate(CONTAINERS)}
  return types.SimpleNamespace(workdir=workdir, config=cfg, scores=scores, folder=folder, files=files)
