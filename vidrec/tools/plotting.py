"""Shared helpers of the figure tools: a headless pyplot, saving a figure, min-max stretching and the
upsampling of a coarse spatio-temporal map to the frames it is overlaid on."""
from __future__ import annotations

import os

import numpy as np


def pyplot():
  """``matplotlib.pyplot`` on the non-interactive Agg backend (unless a backend is already chosen)."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg", force=False)
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


def save_figure(fig, path: str, dpi: int = 100) -> str:
  """Writes ``fig`` to ``path`` (creating its folder), closes it and returns ``path``."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, dpi=dpi)
  pyplot().close(fig)
  return path


def minmax(x: np.ndarray) -> np.ndarray:
  """``x`` stretched to [0, 1] over all its entries; a constant array becomes all zeros."""
  lo, hi = float(np.min(x)), float(np.max(x))
  return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)


def _bilinear_coords(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Half-pixel-centre source coordinates of ``n_out`` output pixels: (low index, high index, weight
  of the high one), edges clamped."""
  pos = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
  lo = np.floor(pos).astype(int)
  return lo, np.minimum(lo + 1, n_in - 1), pos - lo


def upsample_map(m: np.ndarray, num_frames: int, height: int, width: int) -> np.ndarray:
  """A map ``[T', h, w]`` -> ``[T, H, W]``: nearest in time (frame t reads ``t * T' // T``), bilinear
  in space (half-pixel centres, edges clamped), as the papers' maps are "resized to the frame"."""
  m = np.asarray(m)
  t_in, h, w = m.shape
  y0, y1, fy = _bilinear_coords(height, h)
  x0, x1, fx = _bilinear_coords(width, w)
  m = m[[min(t * t_in // num_frames, t_in - 1) for t in range(num_frames)]]
  top = m[:, y0][:, :, x0] * (1 - fx) + m[:, y0][:, :, x1] * fx
  bottom = m[:, y1][:, :, x0] * (1 - fx) + m[:, y1][:, :, x1] * fx
  return top * (1 - fy)[None, :, None] + bottom * fy[None, :, None]
