"""Input-pipeline throughput: python -m vidrec.tools.throughput --data_dir D [--num_videos 64] [--seconds 8].

Measures clips/s of the training input pipeline (``vidrec.data.pipeline.train_dataset``: read one
record by index, sample frame indices, decode only those JPEGs, crop of the resized frames, flip, uint8
batch)
for the two standard inputs:

  (a) ``dense``:    16 x 112 x 112 dense clips from 128-short-side JPEGs (configs/resnet3d_ucf101.py:
                    resize 128x171, random 112 crop, flip);
  (b) ``segments``: 8 segments x 224 x 224 from 256-short-side JPEGs (configs/u2s_sthv2.py: short
                    side jittered in [224, 340], random 224 crop).

Each is measured on one core (the process pinned to one CPU with ``sched_setaffinity`` and tf.data's
``private_threadpool_size=1``, ``max_intra_op_parallelism=1``) and with the defaults on all the cores
this process may use. Reported per case: ``clips_per_sec`` (wall clock), ``clips_per_cpu_sec`` (clips
per second of CPU time the process used: the per-core rate, and less sensitive to other processes
competing for the core than the wall-clock rate), the machine's load average, and for the pinned case
``per_core``: ``clips_per_sec`` there.

Data: without ``--dataset_s128/--dataset_s256`` the command makes its own stand-in, once, in D:
``--num_videos`` 4:3 320x240 MPEG-4 AVI videos (UCF101's format) of 3-10 s at 25 fps whose frames look
roughly natural (a textured scene panned by the camera, smooth lighting gradients, textured objects
moving across it, sensor noise), prepared as ``video_folder/throughput_s128`` and
``video_folder/throughput_s256`` (``--short_side`` 128 and 256). Pass prepared real datasets instead
with e.g. ``--dataset_s128 ucf101/split1 --dataset_s256 ucf101/split1_s256``.

Prints one JSON line (also written to ``D/throughput.json``); docs/throughput.md has measured figures.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from typing import Any

import numpy as np

from vidrec import cli
from vidrec.tools.throughput_standin import make_standin

# The two inputs of the issue, as in the configs that use them.
INPUTS: dict[str, dict[str, Any]] = {
    "dense": dict(sampler="dense", clip_len=16, stride=1, num_test_clips=0, resize=(128, 171),
                  scale_jitter=(0, 0), crop=112, flip=True),
    "segments": dict(sampler="segments", num_segments=8, frames_per_segment=1, resize=(256,),
                     scale_jitter=(224, 340), crop=224, flip=False),
}
CASES = {  # name -> (input, short side of the stored JPEGs)
    "a_dense16x112_s128": ("dense", 128),
    "b_segments8x224_s256": ("segments", 256),
}


# One measurement (run in a child process so that CPU pinning and TF's thread pools start clean).


def measure(spec: dict) -> dict:
  """Times one pipeline (``spec``: dataset, data_dir, input, one_core, seconds, batch)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if spec["one_core"]:  # (the process is pinned to one CPU; inter-op 1 can deadlock py_funcs)
    tf.config.threading.set_intra_op_parallelism_threads(1)
  tf.config.set_visible_devices([], "GPU")
  from vidrec.config import base_config  # pylint: disable=g-import-not-at-top
  from vidrec.data import datasets, pipeline  # pylint: disable=g-import-not-at-top

  cfg = base_config().input
  cfg.update(INPUTS[spec["input"]])
  builder = datasets.load_builder(spec["dataset"], spec["data_dir"])
  source = pipeline.VideoSource(builder, "train")
  batch = spec["batch"]
  ds = pipeline.train_dataset(source, cfg, global_batch=batch, seed=0)
  if spec["one_core"]:
    options = tf.data.Options()
    options.threading.private_threadpool_size = 1
    options.threading.max_intra_op_parallelism = 1
    ds = ds.with_options(options)
  it = ds.as_numpy_iterator()
  shape = None
  for _ in range(2):                                    # warm-up: tracing, first reads, autotune
    shape = next(it)["video"].shape
  t0, c0, batches = time.perf_counter(), os.times(), 0
  while batches < 3 or time.perf_counter() - t0 < spec["seconds"]:
    next(it)
    batches += 1
  wall, c1 = time.perf_counter() - t0, os.times()
  cpu = (c1.user - c0.user) + (c1.system - c0.system)
  clips = batches * batch
  return {"clips": clips, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
          "clips_per_sec": round(clips / wall, 1), "clips_per_cpu_sec": round(clips / cpu, 1),
          "batch_shape": list(shape), "loadavg_1min": round(os.getloadavg()[0], 2),
          "cpus": len(os.sched_getaffinity(0))}


def _run_child(spec: dict, cpu: int | None) -> dict:
  """Runs ``measure(spec)`` in a fresh interpreter, pinned to ``cpu`` if given."""
  env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
  preexec = (lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None
  proc = subprocess.run([sys.executable, "-m", "vidrec.tools.throughput", "--measure_json",
                         json.dumps(spec)], env=env, preexec_fn=preexec, capture_output=True,
                        text=True, check=False)
  if proc.returncode != 0:
    raise RuntimeError(f"measurement {spec} failed:\n{proc.stderr[-4000:]}")
  return json.loads(proc.stdout.strip().splitlines()[-1])


def _dataset_stats(name: str, data_dir: str) -> dict:
  """Videos, mean frames per video, stored frame size and mean record bytes per frame."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from vidrec.data import datasets, pipeline  # pylint: disable=g-import-not-at-top
  source = pipeline.VideoSource(datasets.load_builder(name, data_dir), "train")
  frames, nbytes = [], []
  for i in range(min(len(source), 64)):
    raw = source.read(np.int64(i))
    frames.append(int(source.parse(raw)["num_frames"]))
    nbytes.append(len(raw) / frames[-1])
  first = source.parse(source.read(np.int64(0)))["video"][0]
  return {"videos": len(source), "mean_frames": round(float(np.mean(frames)), 1),
          "frame_hw": list(tf.io.decode_jpeg(first).shape[:2]),
          "mean_record_bytes_per_frame": int(np.mean(nbytes))}


def run(args) -> dict:
  data_dir = os.path.abspath(args.data_dir)
  names = {128: args.dataset_s128, 256: args.dataset_s256}
  if not all(names.values()):
    made = make_standin(data_dir, args.num_videos, args.workers)
    names = {side: names[side] or made[side] for side in names}
  cpus = sorted(os.sched_getaffinity(0))
  result: dict[str, Any] = {
      "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
      "cpus": len(cpus), "loadavg_1min_start": round(os.getloadavg()[0], 2),
      "batch": args.batch, "seconds_per_measurement": args.seconds, "datasets": {}}
  for side, name in names.items():
    result["datasets"][name] = _dataset_stats(name, data_dir)
  for case, (inp, side) in CASES.items():
    if args.cases and case[0] not in args.cases:
      continue
    spec = {"dataset": names[side], "data_dir": data_dir, "input": inp, "batch": args.batch,
            "seconds": args.seconds}
    one = _run_child({**spec, "one_core": True}, cpus[-1])
    entry = {"one_core": one, "per_core_clips_per_sec": one["clips_per_sec"],
             "per_core_clips_per_cpu_sec": one["clips_per_cpu_sec"]}
    if not args.one_core_only:
      entry["all_cores"] = _run_child({**spec, "one_core": False}, None)
    result[case] = entry
    print(f"{case}: {entry['per_core_clips_per_sec']} clips/s on one core, "
          f"{entry['per_core_clips_per_cpu_sec']} clips per CPU-second"
          + (f", {entry['all_cores']['clips_per_sec']} clips/s on {len(cpus)} cores"
             if "all_cores" in entry else ""), file=sys.stderr, flush=True)
  result["loadavg_1min_end"] = round(os.getloadavg()[0], 2)
  with open(os.path.join(data_dir, "throughput.json"), "w") as f:
    json.dump(result, f, indent=1)
  return result


def _parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(prog="python -m vidrec.tools.throughput",
                              description=__doc__.split("\n\n")[0])
  p.add_argument("--data_dir", help="where the stand-in data is made (or prepared datasets live)")
  p.add_argument("--dataset_s128", default=None, help="prepared dataset at S=128 for (a)")
  p.add_argument("--dataset_s256", default=None, help="prepared dataset at S=256 for (b)")
  p.add_argument("--num_videos", type=int, default=64, help="stand-in videos to make")
  p.add_argument("--workers", type=int, default=None, help="processes preparing the stand-in")
  p.add_argument("--batch", type=int, default=16, help="clips per batch")
  p.add_argument("--seconds", type=float, default=8.0, help="timed seconds per measurement")
  p.add_argument("--cases", default="ab", help="which of (a), (b) to measure: a, b or ab")
  p.add_argument("--one_core_only", action="store_true", help="skip the all-cores runs")
  p.add_argument("--measure_json", default=None, help=argparse.SUPPRESS)
  return p


@cli.returns_status
def main(argv=None) -> int:
  args = _parser().parse_args(argv)
  if args.measure_json:
    print(json.dumps(measure(json.loads(args.measure_json))), flush=True)
    return 0
  if not args.data_dir:
    _parser().error("--data_dir is required")
  print(json.dumps(run(args)), flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
