"""Accuracy of both TV-L1 backends: end-point error (EPE) against ground truth and between backends.

  python -m vidrec.tools.flow_check [--size 128] [--synthetic_videos 4]

Ground-truth cases: a textured image and its warp by a known flow (translation, rotation, zoom, a
smooth random field, an object moving over a static background that it occludes and uncovers).
Per case: average EPE to the truth of each backend (inside an 8 px margin: what leaves the frame
has no match), and the mean / median EPE between the backends. Then the EPE between backends on
``synthetic_actions`` frames (64 px). Goals (issue #32): JAX EPE within 10% of OpenCV's on every
case, median EPE between backends <= 0.25 px on the textured cases. Prints a markdown table and a
JSON summary line.
"""
from __future__ import annotations

import argparse
import json
from typing import Callable

import numpy as np

from vidrec.data import flow, synthetic

MARGIN = 8


def _texture(size: int, rng: np.random.Generator) -> np.ndarray:
  """Float texture on a (size x size) canvas: blurred noise at two scales, in 0..255."""
  cv2 = flow.require_cv2()
  noise = lambda s: cv2.GaussianBlur(rng.uniform(0, 1, (size, size)).astype(np.float32), (0, 0), s)
  tex = noise(1.5) + 0.5 * noise(4.0)
  return 255 * (tex - tex.min()) / (tex.max() - tex.min())


def _sample(tex: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
  cv2 = flow.require_cv2()
  return cv2.remap(tex, x.astype(np.float32), y.astype(np.float32), cv2.INTER_CUBIC,
                   borderMode=cv2.BORDER_REFLECT)


def _warp_case(tex, h, w, inverse: Callable, forward: Callable):
  """I0(x) = T(x), I1(y) = T(inverse(y)); the flow is forward(x) - x."""
  y, x = np.mgrid[:h, :w].astype(np.float32) + 32   # a canvas margin so the warp stays on texture
  i0 = _sample(tex, x, y)
  i1 = _sample(tex, *inverse(x, y))
  fx, fy = forward(x, y)
  return i0, i1, np.stack([fx - x, fy - y], -1)


def cases(size: int, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
  """{name: (prev uint8 [H, W], next uint8 [H, W], ground-truth flow float32 [H, W, 2])}."""
  cv2 = flow.require_cv2()
  rng = np.random.default_rng(seed)
  h, w = size, size * 5 // 4
  tex = _texture(max(h, w) + 64, rng)
  c = np.float32([32 + w / 2, 32 + h / 2])
  out = {}
  d = np.float32([2.3, -1.6])
  out["translation"] = _warp_case(tex, h, w, lambda x, y: (x - d[0], y - d[1]),
                                  lambda x, y: (x + d[0], y + d[1]))
  a = np.deg2rad(3.0)
  rot = lambda x, y, t: (c[0] + np.cos(t) * (x - c[0]) - np.sin(t) * (y - c[1]),
                         c[1] + np.sin(t) * (x - c[0]) + np.cos(t) * (y - c[1]))
  out["rotation"] = _warp_case(tex, h, w, lambda x, y: rot(x, y, -a), lambda x, y: rot(x, y, a))
  z = 1.05
  out["zoom"] = _warp_case(tex, h, w, lambda x, y: (c[0] + (x - c[0]) / z, c[1] + (y - c[1]) / z),
                           lambda x, y: (c[0] + (x - c[0]) * z, c[1] + (y - c[1]) * z))
  # A smooth random field u (about 2 px): I1(y) = T(y - u(y)); the flow of x solves f = u(x + f).
  field = [cv2.resize(rng.normal(0, 1.5, (4, 5)).astype(np.float32), (w + 64, h + 64),
                      interpolation=cv2.INTER_CUBIC) for _ in range(2)]
  u = lambda x, y: [_sample(f, x, y) for f in field]
  y, x = np.mgrid[:h, :w].astype(np.float32) + 32
  i0, i1 = _sample(tex, x, y), _sample(tex, *(a - b for a, b in zip((x, y), u(x, y))))
  f = np.zeros((2, h, w), np.float32)
  for _ in range(10):
    f = np.stack(u(x + f[0], y + f[1]))
  out["random field"] = (i0, i1, np.moveaxis(f, 0, -1))
  # An object (another texture) moves by (3, 1) px over a static background it occludes.
  obj = _texture(max(h, w) + 64, rng)
  i0, i1 = tex[32:32 + h, 32:32 + w].copy(), tex[32:32 + h, 32:32 + w].copy()
  top, left, side, m = h // 3, w // 3, h // 3, (3, 1)
  i0[top:top + side, left:left + side] = obj[:side, :side]
  i1[top + m[1]:top + m[1] + side, left + m[0]:left + m[0] + side] = obj[:side, :side]
  truth = np.zeros((h, w, 2), np.float32)
  truth[top:top + side, left:left + side] = m
  out["moving object"] = (i0, i1, truth)
  return {k: (np.clip(np.rint(a), 0, 255).astype(np.uint8), np.clip(np.rint(b), 0, 255).astype(np.uint8),
              t.astype(np.float32)) for k, (a, b, t) in out.items()}


def _epe(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  return np.linalg.norm(a - b, axis=-1)[..., MARGIN:-MARGIN, MARGIN:-MARGIN]


def run(size: int, synthetic_videos: int) -> dict:
  """The rows of the table and whether the goals are met."""
  named = cases(size)
  prev, nxt, truth = (np.stack([c[i] for c in named.values()]) for i in range(3))
  flows = {b: flow.tvl1_pairs(prev, nxt, b) for b in ("opencv", "jax")}
  rows = []
  for i, name in enumerate(named):
    between = _epe(flows["jax"][i], flows["opencv"][i])
    rows.append({"case": name, "epe_opencv": float(_epe(flows["opencv"][i], truth[i]).mean()),
                 "epe_jax": float(_epe(flows["jax"][i], truth[i]).mean()),
                 "between_mean": float(between.mean()), "between_median": float(np.median(between))})
  grey = [flow.grey(synthetic.render_video(k % len(synthetic.CLASS_NAMES), np.random.default_rng(k), 64, 9))
          for k in range(synthetic_videos)]
  sp, sn = np.concatenate([g[:-1] for g in grey]), np.concatenate([g[1:] for g in grey])
  between = _epe(flow.tvl1_pairs(sp, sn, "jax"), flow.tvl1_pairs(sp, sn, "opencv"))
  rows.append({"case": f"synthetic_actions ({len(sp)} pairs, 64 px)", "epe_opencv": None, "epe_jax": None,
               "between_mean": float(between.mean()), "between_median": float(np.median(between))})
  gt_ok = all(r["epe_jax"] <= 1.1 * r["epe_opencv"] for r in rows if r["epe_opencv"] is not None)
  between_ok = all(r["between_median"] <= 0.25 for r in rows)
  return {"size": size, "rows": rows, "goal_epe_within_10pct": gt_ok, "goal_between_median": between_ok}


def main(argv: list[str] | None = None) -> None:
  p = argparse.ArgumentParser(prog="python -m vidrec.tools.flow_check", description=run.__doc__)
  p.add_argument("--size", type=int, default=128, help="frame height (width 5/4 of it)")
  p.add_argument("--synthetic_videos", type=int, default=4, help="synthetic_actions videos (8 pairs each)")
  args = p.parse_args(argv)
  result = run(args.size, args.synthetic_videos)
  fmt = lambda v: "-" if v is None else f"{v:.4f}"
  print("| case | EPE OpenCV | EPE JAX | EPE between (mean) | EPE between (median) |")
  print("|---|---|---|---|---|")
  for r in result["rows"]:
    print(f"| {r['case']} | {fmt(r['epe_opencv'])} | {fmt(r['epe_jax'])} | {fmt(r['between_mean'])} | "
          f"{fmt(r['between_median'])} |")
  print(json.dumps(result), flush=True)


if __name__ == "__main__":
  main()
