"""Two processes x 2 CPU devices (jax.distributed on 127.0.0.1, gloo collectives) train and evaluate
exactly like one process x 4 devices (evaluation: all-reduced counts, per-process score shards)."""
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from conftest import tiny_config
from vidrec import evaluate, trainer

HERE = os.path.dirname(os.path.abspath(__file__))


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _read(workdir: str):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    losses = [r["loss"] for r in map(json.loads, f)]
  with open(os.path.join(workdir, "eval", "test_report.json")) as f:
    return losses, json.load(f)


@pytest.mark.slow
def test_two_processes_match_one_process(data_dir, tmp_path):
  cfg = tiny_config(data_dir)
  cfg.num_train_steps = 4
  single = str(tmp_path / "single")
  trainer.train(cfg, single)
  evaluate.evaluate(cfg, single)

  multi, port = str(tmp_path / "multi"), _free_port()
  env = {**os.environ, "JAX_NUM_CPU_DEVICES": "2"}
  procs = [subprocess.Popen([sys.executable, os.path.join(HERE, "mp_worker.py"), str(port), "2", str(i),
                             multi, data_dir], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True) for i in range(2)]
  outs = [p.communicate(timeout=600)[0] for p in procs]
  for p, out in zip(procs, outs):
    assert p.returncode == 0, out[-3000:]

  losses_1, report_1 = _read(single)
  losses_2, report_2 = _read(multi)
  assert len(losses_1) == len(losses_2) == 4
  np.testing.assert_allclose(losses_2, losses_1, rtol=1e-5)
  assert report_2["num_views"] == report_1["num_views"] == 24 * 6
  np.testing.assert_allclose(report_2["top1"], report_1["top1"])
  assert report_2["confusion_matrix"] == report_1["confusion_matrix"]
  # Per-video scores: process 0 merged the two processes' shard files (and removed them).
  scores_1, scores_2 = (np.load(os.path.join(w, "eval", "test_scores.npz")) for w in (single, multi))
  np.testing.assert_array_equal(scores_2["labels"], scores_1["labels"])
  np.testing.assert_allclose(scores_2["logits"], scores_1["logits"], rtol=1e-5, atol=1e-6)
  assert sorted(os.listdir(os.path.join(multi, "eval"))) == sorted(os.listdir(os.path.join(single, "eval")))
