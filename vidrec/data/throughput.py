"""Input-pipeline throughput: python -m vidrec.data.throughput --data_dir D [--num_videos 64] [--seconds 8].

Measures clips/s of the training input pipeline (``vidrec.data.pipeline.train_dataset``: read one
record by index, sample frame indices, decode only those JPEGs, resize, crop, flip, normalise, batch)
for the two standard inputs:

  (a) ``dense``:    16 x 112 x 112 dense clips from 128-short-side JPEGs (configs/resnet3d_ucf101.py:
                    resize 128x171, random 112 crop, flip);
  (b) ``segments``: 8 segments x 224 x 224 from 256-short-side JPEGs (configs/u2s_sthv2.py: short
                    side jittered in [224, 340], random 224 crop);

and, for each, two variants of the per-example function (swapped into ``train_dataset``, so reading,
ordering and batching stay the same): ``decode_all``, every frame of the video decoded first and the
sampled frames picked afterwards (what reading a ``tfds.features.Video`` with its default decoder
costs), and ``proposed``, a prototype of the pipeline changes docs/throughput.md proposes.

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
from pathlib import Path
import platform
import subprocess
import sys
import time
from typing import Any

import numpy as np

from vidrec import cli

STANDIN_VIDEOS = "throughput_videos"
STANDIN_NAMES = {128: "throughput_s128", 256: "throughput_s256"}
STANDIN_CLASSES = 4

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


# ---------------------------------------------------------------------------------------------------
# Stand-in videos.


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
  """Low-frequency random field in [0, 1] (bilinear upsampling of a coarse random grid)."""
  gh, gw = cells, max(2, int(round(cells * w / h)))
  grid = rng.random((gh + 1, gw + 1)).astype(np.float32)
  ys, xs = np.linspace(0, gh, h, dtype=np.float32), np.linspace(0, gw, w, dtype=np.float32)
  y0, x0 = np.minimum(ys.astype(int), gh - 1), np.minimum(xs.astype(int), gw - 1)
  fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
  g = grid
  return ((1 - fy) * ((1 - fx) * g[y0][:, x0] + fx * g[y0][:, x0 + 1])
          + fy * ((1 - fx) * g[y0 + 1][:, x0] + fx * g[y0 + 1][:, x0 + 1]))


def standin_frames(num_frames: int, seed: int, h: int = 240, w: int = 320) -> np.ndarray:
  """uint8 [T, h, w, 3] frames that look roughly like a handheld video: a scene with structure at
  several scales (coarse colour regions, finer texture, a lighting gradient) panned by the camera,
  3 textured objects moving and bouncing across it, and per-frame sensor noise."""
  rng = np.random.default_rng(seed)
  pad = 64
  sh, sw = h + 2 * pad, w + 2 * pad
  scene = np.zeros((sh, sw, 3), np.float32)
  for cells, amp in ((3, 120.0), (12, 50.0), (48, 25.0)):
    for ch in range(3):
      scene[..., ch] += amp * (_smooth_noise(rng, sh, sw, cells) - 0.5)
  scene += rng.uniform(70, 170, 3).astype(np.float32)
  for _ in range(12):                                   # hard-edged background structures
    y, x = rng.integers(0, sh - 8), rng.integers(0, sw - 8)
    bh, bw = rng.integers(8, sh // 3), rng.integers(8, sw // 3)
    scene[y:y + bh, x:x + bw] = 0.5 * scene[y:y + bh, x:x + bw] + rng.uniform(0, 128, 3)
  yy, xx = np.mgrid[0:sh, 0:sw].astype(np.float32)
  angle = rng.uniform(0, 2 * np.pi)
  scene += 40.0 * ((np.cos(angle) * xx + np.sin(angle) * yy) / max(sh, sw) - 0.5)[..., None]
  pan = rng.uniform(-0.6, 0.6, 2)                      # camera drift, pixels per frame
  oy, ox = np.mgrid[0:h, 0:w].astype(np.float32)
  objects = []
  for _ in range(3):
    objects.append(dict(
        pos=rng.uniform([0.2 * h, 0.2 * w], [0.8 * h, 0.8 * w]), vel=rng.uniform(-3, 3, 2),
        radii=rng.uniform([12, 16], [40, 56]), colour=rng.uniform(20, 235, 3).astype(np.float32),
        freq=rng.uniform(0.15, 0.6), phase=rng.uniform(0, 2 * np.pi)))
  out = np.empty((num_frames, h, w, 3), np.uint8)
  for t in range(num_frames):
    y0 = int(np.clip(pad + pan[0] * t, 0, 2 * pad)); x0 = int(np.clip(pad + pan[1] * t, 0, 2 * pad))
    frame = scene[y0:y0 + h, x0:x0 + w].copy()
    frame *= 1.0 + 0.05 * np.sin(0.07 * t + angle)      # slow exposure change
    for o in objects:
      o["pos"] += o["vel"]
      for k, size in enumerate((h, w)):
        if not 0 <= o["pos"][k] < size:
          o["vel"][k] *= -1
          o["pos"][k] = np.clip(o["pos"][k], 0, size - 1)
      dy, dx = (oy - o["pos"][0]) / o["radii"][0], (ox - o["pos"][1]) / o["radii"][1]
      inside = (dy * dy + dx * dx) < 1.0
      stripes = 0.75 + 0.25 * np.sin(o["freq"] * (ox + 0.5 * oy) + o["phase"] + 0.2 * t)
      frame[inside] = (o["colour"] * stripes[inside][:, None])
    frame += rng.normal(0.0, 3.0, frame.shape).astype(np.float32)
    out[t] = np.clip(frame, 0, 255).astype(np.uint8)
  return out


def write_standin_video(path: Path, num_frames: int, seed: int, fps: int = 25) -> None:
  import av  # pylint: disable=g-import-not-at-top
  path.parent.mkdir(parents=True, exist_ok=True)
  with av.open(str(path), mode="w") as container:
    stream = container.add_stream("mpeg4", rate=fps)
    stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
    stream.bit_rate = 1_000_000
    for frame in standin_frames(num_frames, seed):
      for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
        container.mux(packet)
    for packet in stream.encode():
      container.mux(packet)


def make_standin(data_dir: str, num_videos: int, workers: int | None) -> dict[int, str]:
  """Writes the stand-in videos (once) and prepares them at S=128 and S=256 (once each);
  returns {short side: dataset name}."""
  from vidrec.data import prepare  # pylint: disable=g-import-not-at-top
  root = Path(data_dir) / STANDIN_VIDEOS
  rng = np.random.default_rng(0)
  lengths = rng.integers(75, 251, num_videos)            # 3-10 s at 25 fps
  for i, n in enumerate(lengths):
    path = root / f"class{i % STANDIN_CLASSES}" / f"video{i:04d}.avi"
    if not path.exists():
      write_standin_video(path, int(n), seed=i)
  names = {}
  for side, name in STANDIN_NAMES.items():
    summary = prepare.prepare("video_folder", str(root), data_dir=data_dir, name=name,
                              short_side=side, train_ratio=1.0, workers=workers)
    if summary["written"].get("train") != num_videos:
      raise RuntimeError(f"{name} holds {summary['written']} videos, expected {num_videos} in train "
                         f"(delete {data_dir}/video_folder/{name} and {root} to rebuild).")
    names[side] = f"video_folder/{name}"
  return names


# ---------------------------------------------------------------------------------------------------
# One measurement (run in a child process so that CPU pinning and TF's thread pools start clean).


# The per-example functions compared. ``sampled`` is pipeline._train_example itself; the others
# replace it inside pipeline.train_dataset (same reading, ordering, batching and prefetching), in
# the measuring child process only.


def decode_all_example(raw, position, source, sampler, cfg, seed):
  """Baseline: the record deserialised with the Video feature's default decoder (every frame
  decoded), then the sampled frames picked; then ``pipeline.augment_train`` as in training."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from vidrec.data import pipeline  # pylint: disable=g-import-not-at-top
  ex = source.features.deserialize_example(raw)
  indices = pipeline.sample_train_indices(tf.shape(ex["video"])[0], position, sampler, seed)
  frames = tf.ensure_shape(tf.gather(ex["video"], indices), [None, None, None, 3])
  return pipeline.augment_train(frames, ex["label"], position, source, cfg, seed)


def proposed_example(raw, position, source, sampler, cfg, seed):
  """Prototype of the changes docs/throughput.md proposes for pipeline._train_example.

  Same frame indices and the same decoding of the sampled JPEGs only, but

  * the record is parsed with ``tf.io.parse_single_example`` on the two features the pipeline
    needs (TFDS's ``deserialize_example`` parses and converts every feature: ~1 ms more per clip);
  * no whole-frame float resize: the random crop window is drawn in the resized frame's
    coordinates and only that window is produced from the uint8 frames (see
    :func:`crop_resize_normalize`), mirrored for free; normalisation broadcasts over a tiled
    row instead of the last dimension (of size 3, which TF does ~5x slower).
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from vidrec.data import pipeline  # pylint: disable=g-import-not-at-top
  ex = tf.io.parse_single_example(raw, {"video": tf.io.VarLenFeature(tf.string),
                                        "label": tf.io.FixedLenFeature([], tf.int64)})
  ex["video"] = ex["video"].values
  indices = pipeline.sample_train_indices(tf.shape(ex["video"])[0], position, sampler, seed)
  frames = pipeline.decode_frames(tf.gather(ex["video"], indices))
  keys = tf.random.experimental.stateless_split(tf.stack([tf.constant(seed, tf.int64), position]), 4)
  shape = tf.shape(frames)
  h, w = tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32)
  if len(cfg.resize) == 2 and not any(cfg.scale_jitter):
    th, tw = tf.constant(float(cfg.resize[0])), tf.constant(float(cfg.resize[1]))
  else:                                                  # short side -> size, as pipeline.resize
    size = tf.constant(float(cfg.resize[0]))
    if any(cfg.scale_jitter):
      size = tf.cast(tf.random.stateless_uniform([], keys[0], cfg.scale_jitter[0],
                                                 cfg.scale_jitter[1] + 1, tf.int32), tf.float32)
    scale = size / tf.minimum(h, w)
    th, tw = tf.maximum(tf.round(h * scale), size), tf.maximum(tf.round(w * scale), size)
  y = tf.random.stateless_uniform([], keys[1], 0, tf.cast(th, tf.int32) - cfg.crop + 1, tf.int32)
  x = tf.random.stateless_uniform([], keys[2], 0, tf.cast(tw, tf.int32) - cfg.crop + 1, tf.int32)
  label = tf.cast(ex["label"], tf.int32)
  flip = tf.constant(False)
  if cfg.flip:
    flip = tf.random.stateless_uniform([], keys[3]) < 0.5
    label = tf.where(flip, tf.gather(tf.constant(source.flip_map), label), label)
  return {"video": crop_resize_normalize(frames, th, tw, y, x, flip, cfg), "label": label}


def crop_resize_normalize(frames, th, tw, y, x, flip, cfg):
  """uint8 [L,h,w,3] -> normalised float [L,crop,crop,3]: the crop at (y, x) of the frames
  bilinearly resized to (th, tw) (tf.image.resize's half-pixel grid, edge pixels repeated past the
  border), mirrored if ``flip``; only the crop is ever computed.

  Scale 1 (the stored frames already have the resize size, e.g. S=128 frames and resize 128x171):
  a uint8 slice. Otherwise the source window the crop needs is sliced (uint8), converted, given a
  one-pixel repeated border and sampled with one ``tf.image.crop_and_resize`` (bilinear; a box
  with swapped x ends mirrors it). Equal to tf.image.resize(antialias=True) then crop when
  upscaling or at scale 1; downscales are not antialiased (harmless for mild ones like
  256 -> 224; keep the antialiased path for large downscales).
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  crop = cfg.crop
  shape = tf.shape(frames)
  hi, wi = shape[1], shape[2]
  h, w = tf.cast(hi, tf.float32), tf.cast(wi, tf.float32)
  th, tw = tf.cast(th, tf.float32), tf.cast(tw, tf.float32)
  y, x = tf.cast(y, tf.int32), tf.cast(x, tf.int32)

  def same_size():
    v = frames[:, y:y + crop, x:x + crop]
    return tf.cast(tf.cond(flip, lambda: tf.reverse(v, [2]), lambda: v), tf.float32)

  def resized():
    sy, sx = th / h, tw / w
    # Crop pixel i is resized pixel y + i, centred at source row (y + i + 0.5) / sy - 0.5.
    y1 = (tf.cast(y, tf.float32) + 0.5) / sy - 0.5
    x1 = (tf.cast(x, tf.float32) + 0.5) / sx - 0.5
    y2, x2 = y1 + (crop - 1) / sy, x1 + (crop - 1) / sx
    r0 = tf.clip_by_value(tf.cast(tf.floor(y1), tf.int32), 0, hi - 1)
    c0 = tf.clip_by_value(tf.cast(tf.floor(x1), tf.int32), 0, wi - 1)
    r1 = tf.clip_by_value(tf.cast(tf.math.ceil(y2), tf.int32) + 1, r0 + 1, hi)
    c1 = tf.clip_by_value(tf.cast(tf.math.ceil(x2), tf.int32) + 1, c0 + 1, wi)
    win = tf.cast(frames[:, r0:r1, c0:c1], tf.float32)
    win = tf.concat([win[:, :1], win, win[:, -1:]], 1)            # repeat the edge pixels
    win = tf.concat([win[:, :, :1], win, win[:, :, -1:]], 2)
    wh, ww = tf.cast(tf.shape(win)[1] - 1, tf.float32), tf.cast(tf.shape(win)[2] - 1, tf.float32)
    by1, by2 = y1 - tf.cast(r0, tf.float32) + 1, y2 - tf.cast(r0, tf.float32) + 1
    bx1, bx2 = x1 - tf.cast(c0, tf.float32) + 1, x2 - tf.cast(c0, tf.float32) + 1
    by1, by2 = tf.clip_by_value(by1, 0.0, wh), tf.clip_by_value(by2, 0.0, wh)
    bx1, bx2 = tf.clip_by_value(bx1, 0.0, ww), tf.clip_by_value(bx2, 0.0, ww)
    bx1, bx2 = tf.where(flip, bx2, bx1), tf.where(flip, bx1, bx2)
    box = tf.stack([by1 / wh, bx1 / ww, by2 / wh, bx2 / ww])
    return tf.image.crop_and_resize(win, tf.tile(box[None], [shape[0], 1]), tf.range(shape[0]),
                                    [crop, crop])

  video = tf.cond(tf.logical_and(tf.equal(th, h), tf.equal(tw, w)), same_size, resized)
  mean = tf.tile(tf.constant(cfg.mean, tf.float32), [crop])
  inv_std = tf.tile(1.0 / tf.constant(cfg.std, tf.float32), [crop])
  return tf.reshape((tf.reshape(video, [-1, crop * 3]) - mean) * inv_std, [-1, crop, crop, 3])


VARIANTS = {"sampled": None, "decode_all": decode_all_example, "proposed": proposed_example}


def measure(spec: dict) -> dict:
  """Times one pipeline (``spec``: dataset, data_dir, input, variant, one_core, seconds, batch)."""
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
  replacement = VARIANTS[spec["variant"]]
  if replacement is not None:
    if not hasattr(pipeline, "_train_example"):
      raise RuntimeError("vidrec.data.pipeline._train_example is gone: update "
                         "vidrec/data/throughput.py's variants.")
    pipeline._train_example = replacement  # pylint: disable=protected-access
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
  proc = subprocess.run([sys.executable, "-m", "vidrec.data.throughput", "--measure_json",
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
    for variant in args.variants.split(","):
      key = case if variant == "sampled" else f"{case}_{variant}"
      spec = {"dataset": names[side], "data_dir": data_dir, "input": inp, "variant": variant,
              "batch": args.batch, "seconds": args.seconds}
      one = _run_child({**spec, "one_core": True}, cpus[-1])
      entry = {"one_core": one, "per_core_clips_per_sec": one["clips_per_sec"],
               "per_core_clips_per_cpu_sec": one["clips_per_cpu_sec"]}
      if not args.one_core_only:
        entry["all_cores"] = _run_child({**spec, "one_core": False}, None)
      result[key] = entry
      print(f"{key}: {entry['per_core_clips_per_sec']} clips/s on one core, "
            f"{entry['per_core_clips_per_cpu_sec']} clips per CPU-second"
            + (f", {entry['all_cores']['clips_per_sec']} clips/s on {len(cpus)} cores"
               if "all_cores" in entry else ""), file=sys.stderr, flush=True)
  result["loadavg_1min_end"] = round(os.getloadavg()[0], 2)
  with open(os.path.join(data_dir, "throughput.json"), "w") as f:
    json.dump(result, f, indent=1)
  return result


def _parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(prog="python -m vidrec.data.throughput",
                              description=__doc__.split("\n\n")[0])
  p.add_argument("--data_dir", help="where the stand-in data is made (or prepared datasets live)")
  p.add_argument("--dataset_s128", default=None, help="prepared dataset at S=128 for (a)")
  p.add_argument("--dataset_s256", default=None, help="prepared dataset at S=256 for (b)")
  p.add_argument("--num_videos", type=int, default=64, help="stand-in videos to make")
  p.add_argument("--workers", type=int, default=None, help="processes preparing the stand-in")
  p.add_argument("--batch", type=int, default=16, help="clips per batch")
  p.add_argument("--seconds", type=float, default=8.0, help="timed seconds per measurement")
  p.add_argument("--cases", default="ab", help="which of (a), (b) to measure: a, b or ab")
  p.add_argument("--variants", default="sampled,decode_all,proposed",
                 help="sampled: the pipeline as it is; decode_all: every frame decoded first; "
                      "proposed: the pipeline with the changes docs/throughput.md proposes")
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
