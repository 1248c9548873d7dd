"""Video-level evaluation over several views per video.

Every view of every test video is scored exactly once (the final partial batch is padded and
masked); the views of a video are aggregated by ``config.eval.aggregation`` (a rule of
``vidrec.aggregations``) into one score vector per video, for every output head in
``config.eval.heads``. Writes ``DIR/eval/<split>_report.json`` and a confusion-matrix PNG, the
per-video scores of every head (``<split>_scores.npz``, the input of
``python -m vidrec.tools.fuse``), and prints a short table.
"""
from __future__ import annotations

import json
import os
from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.experimental import multihost_utils

from vidrec import aggregations, parallel
from vidrec.data import pipeline


def video_metrics(scores: np.ndarray, labels: np.ndarray, class_names: list[str]) -> dict:
  """top1/top5/mean class accuracy/per-class accuracy and the confusion matrix from video scores."""
  num_classes = len(class_names)
  pred = scores.argmax(-1)
  rank = (scores > scores[np.arange(len(labels)), labels][:, None]).sum(-1)
  confusion = np.zeros((num_classes, num_classes), np.int64)
  np.add.at(confusion, (labels, pred), 1)
  support = confusion.sum(1)
  per_class = np.where(support > 0, np.diag(confusion) / np.maximum(support, 1), np.nan)
  return {"top1": float((pred == labels).mean()), "top5": float((rank < 5).mean()),
          "mean_class_accuracy": float(np.nanmean(per_class)),
          "per_class_accuracy": {n: (None if np.isnan(a) else float(a)) for n, a in zip(class_names, per_class)},
          "confusion_matrix": confusion.tolist()}


def collect_view_outputs(apply_fn: Callable, variables, ds, mesh, heads: tuple[str, ...],
                         blank: dict[str, np.ndarray]) -> tuple[dict, dict[int, int]]:
  """Runs every view through the model; returns ({head: {video_index: [view logits]}}, {video_index:
  label}) for this process's videos. ``blank`` is an all-masked batch of the local batch's shapes.

  Processes may hold different numbers of batches; all of them keep stepping (with fully masked
  batches) until every process is done, since each step is a collective computation.
  """
  views: dict[str, dict[int, list[np.ndarray]]] = {h: {} for h in heads}
  labels: dict[int, int] = {}
  batches = pipeline.padded_batches(ds, len(blank["mask"]))
  while True:
    batch = next(batches, None)
    has_data = batch is not None
    if jax.process_count() > 1:
      has_data_any = bool(multihost_utils.process_allgather(np.array(has_data)).any())
    else:
      has_data_any = has_data
    if not has_data_any:
      break
    batch = blank if batch is None else batch
    inputs = parallel.to_global({"video": batch["video"], "label": batch["label"]}, mesh)
    outputs = apply_fn(variables, inputs["video"], inputs["label"])
    rows = {h: parallel.local_rows(outputs[h]) for h in heads}
    for i in np.flatnonzero(batch["mask"]):
      v = int(batch["video_index"][i])
      labels[v] = int(batch["label"][i])
      for h in heads:
        views[h].setdefault(v, []).append(rows[h][i])
  return views, labels


def gather_scores(views: dict[int, list[np.ndarray]], labels: dict[int, int], num_videos: int,
                  num_classes: int, rule: Callable) -> tuple[np.ndarray, np.ndarray, int]:
  """Aggregates each local video's views, then sums across processes (each video lives on one)."""
  scores = np.zeros((num_videos, num_classes), np.float64)
  label_arr = np.zeros((num_videos,), np.int64)
  seen = np.zeros((num_videos,), np.int64)
  for v, logits in views.items():
    scores[v] = rule(np.stack(logits).astype(np.float64))
    label_arr[v] = labels[v]
    seen[v] = len(logits)
  if jax.process_count() > 1:
    scores, label_arr, seen = (multihost_utils.process_allgather(x).sum(0)
                               for x in (scores, label_arr, seen))
  return scores, label_arr, int(seen.sum())


def evaluate(config: ml_collections.ConfigDict, workdir: str, split: str | None = None,
             checkpoint_step: int | None = None) -> dict:
  """Restores a checkpoint, scores every view of ``split`` and writes/prints the report."""
  from vidrec import trainer  # pylint: disable=g-import-not-at-top
  s = trainer.setup(config)
  split = split or config.dataset.eval_split
  source = pipeline.VideoSource(s.builder, split)
  mngr = trainer.checkpoint_manager(workdir, config)
  if mngr.latest_step() is None:
    raise FileNotFoundError(f"No checkpoint in {workdir}/checkpoints: train first "
                            f"(python train.py --config ... --workdir {workdir}).")
  if checkpoint_step is None and config.eval.checkpoint_step >= 0:
    checkpoint_step = config.eval.checkpoint_step
  ts, _ = trainer.restore(mngr, s.abstract_state, checkpoint_step)
  mngr.close()
  parallel.check_batch_size(config.eval.batch_size)
  heads = tuple(config.eval.heads)

  @jax.jit
  def apply_fn(variables, video, labels):
    out = s.model.apply(variables, video, train=False, labels=labels)
    if missing := set(heads) - set(out):
      raise ValueError(f"eval.heads {sorted(missing)} are not outputs of model {config.model.name!r} "
                       f"(it returns {sorted(out)}): set --config.eval.heads accordingly.")
    return {h: out[h].astype(jnp.float32) for h in heads}

  ds = pipeline.eval_dataset(source, config.input, global_batch=config.eval.batch_size,
                             process_index=jax.process_index(), process_count=jax.process_count())
  local_batch = config.eval.batch_size // jax.process_count()
  blank = {"video": np.zeros(trainer.input_shape(config, local_batch, test=True), np.float32),
           "label": np.zeros(local_batch, np.int32), "video_index": np.zeros(local_batch, np.int32),
           "mask": np.zeros(local_batch, bool)}
  views, labels = collect_view_outputs(apply_fn, trainer.variables_of(ts), ds, s.mesh, heads, blank)
  rule = aggregations.AGGREGATIONS.get(config.eval.aggregation)
  report = {"split": split, "aggregation": config.eval.aggregation, "checkpoint_step": int(ts.step),
            "num_videos": len(source), "heads": {}}
  video_scores = {}
  for h in heads:
    video_scores[h], label_arr, num_views = gather_scores(views[h], labels, len(source), s.num_classes, rule)
    report["heads"][h] = video_metrics(video_scores[h], label_arr, source.class_names)
    report["num_views"] = num_views
  report.update({k: v for k, v in report["heads"][heads[0]].items()})
  if jax.process_index() == 0:
    write_report(report, workdir, split, source.class_names)
    np.savez(os.path.join(workdir, "eval", f"{split}_scores.npz"), labels=label_arr,
             class_names=np.array(source.class_names), **video_scores)
    print_table(report)
  return report


def write_report(report: dict, workdir: str, split: str, class_names: list[str]) -> None:
  """``<workdir>/eval/<split>_report.json`` and ``<split>_confusion.png``."""
  out = os.path.join(workdir, "eval")
  os.makedirs(out, exist_ok=True)
  with open(os.path.join(out, f"{split}_report.json"), "w") as f:
    json.dump(report, f, indent=1)
  plot_confusion(np.array(report["confusion_matrix"]), class_names,
                 os.path.join(out, f"{split}_confusion.png"))


def plot_confusion(confusion: np.ndarray, class_names: list[str], path: str) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  n = len(class_names)
  size = max(6.0, 0.35 * n)
  fig, ax = plt.subplots(figsize=(size, size))
  norm = confusion / np.maximum(confusion.sum(1, keepdims=True), 1)
  ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
  if n <= 60:
    ax.set_xticks(range(n), class_names, rotation=90, fontsize=7)
    ax.set_yticks(range(n), class_names, fontsize=7)
  ax.set_xlabel("predicted")
  ax.set_ylabel("true")
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def print_table(report: dict) -> None:
  print(f"\n{report['split']}: {report['num_videos']} videos, {report['num_views']} views, "
        f"aggregation={report['aggregation']}, checkpoint step {report['checkpoint_step']}")
  print(f"{'head':<16}{'top1':>8}{'top5':>8}{'mean cls':>10}")
  for h, m in report["heads"].items():
    print(f"{h:<16}{m['top1']:>8.4f}{m['top5']:>8.4f}{m['mean_class_accuracy']:>10.4f}")
