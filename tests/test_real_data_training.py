"""Real (fixture) video files -> prepare command -> input pipeline -> train + evaluate.

The other tests train on the built-in synthetic dataset; these go through the path a user
takes with their own data: real containers written with PyAV (tests/fixtures_video.py),
``python -m vidrec.data.prepare`` as a command, then ``config.dataset.name`` pointing at the
prepared data (``video_folder/NAME``, ``ucf101/split1_s32``) for the trainer, the
evaluation and the input pipeline.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

sys.path.insert(0, os.path.dirname(__file__))
import fixtures_video as fx  # noqa: E402  pylint: disable=g-import-not-at-top

from conftest import tiny_config  # noqa: E402
from vidrec import evaluate, trainer  # noqa: E402
from vidrec.data import datasets, pipeline, prepare, samplers  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLASSES = ["clap", "jump", "wave"]


def _make_tiny_folder(root: Path) -> None:
  """root/{train,test}/<class>/<k>.mp4: 3 classes x (3 train + 1 test) H.264 videos, 32x40,
  10 frames."""
  for ci, c in enumerate(CLASSES):
    for k in range(4):
      split = "test" if k == 3 else "train"
      fx.write_video(root / split / c / f"v{k}.mp4", n_frames=10, codec="libx264", fps=25,
                     seed=10 * ci + k)


@pytest.mark.slow
def test_prepare_command_then_train_and_evaluate(tmp_path):
  manual, data = tmp_path / "videos", tmp_path / "data"
  _make_tiny_folder(manual)
  env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
  proc = subprocess.run(
      [sys.executable, "-m", "vidrec.data.prepare", "video_folder", "--name", "tiny",
       "--manual_dir", str(manual), "--data_dir", str(data), "--short_side", "32",
       "--workers", "1"],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  summary = json.loads(proc.stdout.strip().splitlines()[-1])
  assert summary["dataset"] == "video_folder/tiny"
  assert summary["written"] == {"test": 3, "train": 9}
  assert summary["num_classes"] == 3 and summary["short_side"] == 32
  assert summary["num_skipped"] == 0 and not summary["reused"]

  cfg = tiny_config(str(data))
  cfg.dataset.name = "video_folder/tiny"
  cfg.num_train_steps = 2
  cfg.checkpoint_every_steps = 2
  workdir = str(tmp_path / "work")
  ts = trainer.train(cfg, workdir)
  assert int(ts.step) == 2
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    rows = [json.loads(line) for line in f]
  assert [r["step"] for r in rows] == [1, 2]
  assert all(np.isfinite(r["loss"]) for r in rows)

  report = evaluate.evaluate(cfg, workdir)
  assert report["checkpoint_step"] == 2 and report["split"] == "test"
  assert report["num_videos"] == 3
  assert report["num_views"] == 3 * cfg.input.num_test_clips * 3   # 2 clips x 3 crops per video
  assert sorted(report["per_class_accuracy"]) == CLASSES
  assert np.sum(report["confusion_matrix"]) == 3
  assert 0.0 <= report["top1"] <= 1.0
  assert os.path.exists(os.path.join(workdir, "eval", "test_report.json"))


@pytest.fixture(scope="module")
def ucf101(tmp_path_factory):
  """The UCF101-layout fixture prepared with the ucf101 builder at short side 32 (frames stay
  32x40); the builder is opened through config.dataset.name as training does."""
  root = tmp_path_factory.mktemp("ucf")
  expected = fx.make_ucf101(root / "manual")
  summary = prepare.prepare("ucf101", str(root / "manual"), data_dir=str(root / "data"),
                            config="split1", short_side=32, workers=1)
  assert summary["dataset"] == "ucf101/split1_s32"
  assert summary["written"] == {"test": 2, "train": 3}
  builder = datasets.load_builder(summary["dataset"], str(root / "data"))
  return builder, expected


def _video_ids(builder, split: str) -> list[str]:
  source = builder.as_data_source(split)
  return [source[i]["video_id"].decode() if isinstance(source[i]["video_id"], bytes)
          else source[i]["video_id"] for i in range(len(source))]


def test_ucf101_train_pipeline(ucf101):
  builder, expected = ucf101
  cfg = tiny_config("")
  source = pipeline.VideoSource(builder, "train")
  assert source.class_names == expected["classes"] and len(source) == 3
  np.testing.assert_array_equal(source.flip_map, [0, 1, 2])
  it = pipeline.train_dataset(source, cfg.input, global_batch=3, seed=0).as_numpy_iterator()
  for _ in range(2):                  # a batch of 3 is one epoch: every video exactly once
    batch = next(it)
    assert batch["video"].shape == (3, cfg.input.clip_len, 24, 24, 3)
    assert batch["video"].dtype == np.uint8
    assert sorted(batch["label"].tolist()) == sorted(expected["train"].values())


def test_ucf101_eval_pipeline(ucf101):
  builder, expected = ucf101
  cfg = tiny_config("")
  source = pipeline.VideoSource(builder, "test")
  ids = _video_ids(builder, "test")
  assert sorted(ids) == sorted(expected["test"])
  batches = list(pipeline.padded_batches(
      pipeline.eval_dataset(source, cfg.input, global_batch=4), 4))
  assert len(batches) == 3            # 2 videos x 2 clips x 3 crops = 12 views
  got = {k: np.concatenate([b[k][b["mask"]] for b in batches])
         for k in ("video", "label", "video_index", "view_index")}
  assert got["video"].shape == (12, cfg.input.clip_len, 24, 24, 3)
  for v, vid in enumerate(ids):
    rows = got["video_index"] == v
    assert sorted(got["view_index"][rows].tolist()) == list(range(6))
    assert set(got["label"][rows].tolist()) == {expected["test"][vid]}

  # View 1 of video 0 = clip 0, centre crop: the stored JPEGs (decoded with TF's decoder, as the
  # pipeline does; TFDS's own decoding may use PIL, whose output differs slightly), resized, cropped.
  frames = pipeline.decode_frames(source.parse(source.read(np.int64(0)))["video"]).numpy()
  assert frames.shape[1:] == (32, 40, 3)
  clip = samplers.test_dense_clips(len(frames), cfg.input.clip_len, cfg.input.stride,
                                   cfg.input.num_test_clips)[0]
  resized = pipeline.resize(tf.constant(frames[clip]), cfg.input.resize).numpy()  # 28 x 35
  y, x = (resized.shape[1] - 24) // 2, (resized.shape[2] - 24) // 2
  view = got["video"][(got["video_index"] == 0) & (got["view_index"] == 1)][0]
  np.testing.assert_allclose(view, resized[:, y:y + 24, x:x + 24], atol=0.501)   # rounded to uint8
