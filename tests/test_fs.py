"""The filesystem layer (vidrec.fs) end to end on ``gs://``: a local in-memory GCS emulator serves epath
(through fsspec/gcsfs), orbax (TensorStore's GCS driver), TensorBoard and the eval files. Train 3 steps,
resume to 4, evaluate: every file lands in the bucket and nothing on the local disk."""
import json
import logging
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from etils import epath
from etils.epath import gpath

from conftest import tiny_config
from vidrec import evaluate, fs, trainer

BUCKET = "vidrec-test"
HERE = os.path.dirname(os.path.abspath(__file__))


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@pytest.fixture(scope="module")
def gcs():
  """``gs://vidrec-test`` served by tests/gcs_emulator.py on 127.0.0.1 (the env points every client at it)."""
  pytest.importorskip("gcp_storage_emulator")
  pytest.importorskip("gcsfs")
  port = _free_port()
  proc = subprocess.Popen([sys.executable, os.path.join(HERE, "gcs_emulator.py"), str(port), BUCKET],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.time() + 60
  while True:
    try:
      socket.create_connection(("127.0.0.1", port), timeout=1).close()
      break
    except OSError:
      if time.time() > deadline or proc.poll() is not None:
        proc.kill()
        pytest.fail("the GCS emulator did not start")
      time.sleep(0.2)
  url = f"http://127.0.0.1:{port}"
  env = {"STORAGE_EMULATOR_HOST": url,            # gcsfs (epath's fsspec backend)
         "EPATH_USE_TF": "false",                  # epath: fsspec instead of tf.io.gfile for gs://
         "TENSORSTORE_GCS_HTTP_URL": url,          # orbax's array data
         "GOOGLE_AUTH_TOKEN_FOR_TESTING": "test"}  # TensorStore: no credential lookup
  saved = {k: os.environ.get(k) for k in env}
  os.environ.update(env)
  gpath._is_tf_installed.cache_clear()  # pylint: disable=protected-access  (it caches EPATH_USE_TF)
  logging.getLogger("gcsfs").setLevel(logging.ERROR)  # "could not determine bucket type" (no credentials)
  yield f"gs://{BUCKET}"
  for k, v in saved.items():
    if v is None:
      os.environ.pop(k, None)
    else:
      os.environ[k] = v
  gpath._is_tf_installed.cache_clear()  # pylint: disable=protected-access
  proc.kill()
  proc.wait()


def test_paths_keep_uris_and_make_local_paths_absolute(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  assert str(fs.path("gs://bucket/run") / "checkpoints") == "gs://bucket/run/checkpoints"
  assert str(fs.path("run")) == str(tmp_path / "run")
  with pytest.raises(ValueError, match="unsupported file system memory://"):
    fs.path("memory://run")
  f = fs.AppendFile("run/log.txt")
  f.write("a\n")
  f.close()
  f = fs.AppendFile("run/log.txt")
  f.write("b\n")
  f.close()
  assert (tmp_path / "run" / "log.txt").read_text() == "a\nb\n"


def test_append_file_on_an_object_store_rewrites_the_whole_object(gcs):
  p = f"{gcs}/append/log.txt"
  for text in ("a\n", "b\n"):
    f = fs.AppendFile(p)
    f.write(text)
    f.flush()
    f.write("")
    f.close()
  assert epath.Path(p).read_text() == "a\nb\n"


@pytest.mark.slow
def test_train_resume_and_evaluate_on_gcs(gcs, data_dir, tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)   # a path mangled into a local one would land here
  workdir = f"{gcs}/run"
  cfg = tiny_config(data_dir)
  cfg.num_train_steps = 3       # checkpoint_every_steps = 3
  trainer.train(cfg, workdir)
  cfg.num_train_steps = 4
  ts = trainer.train(cfg, workdir)
  assert int(ts.step) == 4
  report = evaluate.evaluate(cfg, workdir)

  root = epath.Path(workdir)
  assert sorted(p.name for p in (root / "checkpoints").iterdir()) == ["3", "4"]
  rows = [json.loads(line) for line in (root / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in rows] == [1, 2, 3, 4]
  events = list((root / "tensorboard").iterdir())
  assert events and all(e.stat().length > 0 for e in events)
  assert json.loads((root / "eval" / "test_report.json").read_text())["top1"] == report["top1"]
  assert (root / "eval" / "test_confusion.png").read_bytes()[:4] == b"\x89PNG"
  scores = fs.load_npz(root / "eval" / "test_scores.npz")
  assert scores["logits"].shape == (24, 12) and np.isfinite(scores["logits"]).all()
  assert np.array_equal(np.bincount(scores["labels"], minlength=12), np.sum(report["confusion_matrix"], 1))
  assert os.listdir(tmp_path) == []
