"""The trainer: sharding invariance, resume == uninterrupted, NaN handling, eval report, early errors."""
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from conftest import tiny_config
from vidrec import evaluate, losses, parallel, trainer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class SimulatedCrash(Exception):
  pass


def _losses(workdir: str) -> dict[int, float]:
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return {r["step"]: r["loss"] for r in map(json.loads, f)}


@pytest.mark.slow
def test_one_step_same_loss_on_1_and_4_devices(data_dir):
  assert jax.device_count() == 4
  cfg = tiny_config(data_dir)
  s = trainer.setup(cfg)
  rng = np.random.default_rng(0)
  batch = {"video": rng.standard_normal(trainer.input_shape(cfg, 8)).astype(np.float32),
           "label": rng.integers(0, s.num_classes, 8).astype(np.int32)}
  results = []
  for devices in (jax.devices()[:1], jax.devices()):
    mesh = Mesh(np.array(devices), ("data",))
    repl, sharded = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
    ts = jax.jit(lambda r: trainer.init_state(s.model, s.tx, cfg, r), out_shardings=repl)(jax.random.key(0))
    step = jax.jit(trainer.make_train_step(s.model, s.tx, losses.LOSSES.get("classification"), cfg.loss,
                                           s.schedule, jax.random.key(1)),
                   in_shardings=(repl, sharded), out_shardings=(repl, repl))
    ts, m1 = step(ts, jax.device_put(batch, sharded))
    _, m2 = step(ts, jax.device_put(batch, sharded))   # after one update: BN stats and grads agree too
    results.append((float(m1["loss"]), float(m2["loss"])))
  np.testing.assert_allclose(results[0], results[1], rtol=1e-5)


def test_initial_state_compiled_cheaply_equals_the_jitted_init(data_dir):
  cfg = tiny_config(data_dir)
  s = trainer.setup(cfg)
  repl = parallel.replicated(s.mesh)
  got = trainer.initial_state(s.model, s.tx, cfg, jax.random.key(3), repl)
  want = jax.jit(lambda r: trainer.init_state(s.model, s.tx, cfg, r))(jax.random.key(3))
  jax.tree.map(np.testing.assert_array_equal, got, want)
  assert all(x.sharding == repl for x in jax.tree.leaves(got))


@pytest.mark.slow
def test_resume_reproduces_uninterrupted_run(data_dir, tmp_path, monkeypatch):
  cfg = tiny_config(data_dir)
  trainer.train(cfg, str(tmp_path / "full"))
  full = _losses(str(tmp_path / "full"))
  assert sorted(full) == [1, 2, 3, 4, 5, 6]

  calls = {"n": 0}
  real_to_global = parallel.to_global

  def crash_on_step_5(batch, mesh):
    calls["n"] += 1
    if calls["n"] == 5:
      raise SimulatedCrash("killed before step 5")
    return real_to_global(batch, mesh)

  monkeypatch.setattr(parallel, "to_global", crash_on_step_5)
  with pytest.raises(SimulatedCrash):
    trainer.train(cfg, str(tmp_path / "resumed"))
  monkeypatch.setattr(parallel, "to_global", real_to_global)
  mngr = trainer.checkpoint_manager(str(tmp_path / "resumed"), cfg)
  assert mngr.latest_step() == 3
  mngr.close()
  trainer.train(cfg, str(tmp_path / "resumed"))      # same command again: resumes at step 3
  resumed = _losses(str(tmp_path / "resumed"))
  assert sorted(resumed) == [1, 2, 3, 4, 5, 6]       # step 4 was lost in the crash, then redone
  np.testing.assert_allclose([resumed[k] for k in range(1, 7)], [full[k] for k in range(1, 7)], rtol=1e-5)

  report = evaluate.evaluate(cfg, str(tmp_path / "resumed"))
  for key in ("top1", "top5", "mean_class_accuracy", "num_videos", "num_views", "aggregation",
              "checkpoint_step", "per_class_accuracy"):
    assert key in report
  assert report["num_videos"] == 24 and report["num_views"] == 24 * 2 * 3
  assert report["checkpoint_step"] == 6
  assert sum(map(sum, report["confusion_matrix"])) == 24
  assert os.path.exists(tmp_path / "resumed" / "eval" / "test_report.json")
  assert os.path.exists(tmp_path / "resumed" / "eval" / "test_confusion.png")


@pytest.mark.slow
def test_nan_stops_training_and_keeps_last_good_checkpoint(data_dir, tmp_path, monkeypatch):
  cfg = tiny_config(data_dir)
  cfg.checkpoint_every_steps = 2
  calls = {"n": 0}
  real_to_global = parallel.to_global

  def nan_at_step_4(batch, mesh):
    """Float model inputs (uint8 holds no NaN; a float video passes model_input unchanged), NaN at step 4."""
    calls["n"] += 1
    video = batch["video"].astype(np.float32)
    if calls["n"] == 4:
      video = np.full_like(video, np.nan)
    return real_to_global({**batch, "video": video}, mesh)

  monkeypatch.setattr(parallel, "to_global", nan_at_step_4)
  with pytest.raises(trainer.NonFiniteLossError, match="at step 4"):
    trainer.train(cfg, str(tmp_path))
  s = trainer.setup(cfg)
  mngr = trainer.checkpoint_manager(str(tmp_path), cfg)
  assert mngr.all_steps() == [2]
  ts, _ = trainer.restore(mngr, s.abstract_state)
  mngr.close()
  assert all(np.isfinite(x).all() for x in jax.tree.leaves(ts.params))


@pytest.mark.parametrize("override, message", [
    ({"model": {"name": "resnet9d"}}, "Unknown model.name 'resnet9d'"),
    ({"dataset": {"name": "kinetics"}}, "Unknown dataset.name 'kinetics'"),
    ({"eval": {"aggregation": "median"}}, "Unknown eval.aggregation"),
    ({"batch_size": 6}, "does not divide across 4 devices"),
    ({"dataset": {"name": "ucf101/split1"}}, "python -m vidrec.data.prepare"),
])
def test_clear_errors_before_compilation(data_dir, tmp_path, override, message):
  cfg = tiny_config(data_dir)
  for k, v in override.items():
    if isinstance(v, dict):
      cfg[k].update(v)
    else:
      cfg[k] = v
  if override.get("dataset", {}).get("name") == "ucf101/split1":
    cfg.dataset.data_dir = str(tmp_path / "empty")
  with pytest.raises((KeyError, ValueError, FileNotFoundError), match=message):
    trainer.setup(cfg)


@pytest.mark.slow
def test_unknown_config_key_from_the_command_line(tmp_path):
  out = subprocess.run(
      [sys.executable, "train.py", "--config", "configs/resnet3d_ucf101.py:synthetic",
       "--workdir", str(tmp_path), "--config.model.widht=8"],
      cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert out.returncode == 2 and "Traceback" not in out.stderr     # a user error (vidrec.cli)
  assert 'Did you mean "width"' in out.stderr
