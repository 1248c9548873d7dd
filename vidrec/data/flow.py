"""Optical flow computed once by ``prepare``: TV-L1 and warped TV-L1, quantised to uint8 as TSN does.

ATW (paper 002, Sec. 3.3) extracts "optical flow and warped optical flow ... via OpenCV with CUDA 8.0",
TSN's tool chain (``open-mmlab/denseflow``): TV-L1 (Zach-Pock-Bischof, OpenCV's Dual TV-L1) on grey
frames, clipped to +-``BOUND`` and mapped linearly to uint8 (``255 (v + 20) / 40``). The warped flow
(footnote 3, "compensating camera motion by an estimated homography matrix", as in iDT) is the TV-L1
flow between frame t and frame t+1 warped back by the homography H (t -> t+1) that RANSAC fits to
feature matches (SIFT + points displaced by the first flow), so a camera pan becomes ~zero flow.

TV-L1 runs on one of two backends (``BACKENDS``): ``opencv`` (the reference, one pair at a time on a
CPU core) and ``jax`` (``vidrec.data.flow_jax``, the same algorithm jit-compiled and batched over the
pairs; ``docs/flow.md``). The homography of the warped flow always uses OpenCV's SIFT and RANSAC.
OpenCV's contrib module is an optional extra (``pip install -e ".[flow]"``); ``require_cv2`` says so.
``python -m vidrec.tools.flow_speed`` measures the speed, ``python -m vidrec.tools.flow_check`` the
accuracy of both backends.
"""
from __future__ import annotations

import functools
import importlib.metadata
from typing import Callable

import numpy as np

from vidrec.data.tvl1_params import MIN_SIDE, TVL1_PARAMS

BOUND = 20.0
ALGORITHMS = ("tvl1",)
EXTRA_HINT = 'pip install -e ".[flow]"  (opencv-contrib-python-headless)'
# denseflow keeps the homography only with enough support; otherwise the identity (no compensation).
MIN_MATCHES, MIN_INLIERS, RANSAC_THRESHOLD = 50, 25, 1.0
# Pairs per jit call of the jax backend (a short batch is padded with blank pairs). On a CPU, batching
# pays only for small frames: a batch iterates until its slowest pair has converged (docs/flow.md).
CPU_BATCH_PIXELS = 16 * 32 * 32     # 16 pairs at 32 x 32, 4 at 64 x 64, 1 from 128 x 128 on
ACCELERATOR_BATCH = 64              # per accelerator; not measured yet (docs/flow.md, GPU)


def require_cv2():
  """The ``cv2`` module with the contrib TV-L1, or an ImportError naming the extra to install."""
  try:
    import cv2  # pylint: disable=g-import-not-at-top
    cv2.optflow.DualTVL1OpticalFlow_create  # pylint: disable=pointless-statement
  except (ImportError, AttributeError) as e:
    raise ImportError(f"Optical flow needs OpenCV's contrib TV-L1 (cv2.optflow): {EXTRA_HINT}. "
                      f"({e})") from None
  return cv2


def _version(package: str) -> str:
  try:
    return importlib.metadata.version(package)
  except importlib.metadata.PackageNotFoundError:
    return "not installed"


def metadata(algorithm: str, warped: bool, backend: str = "opencv") -> dict:
  """What the dataset's metadata records about its flow (``backend``: the TV-L1 that computed it)."""
  if algorithm not in ALGORITHMS:
    raise ValueError(f"flow algorithm {algorithm!r} unknown; use one of {ALGORITHMS}")
  check_backend(backend)
  implementation = (f"vidrec.data.flow_jax.tvl1, jax {_version('jax')}" if backend == "jax" else
                    "cv2.optflow.DualTVL1OpticalFlow, opencv-contrib-python-headless "
                    f"{_version('opencv-contrib-python-headless')}")
  return {"algorithm": algorithm, "backend": backend, "implementation": implementation,
          "params": TVL1_PARAMS, "bound": BOUND, "quantisation": "uint8 = round(255 (clip(v) + bound) / (2 bound))",
          "warped": warped, "homography": {"features": "SIFT + flow-displaced grid", "ransac_threshold":
                                           RANSAC_THRESHOLD, "min_matches": MIN_MATCHES,
                                           "min_inliers": MIN_INLIERS} if warped else None}


def quantize(flow: np.ndarray, bound: float = BOUND) -> np.ndarray:
  """Float flow -> uint8, clipped to +-bound (TSN/denseflow ``convertFlowToImage``)."""
  return np.round(255.0 * (np.clip(flow, -bound, bound) + bound) / (2 * bound)).astype(np.uint8)


def dequantize(q: np.ndarray, bound: float = BOUND) -> np.ndarray:
  """uint8 -> float flow (the inverse of ``quantize`` up to 2 bound / 255 / 2)."""
  return q.astype(np.float32) * (2 * bound / 255.0) - bound


@functools.lru_cache(maxsize=1)
def _tvl1_solver():
  cv2 = require_cv2()
  cv2.setNumThreads(1)   # parallelism is over videos (one process per core)
  return cv2.optflow.DualTVL1OpticalFlow_create(**TVL1_PARAMS)


def tvl1(prev_gray: np.ndarray, next_gray: np.ndarray) -> np.ndarray:
  """TV-L1 flow from ``prev_gray`` to ``next_gray`` (uint8 [H, W]) by OpenCV: float32 [H, W, 2] =
  (dx, dy), i.e. ``next(y + dy, x + dx) ~ prev(y, x)``."""
  return _tvl1_solver().calc(prev_gray, next_gray, None)


def _tvl1_opencv(prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
  return np.stack([tvl1(a, b) for a, b in zip(prev, nxt)])


def jax_batch(h: int, w: int) -> int:
  """The jax backend's pairs per call for [H, W] frames on the devices JAX has."""
  import jax  # pylint: disable=g-import-not-at-top
  if jax.default_backend() == "cpu":
    return max(1, CPU_BATCH_PIXELS // (h * w))
  return ACCELERATOR_BATCH * jax.device_count()


def _tvl1_jax(prev: np.ndarray, nxt: np.ndarray, batch: int | None = None) -> np.ndarray:
  import jax  # pylint: disable=g-import-not-at-top
  from vidrec.data import flow_jax  # pylint: disable=g-import-not-at-top
  batch = batch or jax_batch(*prev.shape[1:])
  batch = -(-batch // jax.device_count()) * jax.device_count()     # whole shards per device
  n = len(prev)
  pad = -n % batch
  prev, nxt = (np.concatenate([x, np.zeros((pad,) + x.shape[1:], x.dtype)]) for x in (prev, nxt))
  sharding = jax.sharding.NamedSharding(jax.sharding.Mesh(np.array(jax.devices()), ("b",)),
                                        jax.sharding.PartitionSpec("b"))
  out = [flow_jax.tvl1(*(jax.device_put(x[i:i + batch], sharding) for x in (prev, nxt)))
         for i in range(0, n + pad, batch)]          # all batches dispatched before the first is read
  return np.concatenate([np.asarray(o) for o in out])[:n]


# The TV-L1 implementations, by name: uint8 [N, H, W] pairs -> float32 [N, H, W, 2].
BACKENDS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "opencv": _tvl1_opencv, "jax": _tvl1_jax}


def check_backend(backend: str) -> None:
  if backend not in BACKENDS:
    raise ValueError(f"flow backend {backend!r} unknown; use one of {sorted(BACKENDS)}")


def default_backend() -> str:
  """``jax`` (faster than OpenCV on this project's CPU too, ``docs/flow.md``) unless JAX is missing."""
  try:
    import jax  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    return "opencv"
  return "jax"


def tvl1_pairs(prev: np.ndarray, nxt: np.ndarray, backend: str = "opencv") -> np.ndarray:
  """TV-L1 flow of N pairs (uint8 [N, H, W] each) by ``backend``: float32 [N, H, W, 2]."""
  check_backend(backend)
  if prev.shape != nxt.shape or prev.ndim != 3:
    raise ValueError(f"TV-L1 pairs need prev and next frames of the same shape [N, H, W], got "
                     f"{prev.shape} and {nxt.shape}")
  return BACKENDS[backend](prev, nxt)


def grey(frames: np.ndarray) -> np.ndarray:
  """uint8 [..., 3] RGB -> uint8 [...] grey, exactly as ``cv2.cvtColor(COLOR_RGB2GRAY)`` (its
  fixed-point 0.299 R + 0.587 G + 0.114 B, rounded)."""
  r, g, b = (frames[..., i].astype(np.int32) for i in range(3))
  return ((r * 9798 + g * 19235 + b * 3735 + (1 << 14)) >> 15).astype(np.uint8)


def homography(prev_gray: np.ndarray, next_gray: np.ndarray, flow: np.ndarray) -> np.ndarray:
  """The homography mapping ``prev`` to ``next`` (camera motion), fitted with RANSAC to SIFT matches
  plus a grid of points displaced by ``flow``; the identity without enough support."""
  cv2 = require_cv2()
  h, w = prev_gray.shape
  step = max(2, min(h, w) // 16)
  ys, xs = np.mgrid[step // 2:h:step, step // 2:w:step]
  src = np.stack([xs.ravel(), ys.ravel()], -1).astype(np.float32)
  dst = src + flow[ys.ravel(), xs.ravel()]
  sift = cv2.SIFT_create()
  kp1, d1 = sift.detectAndCompute(prev_gray, None)
  kp2, d2 = sift.detectAndCompute(next_gray, None)
  if d1 is not None and d2 is not None and len(kp1) >= 2 and len(kp2) >= 2:
    pairs = cv2.BFMatcher().knnMatch(d1, d2, k=2)
    good = [m for m, n in (p for p in pairs if len(p) == 2) if m.distance < 0.75 * n.distance]
    if good:
      src = np.concatenate([src, np.float32([kp1[m.queryIdx].pt for m in good])])
      dst = np.concatenate([dst, np.float32([kp2[m.trainIdx].pt for m in good])])
  if len(src) <= MIN_MATCHES:
    return np.eye(3)
  hom, inliers = cv2.findHomography(src, dst, cv2.RANSAC, RANSAC_THRESHOLD)
  if hom is None or int(inliers.sum()) <= MIN_INLIERS:
    return np.eye(3)
  return hom


def warp_back(prev_gray: np.ndarray, next_gray: np.ndarray, flow: np.ndarray) -> np.ndarray:
  """``next`` warped back by the camera homography (``prev`` -> ``next``) fitted to ``flow``: the frame
  whose TV-L1 flow from ``prev`` is the warped flow (denseflow's ``dense_warp_flow``)."""
  cv2 = require_cv2()
  hom = homography(prev_gray, next_gray, flow)
  h, w = prev_gray.shape
  return cv2.warpPerspective(next_gray, np.linalg.inv(hom), (w, h), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REPLICATE)


def warped_tvl1(prev_gray: np.ndarray, next_gray: np.ndarray, flow: np.ndarray) -> np.ndarray:
  """TV-L1 flow from ``prev`` to ``next`` warped back by the camera homography: float32 [H, W, 2]."""
  return tvl1(prev_gray, warp_back(prev_gray, next_gray, flow))


def checked_grey(frames: np.ndarray, name: str = "video") -> np.ndarray:
  """uint8 [T, H, W, 3] RGB (or [T, H, W] grey) frames of video ``name`` -> grey [T, H, W]; a
  ValueError naming the video where they cannot have a flow."""
  if not (frames.ndim == 3 or frames.ndim == 4 and frames.shape[-1] == 3):
    raise ValueError(f"{name}: flow needs RGB frames [T, H, W, 3] or grey [T, H, W], got {frames.shape}")
  if len(frames) < 2:
    raise ValueError(f"{name}: optical flow needs at least 2 frames, got {len(frames)}")
  if min(frames.shape[1:3]) < MIN_SIDE:
    raise ValueError(f"{name}: frames of {frames.shape[1]}x{frames.shape[2]} px are too small for "
                     f"TV-L1 ({MIN_SIDE} px at least); prepare with a larger --short_side")
  return grey(frames) if frames.ndim == 4 else frames


def extract_many(greys: list[np.ndarray], algorithm: str = "tvl1", warped: bool = False,
                 backend: str = "opencv") -> list[dict[str, np.ndarray]]:
  """``extract`` of several videos' ``checked_grey`` frames, the pairs of all videos of one frame size
  in one ``backend`` call (so a batched backend fills its batches across short videos)."""
  if algorithm not in ALGORITHMS:
    raise ValueError(f"flow algorithm {algorithm!r} unknown; use one of {ALGORITHMS}")
  check_backend(backend)
  out: list[dict[str, np.ndarray]] = [{} for _ in greys]
  for shape in {g.shape[1:] for g in greys}:
    idx = [i for i, g in enumerate(greys) if g.shape[1:] == shape]
    prev, nxt = (np.concatenate([greys[i][sl] for i in idx]) for sl in (np.s_[:-1], np.s_[1:]))
    fields = {"flow": tvl1_pairs(prev, nxt, backend)}
    if warped:
      back = np.stack([warp_back(a, b, f) for a, b, f in zip(prev, nxt, fields["flow"])])
      fields["warped_flow"] = tvl1_pairs(prev, back, backend)
    ends = np.cumsum([len(greys[i]) - 1 for i in idx])[:-1]
    for stream, f in fields.items():
      for i, part in zip(idx, np.split(quantize(f), ends)):
        out[i][stream] = part
  return out


def extract(frames: np.ndarray, algorithm: str = "tvl1", warped: bool = False, backend: str = "opencv",
            name: str = "video") -> dict[str, np.ndarray]:
  """uint8 [T, H, W, 3] RGB (or [T, H, W] grey) frames of video ``name`` -> {"flow": uint8 [T - 1, H,
  W, 2]} (+ "warped_flow"); field t: frame t -> t+1, all T - 1 pairs in one ``backend`` call."""
  return extract_many([checked_grey(frames, name)], algorithm, warped, backend)[0]
