"""Memory levers (vidrec.memory): gradient accumulation and per-device BatchNorm against hand-built
references, remat (same results, less memory in XLA's buffer assignment) and the auto compute dtype."""
import json
import os
import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from conftest import tiny_config
from vidrec import losses, optim, parallel, trainer
from vidrec.models import build_model, dtype_of

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
B, D = 16, 4          # global batch, devices (conftest: 4 fake CPU devices)


class MLP(nn.Module):
  """No BatchNorm, no dropout: a k-micro-batch step must equal one k-times batch step."""
  num_classes: int = 5

  @nn.compact
  def __call__(self, video, *, train=False, labels=None):
    del train, labels
    return {"logits": nn.Dense(self.num_classes)(nn.tanh(nn.Dense(16)(video.reshape(video.shape[0], -1))))}


def _config(data_dir, **levers) -> ml_collections.ConfigDict:
  cfg = tiny_config(data_dir)
  cfg.input.update(clip_len=2, crop=8)
  cfg.model.update(num_stages=1)
  cfg.optimizer.update(name="sgd", lr=0.5, momentum=0.9, weight_decay=1e-3)
  cfg.batch_size = B
  cfg.update(levers)
  return cfg


def _batch(cfg) -> dict:
  rng = np.random.default_rng(0)
  return {"video": rng.standard_normal(trainer.input_shape(cfg, B)).astype(np.float32),
          "label": rng.integers(0, 5, B).astype(np.int32)}


def _train_step(model, cfg, batch, steps=1):
  """``steps`` jit-compiled train steps on the 4-device mesh with the config's levers."""
  assert jax.device_count() == D
  tx, schedule = optim.make_optimizer(cfg.optimizer, 100)
  ts = trainer.init_state(model, tx, cfg, jax.random.key(0))
  mesh = parallel.make_mesh()
  step = jax.jit(trainer.make_train_step(model, tx, losses.LOSSES.get("classification"), cfg.loss, schedule,
                                         jax.random.key(1), cfg, mesh))
  for _ in range(steps):
    ts, m = step(ts, parallel.to_global(batch, mesh))
  return ts, m


def _close(a, b, tol=1e-5):
  jax.tree.map(lambda x, y: np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=tol, atol=tol),
               a, b)


@pytest.mark.parametrize("k", [2, 4])
def test_accumulation_equals_one_k_times_batch_step(data_dir, k):
  cfg = _config(data_dir)
  batch = _batch(cfg)
  ts1, m1 = _train_step(MLP(), cfg, batch, steps=2)
  ts_k, m_k = _train_step(MLP(), _config(data_dir, accum_steps=k), batch, steps=2)
  _close(ts_k.params, ts1.params)
  _close(ts_k.opt_state, ts1.opt_state)
  for key in ("loss", "top1", "grad_norm"):
    np.testing.assert_allclose(m_k[key], m1[key], rtol=1e-5)
  assert m1["grad_norm"] > 1e-3   # the steps moved the parameters


def test_per_device_equals_synchronised_without_batch_norm(data_dir):
  cfg = _config(data_dir)
  batch = _batch(cfg)
  ts_sync, _ = _train_step(MLP(), cfg, batch)
  ts_dev, _ = _train_step(MLP(), _config(data_dir, sync_batch_norm=False, accum_steps=2), batch)
  _close(ts_dev.params, ts_sync.params)


def _reference(model, cfg, batch, groups):
  """One SGD step by hand: value-and-grad on each (rows, thread) group separately (BatchNorm statistics
  of those rows), gradients averaged; the model state threaded from group to group (thread=True,
  accumulation) or the groups' updated states averaged (per-device BatchNorm). -> (params, state)."""
  tx, _ = optim.make_optimizer(cfg.optimizer, 100)
  ts = trainer.init_state(model, tx, cfg, jax.random.key(0))
  grads, states, state = [], [], ts.model_state

  def objective(params, state, rows):
    out, new_state = model.apply({"params": params, **state}, batch["video"][rows], train=True,
                                 mutable=list(state))
    return losses.cross_entropy(out["logits"], batch["label"][rows]), new_state

  for rows, thread in groups:
    (_, new_state), g = jax.value_and_grad(objective, has_aux=True)(ts.params, state if thread else
                                                                     ts.model_state, rows)
    grads.append(g)
    states.append(new_state)
    state = new_state
  mean = lambda trees: jax.tree.map(lambda *x: sum(x) / len(x), *trees)  # noqa: E731
  updates, _ = tx.update(mean(grads), ts.opt_state, ts.params)
  final_state = state if groups[0][1] else mean(states)
  return jax.tree.map(jnp.add, ts.params, updates), final_state


@pytest.mark.slow
def test_per_device_batch_norm_normalises_each_device_with_its_own_statistics(data_dir):
  cfg = _config(data_dir, sync_batch_norm=False)
  model = build_model(cfg.model, 5)
  batch = _batch(cfg)
  shards = [(np.arange(d * B // D, (d + 1) * B // D), False) for d in range(D)]
  ref_params, ref_state = _reference(model, cfg, batch, shards)
  ts, _ = _train_step(model, cfg, batch)
  _close(ts.params, ref_params)
  _close(ts.model_state, ref_state)
  ts_sync, _ = _train_step(model, _config(data_dir), batch)   # synchronised BN: another step
  differs = jax.tree.map(lambda a, b: not np.allclose(a, b, atol=1e-4), ts_sync.params, ref_params)
  assert any(jax.tree.leaves(differs))


def test_accumulation_with_batch_norm_uses_per_micro_batch_statistics(data_dir):
  k = 2
  cfg = _config(data_dir, accum_steps=k)
  model = build_model(cfg.model, 5)
  batch = _batch(cfg)
  m = B // (D * k)   # micro-batch j: the j-th slice of m rows of every device's B / D rows
  micro = [(np.concatenate([np.arange(d * B // D + j * m, d * B // D + (j + 1) * m) for d in range(D)]), True)
           for j in range(k)]
  ref_params, ref_state = _reference(model, cfg, batch, micro)
  ts, _ = _train_step(model, cfg, batch)
  _close(ts.params, ref_params)
  _close(ts.model_state, ref_state)


def test_bad_accumulation_is_an_error_before_compiling(data_dir):
  with pytest.raises(ValueError, match="multiple of accum_steps x devices = 32"):
    trainer.setup(_config(data_dir, accum_steps=8))


@pytest.mark.parametrize("name,extra", [   # ResNet2D-frame wraps its blocks the same way (layers.remat_block)
    ("resnet3d", {}),
    pytest.param("u2s", {"depth": 18, "width": 4, "csm_warmup_steps": 0}, marks=pytest.mark.slow)])
def test_remat_changes_nothing_but_memory(data_dir, name, extra):
  cfg = _config(data_dir)
  cfg.model.update(name=name, **extra)
  cfg.loss.name = "u2s" if name == "u2s" else "classification"
  if name == "u2s":
    cfg.input.update(sampler="segments", num_segments=2, crop=32)
  batch = _batch(cfg)
  grads = {}
  for remat in (False, True):
    cfg.model.remat = remat
    model = build_model(cfg.model, 5)
    tx, _ = optim.make_optimizer(cfg.optimizer, 100)
    ts = trainer.init_state(model, tx, cfg, jax.random.key(0))
    step = trainer.make_train_step(model, tx, losses.LOSSES.get(cfg.loss.name), cfg.loss,
                                   optim.make_schedule(cfg.optimizer, 100), jax.random.key(1))
    grads[remat] = jax.jit(step)(ts, batch)
  _close(grads[True], grads[False], tol=1e-6)


@pytest.mark.slow
def test_remat_lowers_the_compiled_step_memory(tmp_path):
  """XLA's buffer assignment of a ResNet3D train step (vidrec.tools.memory, no compute)."""
  out = tmp_path / "rows.jsonl"
  cmd = [sys.executable, "-m", "vidrec.tools.memory", "--config", "configs/resnet3d_ucf101.py:synthetic",
         "--config.model.width=8", "--config.model.num_stages=2", "--config.input.clip_len=4",
         "--config.input.crop=32", "--per_device_batch=4", "--variants=fp32,fp32+remat,bf16", f"--json={out}"]
  env = {**os.environ, "PYTHONPATH": ROOT}
  env.pop("JAX_NUM_CPU_DEVICES", None)
  proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  rows = {r["variant"]: r for r in map(json.loads, out.read_text().splitlines())}
  assert rows["fp32+remat"]["params"] == rows["fp32"]["params"]
  assert rows["fp32+remat"]["temp_bytes"] < 0.8 * rows["fp32"]["temp_bytes"]
  assert rows["bf16"]["state_bytes"] == rows["fp32"]["state_bytes"]   # float32 parameters either way


def test_auto_dtype_is_float32_on_cpu():
  assert jax.default_backend() == "cpu" and dtype_of("auto") == jnp.float32
  assert dtype_of("bfloat16") == jnp.bfloat16


def test_tensorflow_is_kept_off_the_gpus(monkeypatch):
  """Importing vidrec.data hides every GPU from TensorFlow (here with a simulated GPU)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from vidrec import data  # pylint: disable=g-import-not-at-top
  hidden = []
  monkeypatch.setattr(tf.config, "list_physical_devices",
                      lambda kind=None: ["GPU:0"] if kind == "GPU" else [])
  monkeypatch.setattr(tf.config, "set_visible_devices",
                      lambda devices, kind=None: hidden.append((devices, kind)))
  data.hide_gpus_from_tensorflow()
  assert hidden == [([], "GPU")]
  monkeypatch.undo()
  assert tf.config.get_visible_devices("GPU") == []
