"""Optical flow computed once by ``prepare``: TV-L1 and warped TV-L1, quantised to uint8 as TSN does.

ATW (paper 002, Sec. 3.3) extracts "optical flow and warped optical flow ... via OpenCV with CUDA 8.0",
TSN's tool chain (``open-mmlab/denseflow``): TV-L1 (Zach-Pock-Bischof, OpenCV's Dual TV-L1) on grey
frames, clipped to +-``BOUND`` and mapped linearly to uint8 (``255 (v + 20) / 40``). The warped flow
(footnote 3, "compensating camera motion by an estimated homography matrix", as in iDT) is the TV-L1
flow between frame t and frame t+1 warped back by the homography H (t -> t+1) that RANSAC fits to
feature matches (SIFT + points displaced by the first flow), so a camera pan becomes ~zero flow.

OpenCV's contrib module is an optional extra (``pip install -e ".[flow]"``); ``require_cv2`` says so.
``python -m vidrec.tools.flow_speed`` measures the extraction speed (frame pairs per second per core).
"""
from __future__ import annotations

import functools
import importlib.metadata

import numpy as np

BOUND = 20.0
ALGORITHMS = ("tvl1",)
EXTRA_HINT = 'pip install -e ".[flow]"  (opencv-contrib-python-headless)'
# OpenCV's Dual TV-L1 parameters; these are also the CUDA defaults TSN's denseflow used.
TVL1_PARAMS = {"tau": 0.25, "lambda_": 0.15, "theta": 0.3, "nscales": 5, "warps": 5, "epsilon": 0.01,
               "innnerIterations": 30, "outerIterations": 10, "scaleStep": 0.8, "gamma": 0.0,
               "medianFiltering": 5, "useInitialFlow": False}
# denseflow keeps the homography only with enough support; otherwise the identity (no compensation).
MIN_MATCHES, MIN_INLIERS, RANSAC_THRESHOLD = 50, 25, 1.0


def require_cv2():
  """The ``cv2`` module with the contrib TV-L1, or an ImportError naming the extra to install."""
  try:
    import cv2  # pylint: disable=g-import-not-at-top
    cv2.optflow.DualTVL1OpticalFlow_create  # pylint: disable=pointless-statement
  except (ImportError, AttributeError) as e:
    raise ImportError(f"Optical flow needs OpenCV's contrib TV-L1 (cv2.optflow): {EXTRA_HINT}. "
                      f"({e})") from None
  return cv2


def metadata(algorithm: str, warped: bool) -> dict:
  """What the dataset's metadata records about its flow."""
  if algorithm not in ALGORITHMS:
    raise ValueError(f"flow algorithm {algorithm!r} unknown; use one of {ALGORITHMS}")
  try:
    version = importlib.metadata.version("opencv-contrib-python-headless")
  except importlib.metadata.PackageNotFoundError:
    version = "not installed"
  return {"algorithm": algorithm, "implementation": f"cv2.optflow.DualTVL1OpticalFlow, "
                                                    f"opencv-contrib-python-headless {version}",
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
  """TV-L1 flow from ``prev_gray`` to ``next_gray`` (uint8 [H, W]): float32 [H, W, 2] = (dx, dy), i.e.
  ``next(y + dy, x + dx) ~ prev(y, x)``."""
  return _tvl1_solver().calc(prev_gray, next_gray, None)


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


def warped_tvl1(prev_gray: np.ndarray, next_gray: np.ndarray, flow: np.ndarray) -> np.ndarray:
  """TV-L1 flow from ``prev`` to ``next`` warped back by the camera homography (denseflow's
  ``dense_warp_flow``): float32 [H, W, 2]."""
  cv2 = require_cv2()
  hom = homography(prev_gray, next_gray, flow)
  h, w = prev_gray.shape
  warped = cv2.warpPerspective(next_gray, np.linalg.inv(hom), (w, h), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)
  return tvl1(prev_gray, warped)


def extract(frames: np.ndarray, algorithm: str = "tvl1", warped: bool = False) -> dict[str, np.ndarray]:
  """uint8 [T, H, W, 3] RGB frames -> {"flow": uint8 [F, H, W, 2]} (+ "warped_flow"), F = T - 1 fields
  (field t: frame t -> t+1; a one-frame video gets one all-zero field)."""
  if algorithm not in ALGORITHMS:
    raise ValueError(f"flow algorithm {algorithm!r} unknown; use one of {ALGORITHMS}")
  cv2 = require_cv2()
  grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
  if len(grey) == 1:
    grey = grey * 2
  fields = {"flow": [], "warped_flow": []}
  for prev, nxt in zip(grey[:-1], grey[1:]):
    flow = tvl1(prev, nxt)
    fields["flow"].append(quantize(flow))
    if warped:
      fields["warped_flow"].append(quantize(warped_tvl1(prev, nxt, flow)))
  return {k: np.stack(v) for k, v in fields.items() if v}
