"""Benchmark: python -m vidrec.tools.bench --config configs/<model>_<dataset>.py[:variant] [--steps 20].

After compilation, measures train-step clips/s, eval (forward) clips/s, input-pipeline clips/s alone
(training pipeline, and the test-view pipeline), XLA's FLOPs per clip (cost analysis of the step with
``native`` convolutions, so that every convolution path is credited the same work: custom calls count
zero and im2col adds would count extra), the achieved GFLOP/s (those FLOPs / step time) and peak
memory; prints one JSON line. ``$VIDREC_CONV3D`` picks the
convolution path (``vidrec.models.layers.conv3d_impl``). Numbers are measured here and never asserted by tests.
"""
from __future__ import annotations

import dataclasses
import json
import resource
import time
from typing import Any, Callable

import jax
import numpy as np
from absl import flags
from ml_collections import config_flags

from vidrec import cli, losses, parallel, trainer
from vidrec.data import modalities, pipeline
from vidrec.models import layers


def _timed(fn, steps: int) -> float:
  """Seconds per call of ``fn`` (which must block) after one warm-up call."""
  fn()
  t = time.perf_counter()
  for _ in range(steps):
    fn()
  return (time.perf_counter() - t) / steps


def native_flops(fn, *args) -> float | None:
  """XLA's FLOP count of ``fn(*args)`` traced with native convolutions (lowered, not compiled). A fresh
  function, so that jit's trace cache cannot hand back a trace of ``fn`` made with another conv path."""
  with layers.using_conv_impl("native"):
    cost = jax.jit(lambda *a: fn(*a)).lower(*args).cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost["flops"]) if cost and "flops" in cost else None


@dataclasses.dataclass
class TrainStep:
  """A compiled train step with its state and one random batch (``train_step``)."""
  state: trainer.TrainState
  batch: dict
  fn: Callable              # the uncompiled step, (state, batch) -> (state, metrics)
  compiled: Any             # jax's Compiled: cost_analysis(), memory_analysis()
  compile_s: float

  def seconds(self, steps: int) -> float:
    """Seconds per step over ``steps`` steps after one warm-up (the state advances)."""
    def once():
      self.state, m = self.compiled(self.state, self.batch)
      jax.block_until_ready(m["loss"])
    return _timed(once, steps)


def train_step(config, model, tx, schedule, num_classes: int, mesh, batch_size: int) -> TrainStep:
  """Initial state, a random uint8 batch of ``batch_size`` clips (as the input pipeline ships them) and
  the compiled, state-donating train step of ``config`` on ``mesh`` (the trainer's step: on-device input
  normalisation, loss, memory levers)."""
  repl, sharded = parallel.replicated(mesh), parallel.data_sharded(mesh)
  ts = trainer.initial_state(model, tx, config, jax.random.key(0), repl)
  rng = np.random.default_rng(0)
  batch = {"video": rng.integers(0, 256, trainer.input_shape(config, batch_size), np.uint8),   # as shipped
           "label": rng.integers(0, num_classes, batch_size).astype(np.int32)}
  batch = jax.device_put(batch, sharded)
  step_fn = trainer.make_train_step(model, tx, losses.LOSSES.get(config.loss.name), config.loss,
                                    schedule, jax.random.key(1), config, mesh)
  t = time.perf_counter()
  compiled = jax.jit(step_fn, in_shardings=(repl, sharded), out_shardings=(repl, repl),
                     donate_argnums=0).lower(ts, batch).compile()
  return TrainStep(ts, batch, step_fn, compiled, time.perf_counter() - t)


def run(config, steps: int, input_batches: int) -> dict:
  s = trainer.setup(config)
  batch_size = config.batch_size
  step = train_step(config, s.model, s.tx, s.schedule, s.num_classes, s.mesh, batch_size)
  batch = step.batch
  train_flops = native_flops(step.fn, step.state, batch)
  train_sec = step.seconds(steps)
  forward_fn = lambda v, x: s.model.apply(v, modalities.model_input(x, config.input), train=False)["logits"]
  forward = jax.jit(forward_fn)
  variables = trainer.variables_of(step.state)
  compiled_fwd = forward.lower(variables, batch["video"]).compile()
  fwd_flops = native_flops(forward_fn, variables, batch["video"])
  eval_sec = _timed(lambda: jax.block_until_ready(compiled_fwd(variables, batch["video"])), steps)

  source = pipeline.VideoSource(s.builder, config.dataset.train_split)
  it = pipeline.train_dataset(source, config.input, global_batch=batch_size, seed=0).as_numpy_iterator()
  input_sec = _timed(lambda: next(it), input_batches)
  test_source = pipeline.VideoSource(s.builder, config.dataset.eval_split)
  test_it = pipeline.eval_dataset(test_source, config.input, global_batch=batch_size).repeat().as_numpy_iterator()
  test_input_sec = _timed(lambda: next(test_it), input_batches)

  device = jax.devices()[0]
  stats = device.memory_stats() or {}
  return {
      "model": config.model.name, "dataset": config.dataset.name, "batch_size": batch_size,
      "input_shape": list(trainer.input_shape(config, batch_size)), "devices": jax.device_count(),
      "platform": device.platform, "dtype": config.model.dtype,
      "train_clips_per_sec": batch_size / train_sec, "eval_clips_per_sec": batch_size / eval_sec,
      "input_clips_per_sec": batch_size / input_sec, "test_input_views_per_sec": batch_size / test_input_sec,
      "train_gflops_per_clip": train_flops / batch_size / 1e9 if train_flops else None,
      "forward_gflops_per_clip": fwd_flops / batch_size / 1e9 if fwd_flops else None,
      "train_gflops_per_sec": train_flops / train_sec / 1e9 if train_flops else None,
      "eval_gflops_per_sec": fwd_flops / eval_sec / 1e9 if fwd_flops else None,
      "conv_impl": layers.conv3d_impl(),
      "peak_device_memory_mb": stats.get("peak_bytes_in_use", 0) / 2**20 or None,
      "peak_host_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
  }


def main(argv):
  del argv
  print(json.dumps(run(flags.FLAGS.config, flags.FLAGS.steps, flags.FLAGS.input_batches)))


if __name__ == "__main__":
  # Flags are defined only when run as a program: gpu_report imports this module beside other tools.
  config_flags.DEFINE_config_file("config", None, "Config file.", lock_config=True)
  flags.DEFINE_integer("steps", 20, "Timed steps per measurement (after one warm-up).")
  flags.DEFINE_integer("input_batches", 20, "Timed input-pipeline batches.")
  flags.mark_flags_as_required(["config"])
  cli.run(main)
