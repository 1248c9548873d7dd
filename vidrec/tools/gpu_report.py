"""Every GPU figure from one device run (issue 30): python -m vidrec.tools.gpu_report --out DIR
    [--budget_s 480] [--models sgn,joint_lstm,atw,u2s,fstcn,resnet3d] [--dtypes bfloat16,float32]
    [--steps 5] [--peak_tflops X] [--toy]

On one device, for each paper model at its paper input size (the real-data config in ``MODELS``; no
dataset needed: the batch is random) and each dtype, the trainer's train step (``bench.train_step``) is
compiled and timed: seconds per step (mean of ``--steps`` after one warm-up), clips/s, the step's FLOPs
from XLA's cost analysis of the compiled step, MFU = FLOPs / step time / the device's dense peak
(``PEAK_TFLOPS`` by device kind, or ``--peak_tflops``; the peak assumed is written beside it; float32
also against the TF32 tensor-core peak, which XLA's default precision uses for float32 matmuls and
convolutions on NVIDIA GPUs since Ampere), XLA's peak-memory estimate of the step (arguments + outputs
- aliased + temporaries, as ``vidrec.tools.memory``) and the device's ``memory_stats()`` peak so far in
this process where the backend has one. The batch is the config's; one whose estimate exceeds the
device's memory is scaled down to 85% of it (at most halved), one that fails out of memory halved,
until one fits (the misses are recorded).
Before the models: the input pipeline's clips/s on one host core (``vidrec.tools.throughput`` on its
stand-in videos, both standard inputs) and TV-L1 pairs/s of ``vidrec.data.flow_jax`` at 8 x 256 x 340
(a note where that module is absent).

``--budget_s`` (default 480) bounds the run: a measurement that the time left cannot hold (estimated as
the longest model measurement so far; ``HOST_ESTIMATE_S`` for the host ones, which run first) is
skipped and listed.
``--toy`` runs the same code on each config's ``:synthetic`` variant at batch 2, with 2 stand-in videos
and 32 x 32 flow pairs (tests/test_gpu_report.py). Writes ``DIR/gpu_report.json`` and
``DIR/gpu_report.md`` (the table for docs/performance.md) and prints the table.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
from typing import Any, Callable

import jax
import ml_collections
import numpy as np
from jax.sharding import Mesh

from vidrec import cli, optim, parallel, trainer
from vidrec.data import synthetic
from vidrec.errors import UserError
from vidrec.models import build_model
from vidrec.tools import bench

# name -> (config module, its argument, the paper dataset's classes)
MODELS = {
    "sgn": ("configs.sgn_ucf101", "", 101),
    "joint_lstm": ("configs.joint_lstm_ucf101", "", 101),
    "atw": ("configs.atw_ucf101", "rgb", 101),
    "u2s": ("configs.u2s_sthv2", "online", 174),   # a fixed N of confusing classes (not the staged top-N)
    "fstcn": ("configs.fstcn_ucf101", "", 101),
    "resnet3d": ("configs.resnet3d_ucf101", "", 101),
}
DTYPES = ("bfloat16", "float32")
# Dense peak TFLOP/s by device kind (the first key contained in ``device_kind`` wins): bfloat16 tensor
# cores, float32 vector units, TF32 tensor cores (NVIDIA's data sheets; H200 = H100 SXM's compute).
PEAK_TFLOPS = {
    "H100 PCIe": {"bfloat16": 756.0, "float32": 51.2, "tf32": 378.0},
    "H100": {"bfloat16": 989.4, "float32": 66.9, "tf32": 494.7},
    "H200": {"bfloat16": 989.4, "float32": 66.9, "tf32": 494.7},
    "A100": {"bfloat16": 312.0, "float32": 19.5, "tf32": 156.0},
    "TPU v4": {"bfloat16": 275.0},
    "TPU v5 lite": {"bfloat16": 197.0},
    "TPU v5": {"bfloat16": 459.0},
}
HOST_ESTIMATE_S = {"input_pipeline": 90.0, "tvl1": 30.0}
SIZES = {  # stand-in videos, timed seconds per pipeline measurement, TV-L1 pairs [B, H, W]
    "full": {"videos": 8, "input_seconds": 3.0, "flow_pairs": (8, 256, 340)},
    "toy": {"videos": 2, "input_seconds": 0.2, "flow_pairs": (2, 32, 32)},
}
TOY_BATCH = 2


def peak_tflops(device_kind: str, override: float | None = None) -> dict[str, float]:
  """The peaks assumed for ``device_kind`` ({} where unknown); ``override`` stands for every dtype."""
  if override:
    return {dtype: override for dtype in DTYPES}
  return next((dict(v) for k, v in PEAK_TFLOPS.items() if k in device_kind), {})


def model_config(name: str, dtype: str, toy: bool) -> tuple[ml_collections.ConfigDict, int]:
  """The model's paper config (``toy``: its ``:synthetic`` variant at batch 2) in ``dtype``, and its classes."""
  module, arg, classes = MODELS[name]
  try:
    get_config = importlib.import_module(module).get_config
  except ModuleNotFoundError as e:
    raise UserError(f"{e}: run gpu_report from the repository root (it reads configs/)") from e
  config = get_config(",".join(filter(None, [arg, "synthetic" if toy else ""])))
  config.model.dtype = dtype
  if toy:
    config.batch_size, classes = TOY_BATCH, synthetic.NUM_CLASSES
  return config, classes


def _xla_peak_bytes(compiled) -> int:
  m = compiled.memory_analysis()
  return m.argument_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes + m.temp_size_in_bytes


class _OverMemory(MemoryError):
  """XLA's estimate of a step exceeds the device's memory; ``fits`` is the batch that scales under 85%."""

  def __init__(self, estimate: int, limit: int, batch: int):
    super().__init__(f"XLA's estimate {estimate / 2**30:.1f} GiB exceeds the device's {limit / 2**30:.1f} GiB")
    self.fits = int(batch * 0.85 * limit / estimate)


def _smaller_batch(e: Exception, batch: int) -> int | None:
  """The next batch to try after ``e`` at ``batch``: None unless ``e`` is out-of-memory and batch > 1."""
  if batch == 1 or not (isinstance(e, MemoryError) or "RESOURCE_EXHAUSTED" in str(e)):
    return None
  return max(1, min(batch // 2, getattr(e, "fits", batch)))


def measure_model(name: str, dtype: str, toy: bool, steps: int, peaks: dict[str, float]) -> dict:
  """One row: the train step of ``name`` in ``dtype`` on one device, at the largest fitting batch."""
  config, classes = model_config(name, dtype, toy)
  device = jax.devices()[0]
  mesh = Mesh(np.array([device]), (parallel.DATA,))
  model = build_model(config.model, classes)
  tx, schedule = optim.make_optimizer(config.optimizer, config.num_train_steps)
  batch, misses = config.batch_size, []
  while True:
    try:
      step = bench.train_step(config, model, tx, schedule, classes, mesh, batch)
      limit = (device.memory_stats() or {}).get("bytes_limit")
      if limit and _xla_peak_bytes(step.compiled) > limit:
        raise _OverMemory(_xla_peak_bytes(step.compiled), limit, batch)
      seconds = step.seconds(steps)
      break
    except Exception as e:  # pylint: disable=broad-except   (only out-of-memory is retried)
      smaller = _smaller_batch(e, batch)
      if smaller is None:
        raise
      misses.append(batch)
      batch = smaller
  cost = step.compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  tflop = float((cost or {}).get("flops", 0.0)) / 1e12
  tflops = tflop / seconds
  row = {"model": name, "dtype": dtype, "clip": list(trainer.input_shape(config, 1)[1:]), "batch": batch,
         "batches_out_of_memory": misses, "step_s": seconds, "clips_per_s": batch / seconds,
         "compile_s": step.compile_s, "tflop_per_step": tflop, "tflops": tflops,
         "peak_tflops": peaks.get(dtype), "mfu": tflops / peaks[dtype] if peaks.get(dtype) else None,
         "xla_peak_gib": _xla_peak_bytes(step.compiled) / 2**30,
         "device_peak_gib_so_far": (device.memory_stats() or {}).get("peak_bytes_in_use", 0) / 2**30 or None}
  if dtype == "float32" and peaks.get("tf32"):
    row["mfu_tf32"] = tflops / peaks["tf32"]
  return row


def measure_input_pipeline(out: str, size: dict) -> dict:
  """Clips/s of the two standard inputs on one host core (``vidrec.tools.throughput``, stand-in videos)."""
  from vidrec.tools import throughput  # pylint: disable=g-import-not-at-top
  args = throughput._parser().parse_args([  # pylint: disable=protected-access
      "--data_dir", os.path.join(out, "throughput"), "--num_videos", str(size["videos"]),
      "--seconds", str(size["input_seconds"]), "--batch", "4", "--one_core_only"])
  result = throughput.run(args)
  return {case: result[case]["per_core_clips_per_sec"] for case in throughput.CASES}


def measure_tvl1(size: dict) -> dict:
  """TV-L1 pairs/s of ``vidrec.data.flow_jax`` (OpenCV's defaults) on random uint8 pairs."""
  try:
    from vidrec.data import flow_jax  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    return {"note": f"skipped: vidrec.data.flow_jax is not importable ({e})"}
  b, h, w = size["flow_pairs"]
  rng = np.random.default_rng(0)
  prev, nxt = (jax.device_put(rng.integers(0, 256, (b, h, w), np.uint8)) for _ in range(2))
  t = time.perf_counter()
  jax.block_until_ready(flow_jax.tvl1(prev, nxt))       # compile + warm-up
  compile_s = time.perf_counter() - t
  t = time.perf_counter()
  jax.block_until_ready(flow_jax.tvl1(prev, nxt))
  return {"pairs": [b, h, w], "pairs_per_s": b / (time.perf_counter() - t), "first_call_s": compile_s}


class Budget:
  """Runs measurements while the time left (of ``seconds`` from creation) can hold their estimate."""

  def __init__(self, seconds: float, clock: Callable[[], float] = time.perf_counter):
    self.seconds, self.clock, self.start = seconds, clock, clock()
    self.skipped: list[str] = []

  def left(self) -> float:
    return self.seconds - (self.clock() - self.start)

  def run(self, name: str, estimate_s: float, fn: Callable[[], Any]) -> Any:
    """``fn()``, or None (``name`` listed in ``skipped``) when ``estimate_s`` exceeds the time left."""
    if estimate_s > self.left():
      self.skipped.append(name)
      return None
    return fn()


def markdown(report: dict) -> str:
  """The models table and the host figures, for docs/performance.md."""
  lines = [f"Device: {report['device_kind']} ({report['platform']}), jax {report['jax']}, "
           f"peak TFLOP/s assumed {report['peak_tflops'] or 'unknown (MFU not computed)'}"
           + (" (toy sizes)" if report["toy"] else ""), "",
           "| model | clip | batch | dtype | step (s) | clips/s | TFLOP/step | TFLOP/s | MFU | XLA peak GiB | compile (s) |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
  for r in report["models"]:
    mfu = "-" if r["mfu"] is None else f"{100 * r['mfu']:.1f}% of {r['peak_tflops']:g}"
    if r.get("mfu_tf32") is not None:
      mfu += f" ({100 * r['mfu_tf32']:.1f}% of TF32)"
    batch = f"{r['batch']}" + (f" (not {', '.join(map(str, r['batches_out_of_memory']))})"
                               if r["batches_out_of_memory"] else "")
    lines.append(f"| {r['model']} | {'x'.join(map(str, r['clip']))} | {batch} | {r['dtype']} | {r['step_s']:.4f} | "
                 f"{r['clips_per_s']:.1f} | {r['tflop_per_step']:.3f} | {r['tflops']:.2f} | {mfu} | "
                 f"{r['xla_peak_gib']:.2f} | {r['compile_s']:.1f} |")
  if report.get("input_pipeline"):
    lines += ["", "Input pipeline, clips/s on one host core: " + ", ".join(
        f"{k} {v}" for k, v in report["input_pipeline"].items())]
  if report.get("tvl1"):
    tv = report["tvl1"]
    lines += ["", "TV-L1 (vidrec.data.flow_jax): " + (tv["note"] if "note" in tv else
                                                    f"{tv['pairs_per_s']:.1f} pairs/s at {tv['pairs']}")]
  if report["skipped"]:
    lines += ["", f"Skipped (over the {report['budget_s']:g} s budget): {', '.join(report['skipped'])}"]
  return "\n".join(lines) + "\n"


def run(out: str, models: list[str], dtypes: list[str], steps: int, budget_s: float, toy: bool,
        peak_override: float | None = None) -> dict:
  unknown = [m for m in models if m not in MODELS] + [d for d in dtypes if d not in DTYPES]
  if unknown:
    raise UserError(f"unknown {unknown}: --models takes some of {','.join(MODELS)}, --dtypes some of "
                     f"{','.join(DTYPES)}")
  os.makedirs(out, exist_ok=True)
  device = jax.devices()[0]
  peaks = peak_tflops(device.device_kind, peak_override)
  budget = Budget(budget_s)
  size = SIZES["toy" if toy else "full"]
  report: dict[str, Any] = {"device_kind": device.device_kind, "platform": device.platform, "jax": jax.__version__,
                            "host": platform.processor() or platform.machine(), "toy": toy, "budget_s": budget_s,
                            "peak_tflops": peaks, "models": []}
  estimate = lambda k: 0.0 if toy else HOST_ESTIMATE_S[k]  # noqa: E731
  report["input_pipeline"] = budget.run("input_pipeline", estimate("input_pipeline"),
                                        lambda: measure_input_pipeline(out, size))
  report["tvl1"] = budget.run("tvl1", estimate("tvl1"), lambda: measure_tvl1(size))
  longest = 0.0
  for name in models:
    for dtype in dtypes:
      t = time.perf_counter()
      row = budget.run(f"{name} {dtype}", longest, lambda: measure_model(name, dtype, toy, steps, peaks))
      if row:
        report["models"].append(row)
        longest = max(longest, time.perf_counter() - t)
        print(json.dumps(row), file=sys.stderr, flush=True)
  report["skipped"], report["wall_s"] = budget.skipped, budget_s - budget.left()
  with open(os.path.join(out, "gpu_report.json"), "w") as f:
    json.dump(report, f, indent=1)
  with open(os.path.join(out, "gpu_report.md"), "w") as f:
    f.write(markdown(report))
  return report


def _parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(prog="python -m vidrec.tools.gpu_report", description=__doc__.split("\n\n")[0])
  p.add_argument("--out", required=True, help="folder for gpu_report.json / .md (and the stand-in videos)")
  p.add_argument("--models", default=",".join(MODELS), help=f"some of {','.join(MODELS)}")
  p.add_argument("--dtypes", default=",".join(DTYPES), help="bfloat16 and/or float32")
  p.add_argument("--steps", type=int, default=5, help="timed train steps per row (after one warm-up)")
  p.add_argument("--budget_s", type=float, default=480.0, help="wall-clock budget of the whole run")
  p.add_argument("--peak_tflops", type=float, default=None, help="the device's peak, for every dtype")
  p.add_argument("--toy", action="store_true", help="tiny sizes (the synthetic configs at batch 2)")
  return p


@cli.returns_status
def main(argv=None) -> int:
  args = _parser().parse_args(argv)
  report = run(args.out, args.models.split(","), args.dtypes.split(","), args.steps, args.budget_s, args.toy, args.peak_tflops)
  print(markdown(report), flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
