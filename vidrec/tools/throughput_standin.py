"""Stand-in videos for ``python -m vidrec.tools.throughput``: 4:3 320x240 MPEG-4 AVI videos (UCF101's
format) whose frames look roughly natural, written once and prepared at short side 128 and 256."""
from __future__ import annotations

from pathlib import Path

import numpy as np

STANDIN_VIDEOS = "throughput_videos"
STANDIN_NAMES = {128: "throughput_s128", 256: "throughput_s256"}
STANDIN_CLASSES = 4


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
