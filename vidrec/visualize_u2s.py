"""U2S visualisations (paper 003, Sec. IV-C 4-6): matplotlib PNGs from trained runs.

  python -m vidrec.visualize_u2s --config configs/u2s_sthv2.py:ablation --workdir RUN_DIR \
      [--baseline_workdir ONE_PASS_RUN_DIR] [--noreg_workdir RUN_WITHOUT_REGULARISATION] \
      --out DIR [--split test] [--pair a,b] [--num_pairs 4] [--baseline_variant one_pass] [--dpi 80]

Writes to ``--out``:

1. ``feature_similarity.png`` (Fig. 1 / Fig. 4 (a)): per representation (one-pass ``features_un`` when
   ``--baseline_workdir`` is given, U2S ``features_un``, U2S ``features_csn``, and the U2S model's own CSM
   similarity S from its training statistics) the class-similarity matrix S (top) and the scatter of the
   Eq. 7 inter-class similarity of each class vs the run's per-class accuracy (bottom), points labelled by
   class index with a key of the class names. S is Eq. 2 applied to the class means of the pooled features over the evaluation split
   (:func:`feature_similarity_matrix`), Eq. 7 is :func:`eq7_similarity`.
2. ``weight_similarity.png`` (Fig. 7): S^w of Eq. 4 for the MN 1x1x1 conv kernel
   (``u2s.mask_kernel(params)``, ``csm.weight_similarity``), with regularisation (``--workdir``) and
   without (``--noreg_workdir``, a run trained with ``--config.loss.w_regular_weight=0.0``) side by side,
   dots on the pairs of that run's final binary CSM (the pairs w_regular acts on), and a histogram of the
   off-diagonal values (Fig. 7 (c)).
3. ``pair_masks.png`` (Fig. 5): the most similar pair of classes of the U2S CSM (``csm.class_similarity``
   on the ``u2s_stats`` collection; or ``--pair``), one test video per class (the first one of that class
   the model classifies correctly, else the first one): its frames as the pipeline feeds them
   (un-normalised), and the ``mask`` output upsampled and overlaid; columns = segments.
4. ``pair_accuracy.png`` (Table IV): per-class accuracy of one-pass vs U2S on the confusing groups (the
   ``--num_pairs`` most similar CSM pairs, merged into groups when they share a class), from the
   runs' ``eval/<split>_report.json`` (``per_class_accuracy``; for the first run of each list a missing report
   falls back to the accuracy computed here). ``--workdir`` / ``--baseline_workdir`` accept comma-separated lists (e.g.
   several seeds): the bars are then means with min-max whiskers and the figures 1-3 use the first run.
5. ``summary.json``: every number plotted.

The model runs through the normal evaluation path: ``trainer.setup`` + ``trainer.restore``,
``pipeline.eval_dataset`` over a ``pipeline.VideoSource`` and ``evaluate.collect_view_outputs`` /
``gather_scores`` (views aggregated by ``config.eval.aggregation`` for the scores, averaged for features and
the first view kept for masks). Single process only.
"""
from __future__ import annotations

import dataclasses
import json
import os
import warnings
from typing import Any, Sequence

import numpy as np

from vidrec.errors import MissingDataError, UserError

# ---------------------------------------------------------------------------------------------- pure

def class_means(features: np.ndarray, labels: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
  """Per-class mean of ``features [N, C]`` -> ``(means [M, C] float64, counts [M] int)``; absent classes 0."""
  features = np.asarray(features, np.float64)
  onehot = np.eye(num_classes)[np.asarray(labels)]                     # [N, M]
  counts = onehot.sum(0)
  means = onehot.T @ features / np.maximum(counts, 1)[:, None]
  return means, counts.astype(np.int64)


def feature_similarity_matrix(features: np.ndarray, labels: np.ndarray, num_classes: int,
                              distance: str = "cosine") -> np.ndarray:
  """S of Eq. 2 (``s_ij = 1 - f_dist(mu_i, mu_j)``, ``csm.class_similarity``) on the class means of
  ``features [N, C]``: ``[M, M]`` in [0, 1], unit diagonal; classes without samples get 0 off the diagonal."""
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from vidrec.models import csm as csm_lib  # pylint: disable=g-import-not-at-top
  means, counts = class_means(features, labels, num_classes)
  return np.asarray(csm_lib.class_similarity(jnp.asarray(means, jnp.float32), jnp.asarray(counts),
                                             distance), np.float64)


def _minmax(x: np.ndarray) -> np.ndarray:
  lo, hi = float(np.min(x)), float(np.max(x))
  return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)


def eq7_similarity(similarity: np.ndarray) -> np.ndarray:
  """Eq. 7 (Sec. IV-C 4): ``s_similarity = Norm(sum_j (S - I)_ij)``, Norm = min-max over the classes.

  The row sum of ``S - I`` is the similarity of class i to every *other* class (the unit self-similarity
  is removed); its min-max normalisation lies in [0, 1]^M (all zeros when every class has the same sum).
  """
  s = np.asarray(similarity, np.float64)
  return _minmax((s - np.eye(s.shape[0])).sum(1))


def mean_inter_class_similarity(similarity: np.ndarray) -> np.ndarray:
  """The un-normalised quantity behind Eq. 7: ``sum_{j != i} s_ij / (M - 1)`` per class."""
  s = np.asarray(similarity, np.float64)
  m = s.shape[0]
  return (s - np.eye(m)).sum(1) / max(m - 1, 1)


def ranked_pairs(similarity: np.ndarray, valid: np.ndarray | None = None) -> list[tuple[int, int, float]]:
  """Off-diagonal class pairs ``(i, j, s)`` with ``i < j``, most similar first (S symmetrised as
  ``(S + S^T) / 2``; ties broken by ``(i, j)``). ``valid [M]`` bool drops classes without statistics."""
  s = np.asarray(similarity, np.float64)
  s = (s + s.T) / 2
  m = s.shape[0]
  ok = np.ones(m, bool) if valid is None else np.asarray(valid, bool)
  pairs = [(i, j, float(s[i, j])) for i in range(m) for j in range(i + 1, m) if ok[i] and ok[j]]
  return sorted(pairs, key=lambda p: (-p[2], p[0], p[1]))


def most_similar_pair(similarity: np.ndarray, valid: np.ndarray | None = None) -> tuple[int, int]:
  """The pair ``(i, j)``, ``i < j``, with the highest off-diagonal similarity."""
  pairs = ranked_pairs(similarity, valid)
  if not pairs:
    raise ValueError("no pair of classes with statistics to choose from")
  return pairs[0][:2]


def confusing_groups(pairs: Sequence[tuple[int, int]]) -> list[tuple[int, ...]]:
  """Merges pairs that share a class into groups (connected components), in order of first appearance;
  classes inside a group keep their order of appearance."""
  groups: list[list[int]] = []
  for i, j in pairs:
    hit = [g for g in groups if i in g or j in g]
    merged = [c for g in hit for c in g]
    for c in (i, j):
      if c not in merged:
        merged.append(c)
    first = min((groups.index(g) for g in hit), default=len(groups))
    groups = [g for g in groups if g not in hit]
    groups.insert(min(first, len(groups)), merged)
  return [tuple(g) for g in groups]


def parse_pair(spec: str, class_names: Sequence[str]) -> tuple[int, int]:
  """'3,7' or 'Dropping something,Dropping something so that it breaks' -> class indices."""
  parts = [p.strip() for p in spec.split(",")]
  if len(parts) != 2:
    raise UserError(f"--pair wants two classes 'a,b', got {spec!r}")
  lower = [n.lower() for n in class_names]
  out = []
  for p in parts:
    if p.lstrip("-").isdigit():
      k = int(p)
    elif p.lower() in lower:
      k = lower.index(p.lower())
    else:
      raise UserError(f"--pair: {p!r} is neither a class index nor a class name of {list(class_names)}")
    if not 0 <= k < len(class_names):
      raise UserError(f"--pair: class index {k} out of range [0, {len(class_names)})")
    out.append(k)
  if out[0] == out[1]:
    raise UserError(f"--pair needs two different classes, got {spec!r}")
  return out[0], out[1]


def short_name(name: str) -> str:
  """Paper-style abbreviation ('something' -> 'sth.') for axis labels."""
  return name.replace("something", "sth.").replace("Something", "Sth.")


def pearson(x: np.ndarray, y: np.ndarray) -> float:
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  keep = np.isfinite(x) & np.isfinite(y)
  x, y = x[keep], y[keep]
  if len(x) < 2 or x.std() == 0 or y.std() == 0:
    return float("nan")
  return float(np.corrcoef(x, y)[0, 1])


def unnormalize(video: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
  """Pipeline input ``(x - mean) / std`` (0-255 range) -> uint8 frames."""
  x = np.asarray(video, np.float32) * np.asarray(std, np.float32) + np.asarray(mean, np.float32)
  return np.clip(np.round(x), 0, 255).astype(np.uint8)


def upsample_mask(mask: np.ndarray, num_frames: int, height: int, width: int) -> np.ndarray:
  """Mask ``[T', h, w]`` (or ``[T', h, w, 1]``) -> ``[T, H, W]``: nearest in time (frame t reads
  ``t * T' // T``), bilinear in space (half-pixel centres, edges clamped)."""
  m = np.asarray(mask, np.float64)
  if m.ndim == 4:
    m = m[..., 0]
  t_in, h, w = m.shape

  def coords(n_out, n_in):
    pos = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    lo = np.floor(pos).astype(int)
    return lo, np.minimum(lo + 1, n_in - 1), pos - lo

  y0, y1, fy = coords(height, h)
  x0, x1, fx = coords(width, w)
  m = m[[min(t * t_in // num_frames, t_in - 1) for t in range(num_frames)]]
  top = m[:, y0][:, :, x0] * (1 - fx) + m[:, y0][:, :, x1] * fx
  bottom = m[:, y1][:, :, x0] * (1 - fx) + m[:, y1][:, :, x1] * fx
  return top * (1 - fy)[None, :, None] + bottom * fy[None, :, None]


# ---------------------------------------------------------------------------------------------- plots

def _plt():
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg", force=False)
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


def _save(fig, path: str, dpi: int) -> str:
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, dpi=dpi)
  _plt().close(fig)
  return path


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
  plt = _plt()
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
  return _save(fig, path, dpi)


def plot_weight_similarity(matrices: Sequence[tuple[str, np.ndarray, np.ndarray | None]],
                           class_names: Sequence[str], path: str, dpi: int = 80) -> str:
  """Fig. 7: S^w heatmaps ``(title, S^w [M, M], csm pairs [M, M] or None)`` side by side, colour range [0, 1],
  class names on the axes, red dots on the CSM pairs (``C - I``, where w_regular acts), and a histogram
  of the off-diagonal values (Fig. 7 (c))."""
  plt = _plt()
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
  return _save(fig, path, dpi)


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
  plt = _plt()
  t = max(r.frames.shape[0] for r in rows)
  fig = plt.figure(figsize=(1.05 * t + 0.6, 2.9 * len(rows)), constrained_layout=True)
  subfigs = np.atleast_1d(fig.subfigures(len(rows), 1))
  width = int(13 * (1.05 * t + 0.6))
  for sub, row in zip(subfigs, rows):
    frames = np.asarray(row.frames)
    nt, h, w = frames.shape[:3]
    disp = _minmax(upsample_mask(row.mask, nt, h, w))
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
    m = np.asarray(row.mask)
    axes[0, 0].set_ylabel("frames", fontsize=7)
    axes[1, 0].set_ylabel(f"mask\n[{m.min():.2f}, {m.max():.2f}]", fontsize=7)
  return _save(fig, path, dpi)


def plot_pair_accuracy(groups: Sequence[Sequence[int]], class_names: Sequence[str],
                       baseline: np.ndarray, u2s: np.ndarray, path: str,
                       labels: tuple[str, str] = ("one-pass", "U2S"), dpi: int = 80) -> str:
  """Table IV as a grouped bar chart. ``baseline`` / ``u2s``: per-class accuracy ``[R, M]`` (R runs, e.g.
  seeds; bars = mean, whiskers = min-max, dots = runs) or ``[M]``; ``groups``: class indices per group."""
  plt = _plt()
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
  return _save(fig, path, dpi)


# ---------------------------------------------------------------------------------------------- runs

@dataclasses.dataclass
class RunOutputs:
  """What one pass over the split gives: per-video scores / features, first-view masks, the state."""
  labels: np.ndarray                       # [N]
  scores: np.ndarray                       # [N, M] aggregated `logits`
  accuracy: np.ndarray                     # [M]
  features: dict[str, np.ndarray]          # head -> [N, C] (view mean)
  first_view: dict[str, dict[int, np.ndarray]]   # head -> video -> first view's output
  variables: Any


class _SubsetSource:
  """A ``VideoSource`` restricted to some of its videos (``eval_dataset`` reads through it)."""

  def __init__(self, source, indices: Sequence[int]):
    self._source = source
    self.indices = np.asarray(indices, np.int64)

  def __len__(self) -> int:
    return len(self.indices)

  def read(self, index) -> bytes:
    return self._source.read(self.indices[int(index)])

  def __getattr__(self, name):
    return getattr(self._source, name)


def restore_run(config, workdir: str):
  """``trainer.setup`` + the latest (or ``config.eval.checkpoint_step``) checkpoint of ``workdir``."""
  from vidrec import trainer  # pylint: disable=g-import-not-at-top
  s = trainer.setup(config)
  mngr = trainer.checkpoint_manager(workdir, config)
  if mngr.latest_step() is None:
    raise MissingDataError(f"No checkpoint in {workdir}/checkpoints: train it first.")
  step = config.eval.checkpoint_step if config.eval.checkpoint_step >= 0 else None
  ts, _ = trainer.restore(mngr, s.abstract_state, step)
  mngr.close()
  return s, ts


def _blank(config, local_batch: int) -> dict[str, np.ndarray]:
  from vidrec import trainer  # pylint: disable=g-import-not-at-top
  return {"video": np.zeros(trainer.input_shape(config, local_batch), np.float32),
          "label": np.zeros(local_batch, np.int32), "video_index": np.zeros(local_batch, np.int32),
          "mask": np.zeros(local_batch, bool)}


def run_split(config, s, ts, source, feature_heads: Sequence[str],
              first_view_heads: Sequence[str] = ()) -> RunOutputs:
  """Scores every view of ``source`` (``pipeline.eval_dataset``, ``evaluate.collect_view_outputs``)."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from vidrec import evaluate, trainer  # pylint: disable=g-import-not-at-top
  from vidrec.data import pipeline  # pylint: disable=g-import-not-at-top
  if jax.process_count() > 1:
    raise NotImplementedError("vidrec.visualize_u2s runs in a single process")
  heads = ("logits",) + tuple(feature_heads) + tuple(first_view_heads)

  @jax.jit
  def apply_fn(variables, video, labels):
    out = s.model.apply(variables, video, train=False, labels=labels)
    return {h: out[h].astype(jnp.float32) for h in heads}

  ds = pipeline.eval_dataset(source, config.input, global_batch=config.eval.batch_size)
  variables = trainer.variables_of(ts)
  views, labels = evaluate.collect_view_outputs(apply_fn, variables, ds, s.mesh, heads,
                                                _blank(config, config.eval.batch_size))
  n = len(source)
  rule = evaluate.AGGREGATIONS.get(config.eval.aggregation)
  scores, label_arr, _ = evaluate.gather_scores(views["logits"], labels, n, s.num_classes, rule)
  report = evaluate.video_metrics(scores, label_arr, source.class_names)
  acc = np.array([np.nan if a is None else a for a in report["per_class_accuracy"].values()])
  feats = {}
  for h in feature_heads:
    dim = next(iter(views[h].values()))[0].shape[-1]
    feats[h] = evaluate.gather_scores(views[h], labels, n, dim, evaluate.mean_logits)[0]
  first = {h: {v: x[0] for v, x in views[h].items()} for h in first_view_heads}
  return RunOutputs(label_arr, scores, acc, feats, first, variables)


def first_view_frames(config, source, indices: Sequence[int]) -> dict[int, np.ndarray]:
  """The first view of each video in ``indices`` as the pipeline feeds it, un-normalised to uint8."""
  from vidrec.data import pipeline  # pylint: disable=g-import-not-at-top
  sub = _SubsetSource(source, indices)
  out: dict[int, np.ndarray] = {}
  ds = pipeline.eval_dataset(sub, config.input, global_batch=config.eval.batch_size)
  for batch in ds.as_numpy_iterator():
    for row in np.flatnonzero(batch["view_index"] == 0):
      out[int(sub.indices[batch["video_index"][row]])] = unnormalize(
          batch["video"][row], config.input.mean, config.input.std)
  return out


def u2s_stats(variables: Any) -> dict[str, np.ndarray] | None:
  """The ``u2s_stats`` collection (``class_sparsity``, ``class_count``, ``updates``) or None."""
  from vidrec.models import u2s  # pylint: disable=g-import-not-at-top
  stats = variables.get(u2s.STATS_COLLECTION) if hasattr(variables, "get") else None
  if not stats:
    return None
  while "class_sparsity" not in stats:          # nested under a submodule name
    stats = next(iter(stats.values()))
  return {k: np.asarray(v) for k, v in stats.items()}


def csm_of(variables: Any, model_cfg) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
  """``(S, binary C, counts)`` of a U2S state (Eq. 2 on ``u2s_stats``, ``csm.binary_csm``), or None."""
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from vidrec.models import csm as csm_lib  # pylint: disable=g-import-not-at-top
  stats = u2s_stats(variables)
  if stats is None:
    return None
  sim = csm_lib.class_similarity(jnp.asarray(stats["class_sparsity"]), jnp.asarray(stats["class_count"]),
                                 model_cfg.get("csm_distance", "cosine"))
  binary = csm_lib.binary_csm(sim, model_cfg.get("csm_alpha", None), model_cfg.get("csm_num_confusing", 5))
  return np.asarray(sim, np.float64), np.asarray(binary), stats["class_count"]


def weight_similarity_of(variables: Any, loss_cfg) -> np.ndarray:
  """S^w (Eq. 4) of the MN kernel ``u2s.mask_kernel(params)``."""
  from vidrec.models import csm as csm_lib  # pylint: disable=g-import-not-at-top
  from vidrec.models import u2s  # pylint: disable=g-import-not-at-top
  return np.asarray(csm_lib.weight_similarity(u2s.mask_kernel(variables["params"]),
                                              loss_cfg.get("w_similarity", "clipped_cosine")), np.float64)


def report_accuracy(workdir: str, split: str, class_names: Sequence[str],
                    fallback: np.ndarray | None = None) -> np.ndarray:
  """``per_class_accuracy`` of ``workdir/eval/<split>_report.json`` as ``[M]`` (or ``fallback``)."""
  path = os.path.join(workdir, "eval", f"{split}_report.json")
  if not os.path.exists(path):
    if fallback is not None:
      return np.asarray(fallback, np.float64)
    raise MissingDataError(f"{path} is missing: run python eval.py --config ... --workdir {workdir} "
                            f"--split {split} first.")
  with open(path) as f:
    per_class = json.load(f)["per_class_accuracy"]
  return np.array([np.nan if per_class.get(n) is None else per_class[n] for n in class_names])


def _baseline_config(config, variant: str):
  c = config.copy_and_resolve_references()
  c.model.variant = variant
  return c


def make_figures(config, workdirs: Sequence[str], out: str, *, split: str | None = None,
                 baseline_workdirs: Sequence[str] = (), noreg_workdir: str | None = None,
                 pair: str | None = None, num_pairs: int = 4, baseline_variant: str = "one_pass",
                 dpi: int = 80) -> dict:
  """Writes the PNGs and ``summary.json`` to ``out``; returns the summary."""
  from vidrec.data import pipeline  # pylint: disable=g-import-not-at-top
  os.makedirs(out, exist_ok=True)
  split = split or config.dataset.eval_split
  summary: dict[str, Any] = {"split": split, "workdirs": list(workdirs),
                             "baseline_workdirs": list(baseline_workdirs), "noreg_workdir": noreg_workdir}

  s, ts = restore_run(config, workdirs[0])
  source = pipeline.VideoSource(s.builder, split)
  names = source.class_names
  import jax  # pylint: disable=g-import-not-at-top
  from vidrec import trainer  # pylint: disable=g-import-not-at-top
  probe = jax.eval_shape(lambda v: s.model.apply(
      v, jax.numpy.zeros(trainer.input_shape(config, 1)), train=False,
      labels=jax.numpy.zeros((1,), jax.numpy.int32)), trainer.variables_of(ts))
  feat_heads = [h for h in ("features_un", "features_csn") if h in probe]
  fv_heads = [h for h in ("mask", "mask_weights", "logits_un") if h in probe]
  run = run_split(config, s, ts, source, feat_heads, fv_heads)
  summary["step"] = int(ts.step)
  summary["per_class_accuracy"] = dict(zip(names, run.accuracy.tolist()))
  distance = config.model.get("csm_distance", "cosine")

  # 1. feature similarity (Eq. 7) vs per-class accuracy
  panels = []
  base_run = None
  if baseline_workdirs:
    bconfig = _baseline_config(config, baseline_variant)
    bs, bts = restore_run(bconfig, baseline_workdirs[0])
    base_run = run_split(bconfig, bs, bts, source, ["features_un"])
    panels.append(SimilarityPanel(f"one-pass: UN features ({baseline_variant})",
                                  feature_similarity_matrix(base_run.features["features_un"],
                                                            base_run.labels, len(names), distance),
                                  base_run.accuracy))
  titles = {"features_un": "U2S: universal features (features_un)",
            "features_csn": "U2S: specific features (features_csn)"}
  for h in feat_heads:
    panels.append(SimilarityPanel(titles[h], feature_similarity_matrix(run.features[h], run.labels,
                                                                       len(names), distance),
                                  run.accuracy))
  csm = csm_of(run.variables, config.model)
  if csm is not None:
    panels.append(SimilarityPanel("U2S: CSM S (training sparsity stats)", csm[0], run.accuracy))
  plot_feature_similarity(panels, names, os.path.join(out, "feature_similarity.png"), dpi=dpi)
  summary["feature_similarity"] = {
      p.title: {"eq7": dict(zip(names, eq7_similarity(p.similarity).tolist())),
                "mean_inter_class": dict(zip(names, mean_inter_class_similarity(p.similarity).tolist())),
                "accuracy": dict(zip(names, np.asarray(p.accuracy).tolist())),
                "pearson_eq7_accuracy": pearson(eq7_similarity(p.similarity), p.accuracy),
                "matrix": np.asarray(p.similarity).tolist()}
      for p in panels}

  # 2. weight similarity with / without category regularisation
  if csm is not None:
    mats = []
    if noreg_workdir:
      _, nts = restore_run(config, noreg_workdir)
      nvars = trainer.variables_of(nts)
      ncsm = csm_of(nvars, config.model)
      mats.append(("without category regularisation (lambda = 0)", weight_similarity_of(nvars, config.loss),
                   None if ncsm is None else ncsm[1] - np.eye(len(names))))
    lam = config.loss.get("w_regular_weight", 0.5)
    mats.append((f"with category regularisation (lambda = {lam:g})",
                 weight_similarity_of(run.variables, config.loss), csm[1] - np.eye(len(names))))
    plot_weight_similarity(mats, names, os.path.join(out, "weight_similarity.png"), dpi=dpi)
    off = ~np.eye(len(names), dtype=bool)
    summary["weight_similarity"] = {
        t: {"mean_off_diagonal": float(sw[off].mean()),
            "mean_on_csm_pairs": (None if p is None or not (p > 0).any() else float(sw[p > 0].mean())),
            "matrix": sw.tolist()} for t, sw, p in mats}

  # 3. masks for the most confusing pair
  pair_sim = csm[0] if csm is not None else panels[-1].similarity
  valid = csm[2] > 0 if csm is not None else None
  ranked = ranked_pairs(pair_sim, valid)
  chosen = parse_pair(pair, names) if pair else most_similar_pair(pair_sim, valid)
  summary["pair"] = {"classes": [names[c] for c in chosen], "indices": list(chosen),
                     "source": "--pair" if pair else ("U2S CSM S (u2s_stats)" if csm is not None
                                                      else "feature similarity"),
                     "similarity": float((pair_sim[chosen[0], chosen[1]] + pair_sim[chosen[1], chosen[0]]) / 2)}
  summary["ranked_pairs"] = [[names[i], names[j], v] for i, j, v in ranked[:10]]
  if "mask" in fv_heads:
    pred = run.scores.argmax(-1)
    picks = []
    for c in chosen:
      vids = np.flatnonzero(run.labels == c)
      right = vids[pred[vids] == c]
      picks.append(int(right[0] if len(right) else vids[0]))
    frames = first_view_frames(config, source, picks)
    rows = []
    for c, v in zip(chosen, picks):
      w = run.first_view["mask_weights"][v]
      sel = ", ".join(short_name(names[k]) for k in np.flatnonzero(w > 0))
      pun = int(run.first_view["logits_un"][v].argmax())
      rows.append(MaskRow(f"video {v}: true '{names[c]}', predicted '{names[int(pred[v])]}'; "
                          f"UN predicted '{short_name(names[pun])}' -> masks of: {sel}",
                          frames[v], run.first_view["mask"][v]))
    plot_pair_masks(rows, os.path.join(out, "pair_masks.png"), dpi=dpi)
    summary["pair"]["videos"] = picks

  # 4. Table IV: one-pass vs U2S on the confusing groups
  if baseline_workdirs:
    pairs = [tuple(chosen)] + [(i, j) for i, j, _ in ranked if {i, j} != set(chosen)]
    groups = confusing_groups(pairs[:max(num_pairs, 1)])
    ours = np.stack([report_accuracy(w, split, names, run.accuracy if k == 0 else None)
                     for k, w in enumerate(workdirs)])
    base = np.stack([report_accuracy(w, split, names, base_run.accuracy if k == 0 else None)
                     for k, w in enumerate(baseline_workdirs)])
    plot_pair_accuracy(groups, names, base, ours, os.path.join(out, "pair_accuracy.png"), dpi=dpi)
    summary["table_iv"] = {
        "groups": [[names[c] for c in g] for g in groups],
        "rows": [{"class": names[c], "one_pass": base[:, c].tolist(), "u2s": ours[:, c].tolist(),
                  "improved": float(np.nanmean(ours[:, c]) - np.nanmean(base[:, c]))}
                 for g in groups for c in g]}
  with open(os.path.join(out, "summary.json"), "w") as f:
    json.dump(summary, f, indent=1)
  return summary


# ---------------------------------------------------------------------------------------------- CLI

def main(argv):
  del argv
  from absl import flags  # pylint: disable=g-import-not-at-top
  f = flags.FLAGS
  split_list = lambda v: [w for w in (v or "").split(",") if w]  # noqa: E731
  summary = make_figures(_CONFIG.value, split_list(f.workdir), f.out, split=f.split,
                         baseline_workdirs=split_list(f.baseline_workdir), noreg_workdir=f.noreg_workdir,
                         pair=f.pair, num_pairs=f.num_pairs, baseline_variant=f.baseline_variant,
                         dpi=f.dpi)
  print(f"pair: {summary['pair']['classes']} (S = {summary['pair']['similarity']:.3f})")
  for title, v in summary["feature_similarity"].items():
    print(f"{title}: Pearson(Eq. 7, accuracy) = {v['pearson_eq7_accuracy']:.3f}")
  for name in sorted(os.listdir(f.out)):
    print(os.path.join(f.out, name))


if __name__ == "__main__":
  from absl import flags  # pylint: disable=g-import-not-at-top
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top

  from vidrec import cli  # pylint: disable=g-import-not-at-top
  _CONFIG = config_flags.DEFINE_config_file("config", None, "Config of the U2S run.", lock_config=True)
  flags.DEFINE_string("workdir", None, "U2S run dir (comma-separated: several runs, e.g. seeds).")
  flags.DEFINE_string("baseline_workdir", None, "One-pass run dir(s), comma-separated.")
  flags.DEFINE_string("noreg_workdir", None, "U2S run trained with --config.loss.w_regular_weight=0.0.")
  flags.DEFINE_string("out", None, "Output directory for the PNGs and summary.json.")
  flags.DEFINE_string("split", None, "Split (default: config.dataset.eval_split).")
  flags.DEFINE_string("pair", None, "Two classes 'a,b' (indices or names) for the mask figure.")
  flags.DEFINE_integer("num_pairs", 4, "Most similar CSM pairs forming the Table IV groups.")
  flags.DEFINE_string("baseline_variant", "one_pass", "model.variant of the baseline run(s).")
  flags.DEFINE_integer("dpi", 80, "PNG resolution.")
  flags.mark_flags_as_required(["config", "workdir", "out"])
  cli.run(main)
