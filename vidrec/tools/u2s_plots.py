"""The U2S figures (paper 003): Fig. 1 / 4 (a) feature similarity vs accuracy, Fig. 7 weight similarity,
Fig. 5 masks of a confusing pair, Table IV per-class accuracy bars; matplotlib PNGs from arrays."""
from __future__ import annotations

import dataclasses
import warnings
from typing import Sequence

import numpy as np

from vidrec.tools import plotting
from vidrec.tools.u2s_analysis import eq7_similarity, mean_inter_class_similarity, pearson, short_name


def _matrix(ax, mat, names, title, *, vmin=0.0, vmax=1.0, cmap="viridis", pairs=None,
            xnames=True, ynames=True):
  """Heatmap with class names (or indices) on the axes; red dots on ``pairs > 0``."""
  n = len(names)
  im = ax.imshow(mat, cmap=cmap, vmin=vmin, vmax=vmax)
  if n <= 60:
    full = [f"{short_name(c)} ({k})" for k, c in enumerate(names)]
    ax.set_xticks(range(n), full if xnames else [str(k) for k in range(n)],
                  rotation=90 if xnames else 0, fontsize=6)
    ax.set_yticks(range(n), full if ynames else [str(k) for k in range(n)], fontsize=6)
  if pairs is not None:
    ii, jj = np.nonzero(np.asarray(pairs) > 0)
    ax.scatter(jj, ii, s=7, c="red", marker="o", linewidths=0)
  ax.set_title(title, fontsize=8)
  return im


def _nanmean(x: np.ndarray, fn=np.nanmean) -> np.ndarray:
  """``fn(x, axis=0)`` without the all-NaN warnings (absent classes stay NaN)."""
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", RuntimeWarning)
    return fn(x, 0)


def _class_key(class_names: Sequence[str]) -> str:
  return "\n".join(f"{k:>2}: {c}" for k, c in enumerate(class_names))


@dataclasses.dataclass
class SimilarityPanel:
  """One representation of :func:`plot_feature_similarity`: S, Eq. 7 values and per-class accuracy."""
  title: str
  similarity: np.ndarray          # [M, M]
  accuracy: np.ndarray            # [M] in [0, 1] (nan: class absent)


def plot_feature_similarity(panels: Sequence[SimilarityPanel], class_names: Sequence[str], path: str,
                            dpi: int = 80) -> str:
  """Fig. 1 / Fig. 4 (a): per panel, the class-similarity matrix S (top; colour range = its off-diagonal
  range, so that the structure shows) and the Eq. 7 similarity vs per-class accuracy (bottom; points
  labelled by class index, the key on the right)."""
  plt = plotting.pyplot()
  n = len(panels)
  fig, axes = plt.subplots(2, n + 1, figsize=(3.6 * n + 3.2, 7.6), squeeze=False,
                           gridspec_kw={"width_ratios": [1] * n + [0.85]}, constrained_layout=True)
  m = len(class_names)
  off = ~np.eye(m, dtype=bool)
  for k, p in enumerate(panels):
    sim = np.asarray(p.similarity, np.float64)
    x = eq7_similarity(sim)
    y = np.asarray(p.accuracy, np.float64)
    raw = mean_inter_class_similarity(sim)
    lo, hi = (float(sim[off].min()), float(sim[off].max())) if m > 1 else (0.0, 1.0)
    im = _matrix(axes[0, k], sim, class_names, f"{p.title}\nS (Eq. 2), mean off-diagonal {raw.mean():.3f}",
                 vmin=lo, vmax=max(hi, lo + 1e-6), xnames=False, ynames=False)
    fig.colorbar(im, ax=axes[0, k], fraction=0.046, pad=0.02).ax.tick_params(labelsize=6)
    ax = axes[1, k]
    ax.scatter(x, y, s=16, c="tab:blue")
    # Labels of points with the same accuracy are stacked so that they do not overprint.
    ties: dict[float, int] = {}
    for i in np.argsort(x):
      if not np.isfinite(y[i]):
        continue
      t = ties.get(round(float(y[i]), 6), 0)
      ties[round(float(y[i]), 6)] = t + 1
      ax.annotate(str(i), (x[i], y[i]), fontsize=6, xytext=(0, 3 + 6 * (t % 4)), textcoords="offset points",
                  ha="center")
    ax.set_xlim(-0.08, 1.08)
    lo_y = np.nanmin(y) if np.isfinite(y).any() else 0.0
    ax.set_ylim(max(0.0, lo_y - 0.08), 1.0 + 0.04 + 0.03 * (1 - lo_y))
    ax.set_xlabel("similarity with the other classes (Eq. 7)", fontsize=7)
    ax.set_ylabel("per-class accuracy", fontsize=7)
    ax.set_title(f"Eq. 7 vs accuracy: Pearson r = {pearson(x, y):.2f}", fontsize=8)
    ax.tick_params(labelsize=6)
  for r in range(2):
    axes[r, n].axis("off")
  axes[0, n].text(0, 1, "classes\n" + _class_key(class_names), fontsize=6.5, va="top", family="monospace",
                  transform=axes[0, n].transAxes)
  return plotting.save_figure(fig, path, dpi)


def plot_weight_similarity(matrices: Sequence[tuple[str, np.ndarray, np.ndarray | None]],
                           class_names: Sequence[str], path: str, dpi: int = 80) -> str:
  """Fig. 7: S^w heatmaps ``(title, S^w [M, M], csm pairs [M, M] or None)`` side by side, colour range [0, 1],
  class names on the axes, red dots on the CSM pairs (``C - I``, where w_regular acts), and a histogram
  of the off-diagonal values (Fig. 7 (c))."""
  plt = plotting.pyplot()
  n = len(matrices)
  fig, axes = plt.subplots(1, n + 1, figsize=(3.4 * n + 6.0, 6.6), squeeze=False,
                           gridspec_kw={"width_ratios": [1] * n + [0.9]}, constrained_layout=True)
  m = len(class_names)
  off = ~np.eye(m, dtype=bool)
  im = None
  for k, (title, sw, pairs) in enumerate(matrices):
    sw = np.asarray(sw, np.float64)
    stats = f"mean off-diagonal {sw[off].mean():.3f}"
    if pairs is not None:
      sel = (np.asarray(pairs) > 0) & off
      if sel.any():
        stats += f"\non its CSM pairs (red) {sw[sel].mean():.3f}"
    im = _matrix(axes[0, k], sw, class_names, f"{title}\n{stats}", pairs=pairs, ynames=k == 0)
  if im is not None:
    fig.colorbar(im, ax=axes[0, :n].tolist(), fraction=0.03, pad=0.01).ax.tick_params(labelsize=6)
  ax = axes[0, n]
  bins = np.linspace(0, 1, 21)
  for title, sw, _ in matrices:
    ax.hist(np.asarray(sw)[off], bins=bins, alpha=0.5, label=title.split("\n")[0])
  ax.set_xlabel("S^w of the off-diagonal class pairs", fontsize=7)
  ax.set_ylabel("number of ordered class pairs", fontsize=7)
  ax.set_box_aspect(1)
  ax.legend(fontsize=6)
  ax.tick_params(labelsize=6)
  return plotting.save_figure(fig, path, dpi)


@dataclasses.dataclass
class MaskRow:
  """One video of :func:`plot_pair_masks`: frames ``[T, H, W, 3]`` uint8 and the mask ``[T', h, w(, 1)]``."""
  title: str
  frames: np.ndarray
  mask: np.ndarray


def plot_pair_masks(rows: Sequence[MaskRow], path: str, overlay: float = 0.5, cmap: str = "jet",
                    dpi: int = 80) -> str:
  """Fig. 5: per video two rows, the frames and the frames with the upsampled mask overlaid (min-max
  stretched over the clip; the raw range is printed on the left); columns = segments."""
  import textwrap  # pylint: disable=g-import-not-at-top
  plt = plotting.pyplot()
  t = max(r.frames.shape[0] for r in rows)
  fig = plt.figure(figsize=(1.05 * t + 0.6, 2.9 * len(rows)), constrained_layout=True)
  subfigs = np.atleast_1d(fig.subfigures(len(rows), 1))
  width = int(13 * (1.05 * t + 0.6))
  for sub, row in zip(subfigs, rows):
    frames = np.asarray(row.frames)
    nt, h, w = frames.shape[:3]
    m = np.asarray(row.mask)
    disp = plotting.minmax(plotting.upsample_map(m[..., 0] if m.ndim == 4 else m, nt, h, w))
    axes = sub.subplots(2, t, squeeze=False)
    sub.suptitle("\n".join(textwrap.wrap(row.title, width)), fontsize=7, ha="left", x=0.01)
    for c in range(t):
      top, bottom = axes[0, c], axes[1, c]
      if c < nt:
        top.imshow(frames[c])
        bottom.imshow(frames[c])
        bottom.imshow(disp[c], cmap=cmap, alpha=overlay, vmin=0, vmax=1)
        top.set_title(f"segment {c}", fontsize=6)
      for ax in (top, bottom):
        ax.set_xticks([])
        ax.set_yticks([])
        if c >= nt:
          ax.axis("off")
    axes[0, 0].set_ylabel("frames", fontsize=7)
    axes[1, 0].set_ylabel(f"mask\n[{m.min():.2f}, {m.max():.2f}]", fontsize=7)
  return plotting.save_figure(fig, path, dpi)


def plot_pair_accuracy(groups: Sequence[Sequence[int]], class_names: Sequence[str],
                       baseline: np.ndarray, u2s: np.ndarray, path: str,
                       labels: tuple[str, str] = ("one-pass", "U2S"), dpi: int = 80) -> str:
  """Table IV as a grouped bar chart. ``baseline`` / ``u2s``: per-class accuracy ``[R, M]`` (R runs, e.g.
  seeds; bars = mean, whiskers = min-max, dots = runs) or ``[M]``; ``groups``: class indices per group."""
  plt = plotting.pyplot()
  base = np.atleast_2d(np.asarray(baseline, np.float64))
  ours = np.atleast_2d(np.asarray(u2s, np.float64))
  order = [c for g in groups for c in g]
  xpos = np.array([k + 0.6 * gi for gi, g in enumerate(groups) for k in range(len(g))], np.float64)
  xpos += np.repeat(np.cumsum([0] + [len(g) for g in groups[:-1]]), [len(g) for g in groups])
  width = 0.38
  fig, ax = plt.subplots(figsize=(max(5.0, 0.95 * len(order) + 1.5), 4.6))
  for off, acc, label, color in ((-width / 2, base, labels[0], "tab:gray"),
                                 (width / 2, ours, labels[1], "tab:orange")):
    vals = acc[:, order] * 100
    mean = _nanmean(vals)
    err = None
    if acc.shape[0] > 1:
      err = np.nan_to_num(np.stack([mean - _nanmean(vals, np.nanmin), _nanmean(vals, np.nanmax) - mean]))
    ax.bar(xpos + off, mean, width, yerr=err, capsize=2, label=f"{label} (n={acc.shape[0]})",
           color=color, error_kw={"elinewidth": 0.8})
    if acc.shape[0] > 1:
      for r in range(acc.shape[0]):
        ax.scatter(xpos + off, vals[r], s=5, c="k", zorder=3)
  diff = (_nanmean(ours[:, order]) - _nanmean(base[:, order])) * 100
  tops = np.fmax(_nanmean(base[:, order], np.nanmax), _nanmean(ours[:, order], np.nanmax))
  for x, d, top in zip(xpos, diff, tops):
    if not np.isfinite(d):
      continue
    ax.annotate(f"{d:+.1f}", (x, top * 100 + 1.5), ha="center", fontsize=6)
  ax.set_xticks(xpos, [short_name(class_names[c]) for c in order], rotation=30, ha="right", fontsize=6)
  ax.set_ylabel("top-1 accuracy (%)", fontsize=7)
  ax.set_ylim(0, 122)
  ax.set_yticks(range(0, 101, 20))
  ax.legend(fontsize=6, loc="upper right", bbox_to_anchor=(1.0, 1.0), ncols=2, framealpha=1.0)
  ax.set_title(f"Per-class accuracy on the confusing groups\n(numbers: {labels[1]} - {labels[0]} in points; "
               "dots: runs; whiskers: min-max)", fontsize=8)
  ax.tick_params(labelsize=6)
  fig.tight_layout()
  return plotting.save_figure(fig, path, dpi)
