"""Video-level evaluation over several views per video.

Every view of every test video is scored exactly once (the final partial batch is padded and
masked); the views of a video are aggregated by ``config.eval.aggregation`` (a rule of
``vidrec.aggregations``) into one score vector per video, for every output head in
``config.eval.heads``. Each process scores its own videos; only the additive statistics (confusion
matrix, top-5 hits, view count) are all-reduced across processes. Writes
``DIR/eval/<split>_report.json`` and a confusion-matrix PNG, the per-video scores of every head
(``<split>_scores.npz``, the input of ``python -m vidrec.tools.fuse``), and prints a short table.
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

from vidrec import aggregations, fs, parallel, recovery
from vidrec.data import modalities, pipeline, samplers
from vidrec.errors import UserError


def video_counts(scores: np.ndarray, labels: np.ndarray, num_classes: int) -> dict[str, np.ndarray]:
  """The additive statistics every metric is computed from: the confusion matrix [C, C] (true x
  predicted) and the number of videos whose label is among the 5 highest scores."""
  pred = scores.argmax(-1)
  rank = (scores > scores[np.arange(len(labels)), labels][:, None]).sum(-1)
  confusion = np.zeros((num_classes, num_classes), np.int64)
  np.add.at(confusion, (labels, pred), 1)
  return {"confusion": confusion, "top5": np.array((rank < 5).sum())}


def metrics_from_counts(counts: dict[str, np.ndarray], class_names: list[str]) -> dict:
  """top1/top5/mean class accuracy/per-class accuracy and the confusion matrix from ``video_counts``
  (summed over processes)."""
  confusion = np.asarray(counts["confusion"]).astype(np.int64)
  total = max(int(confusion.sum()), 1)
  support = confusion.sum(1)
  per_class = np.where(support > 0, np.diag(confusion) / np.maximum(support, 1), np.nan)
  return {"top1": float(np.trace(confusion) / total), "top5": float(counts["top5"]) / total,
          "mean_class_accuracy": float(np.nanmean(per_class)),
          "per_class_accuracy": {n: (None if np.isnan(a) else float(a)) for n, a in zip(class_names, per_class)},
          "confusion_matrix": confusion.tolist()}


def video_metrics(scores: np.ndarray, labels: np.ndarray, class_names: list[str]) -> dict:
  """``metrics_from_counts`` of one set of video scores [videos, classes] with their labels."""
  return metrics_from_counts(video_counts(scores, labels, len(class_names)), class_names)


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
        views[h].setdefault(v, {})[int(batch["view_index"][i])] = rows[h][i]
  return views, labels


def output_shapes(config: ml_collections.ConfigDict, model, variables) -> dict[str, jax.ShapeDtypeStruct]:
  """The model's test-time outputs for one view, by ``jax.eval_shape``: nothing is read or compiled."""
  from vidrec import trainer  # pylint: disable=g-import-not-at-top
  video = jnp.zeros(trainer.input_shape(config, 1, test=True), jnp.float32)
  return jax.eval_shape(lambda v: model.apply(v, video, train=False, labels=jnp.zeros((1,), jnp.int32)),
                        variables)


def eval_heads(config: ml_collections.ConfigDict, model, variables) -> tuple[str, ...]:
  """The outputs to score: ``config.eval.heads``, or for ``()`` every output named ``logits*``
  (``logits`` first), checked against the model's outputs before any data is read (an error raised
  while the evaluation dataset's reader threads run can hang the process in TensorFlow)."""
  out = output_shapes(config, model, variables)
  heads = tuple(config.eval.heads) or tuple(sorted((k for k in out if k.startswith("logits")),
                                                   key=lambda k: (k != "logits", k)))
  if missing := set(heads) - set(out):
    raise UserError(f"eval.heads {sorted(missing)} are not outputs of model {config.model.name!r} "
                    f"(it returns {sorted(out)}): set --config.eval.heads accordingly (() = every logits*).")
  return heads


def view_outputs_fn(model, config: ml_collections.ConfigDict, heads: tuple[str, ...]) -> Callable:
  """The jitted ``(variables, uint8 views [B, ...], labels [B]) -> {head: float32 [B, ...]}`` that scores
  test views in eval mode (the views normalised inside; ``collect_view_outputs``'s ``apply_fn``):
  evaluation and ``vidrec.tools.predict`` run this one function."""

  @jax.jit
  def apply_fn(variables, video, labels):
    out = model.apply(variables, modalities.model_input(video, config.input), train=False, labels=labels)
    return {h: out[h].astype(jnp.float32) for h in heads}

  return apply_fn


def blank_batch(config: ml_collections.ConfigDict) -> dict[str, np.ndarray]:
  """An all-masked evaluation batch of this process's shapes (``collect_view_outputs``'s ``blank``)."""
  from vidrec import trainer  # pylint: disable=g-import-not-at-top
  local_batch = config.eval.batch_size // jax.process_count()
  return {"video": np.zeros(trainer.input_shape(config, local_batch, test=True), np.uint8),
          "label": np.zeros(local_batch, np.int32), "video_index": np.zeros(local_batch, np.int32),
          "mask": np.zeros(local_batch, bool)}


def local_video_scores(views: dict[int, dict[int, np.ndarray]], labels: dict[int, int], num_classes: int,
                       rule: Callable, num_crops: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
  """This process's videos aggregated by ``rule`` over their views in view_index order (``num_crops``
  spatial views per clip): (video indices [n], scores [n, C], labels [n], number of views), in video
  order."""
  index = np.array(sorted(views), np.int64)
  scores = np.zeros((len(index), num_classes), np.float64)
  for row, v in enumerate(index):
    logits = np.stack([views[v][k] for k in sorted(views[v])]).astype(np.float64)
    scores[row] = aggregations.apply_rule(rule, logits, num_crops)
  return index, scores, np.array([labels[v] for v in index], np.int64), sum(map(len, views.values()))


def gather_scores(views: dict[int, dict[int, np.ndarray]], labels: dict[int, int], num_videos: int,
                  num_classes: int, rule: Callable, num_crops: int = 1) -> tuple[np.ndarray, np.ndarray, int]:
  """Every video's scores [videos, C] and labels on every process (an all-reduce of each process's
  rows; for analysis tools: ``evaluate`` itself never builds the full array on every host)."""
  index, scores, label_arr, num_views = local_video_scores(views, labels, num_classes, rule, num_crops)
  full = {"scores": np.zeros((num_videos, num_classes), np.float64), "labels": np.zeros(num_videos, np.int64),
          "views": np.array(num_views)}
  full["scores"][index], full["labels"][index] = scores, label_arr
  full = parallel.process_sum(full)
  return full["scores"], full["labels"], int(full["views"])


def write_scores(workdir: str, split: str, index: np.ndarray, labels: np.ndarray,
                 scores: dict[str, np.ndarray], class_names: list[str]) -> None:
  """``<workdir>/eval/<split>_scores.npz`` (labels, class_names and one [videos, C] array per head, in
  video order). With several processes each writes its rows to a shard file and process 0 merges
  them, so only process 0 ever holds every video's scores; the workdir must be shared (``gs://``)."""
  out = fs.makedirs(fs.path(workdir) / "eval")
  rows = {"index": index, "labels": labels, **scores}
  if jax.process_count() > 1:
    shard = lambda p: out / f"{split}_scores.process{p}.npz"  # noqa: E731
    fs.save_npz(shard(jax.process_index()), **rows)
    multihost_utils.sync_global_devices("vidrec_eval_score_shards")
    if jax.process_index() != 0:
      return
    missing = [str(shard(p)) for p in range(jax.process_count()) if not shard(p).exists()]
    if missing:
      raise FileNotFoundError(f"Score shards {missing} were written on other hosts but are not visible "
                              f"here: use a workdir every host shares (e.g. --workdir gs://BUCKET/run).")
    shards = [fs.load_npz(shard(p)) for p in range(jax.process_count())]
    rows = {k: np.concatenate([s[k] for s in shards]) for k in rows}
    for p in range(jax.process_count()):
      shard(p).unlink()
  order = np.argsort(rows.pop("index"))
  fs.save_npz(out / f"{split}_scores.npz", class_names=np.array(class_names),
              **{k: v[order] for k, v in rows.items()})


def num_test_crops(cfg: ml_collections.ConfigDict) -> int:
  """Spatial views per temporal clip (their count does not depend on the frame size)."""
  return len(samplers.spatial_views(cfg.crop, cfg.crop, cfg.crop, cfg.test_spatial, cfg.test_flip))


def evaluate(config: ml_collections.ConfigDict, workdir: str, split: str | None = None,
             checkpoint_step: int | None = None) -> dict:
  """Restores a checkpoint, scores every view of ``split`` and writes/prints the report."""
  from vidrec import trainer  # pylint: disable=g-import-not-at-top
  s = trainer.setup(config)
  split = split or config.dataset.eval_split
  source = pipeline.VideoSource(s.builder, split)
  mngr = trainer.checkpoint_manager(workdir, config)
  if checkpoint_step is None and config.eval.checkpoint_step >= 0:
    checkpoint_step = config.eval.checkpoint_step
  checkpoint_step = recovery.check_step(mngr, checkpoint_step, workdir)
  recovery.check_classes(trainer.checkpoint_data(mngr, checkpoint_step).get("class_names"),
                         source.class_names, config.dataset.name)
  ts, _ = trainer.restore(mngr, s.abstract_state, checkpoint_step)
  mngr.close()
  parallel.check_batch_size(config.eval.batch_size)
  heads = eval_heads(config, s.model, trainer.variables_of(ts))
  apply_fn = view_outputs_fn(s.model, config, heads)
  ds = pipeline.eval_dataset(source, config.input, global_batch=config.eval.batch_size,
                             process_index=jax.process_index(), process_count=jax.process_count())
  views, labels = collect_view_outputs(apply_fn, trainer.variables_of(ts), ds, s.mesh, heads,
                                       blank_batch(config))
  rule = aggregations.AGGREGATIONS.get(config.eval.aggregation)
  scored = scored_videos(labels, source, config.dataset.max_unreadable_fraction)
  report = {"split": split, "aggregation": config.eval.aggregation, "checkpoint_step": int(ts.step),
            "num_videos": len(source), "heads": {},
            "unreadable_videos": [int(i) for i in np.flatnonzero(~scored)]}
  video_scores, counts = {}, {}
  for h in heads:
    index, video_scores[h], label_arr, num_views = local_video_scores(views[h], labels, s.num_classes, rule,
                                                                      num_test_crops(config.input))
    counts[h] = video_counts(video_scores[h], label_arr, s.num_classes)
  counts = parallel.process_sum({"heads": counts, "views": np.array(num_views)})
  report["heads"] = {h: metrics_from_counts(counts["heads"][h], source.class_names) for h in heads}
  report["num_views"] = int(counts["views"])
  report.update({k: v for k, v in report["heads"][heads[0]].items()})
  write_scores(workdir, split, index, label_arr, video_scores, source.class_names)
  if jax.process_index() == 0:
    write_report(report, workdir, split, source.class_names)
    print_table(report)
  return report


def scored_videos(labels: dict[int, int], source: pipeline.VideoSource, max_fraction: float) -> np.ndarray:
  """Mask of the videos some process scored; the others had frames that do not decode and were left
  out by the pipeline (listed in the report; more than ``max_fraction`` of them is an error)."""
  scored = np.zeros(len(source), np.int32)
  scored[list(labels)] = 1
  scored = parallel.process_sum(scored)
  missing = np.flatnonzero(scored == 0)
  if len(missing) > max_fraction * len(source):
    names = ", ".join(f"#{i}" for i in missing[:20])
    raise UserError(
        f"{len(missing)} of {len(source)} {source.split} videos could not be read or decoded: {names}. "
        f"Re-prepare the dataset, check that the input config fits its videos (input.crop, "
        f"input.resize), or raise --config.dataset.max_unreadable_fraction.")
  return scored > 0


def write_report(report: dict, workdir: str, split: str, class_names: list[str]) -> None:
  """``<workdir>/eval/<split>_report.json`` and ``<split>_confusion.png``."""
  out = fs.makedirs(fs.path(workdir) / "eval")
  (out / f"{split}_report.json").write_text(json.dumps(report, indent=1))
  plot_confusion(np.array(report["confusion_matrix"]), class_names, out / f"{split}_confusion.png")


def plot_confusion(confusion: np.ndarray, class_names: list[str], path: str | os.PathLike) -> None:
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
  with fs.path(path).open("wb") as f:
    fig.savefig(f, format="png", dpi=100)
  plt.close(fig)


def print_table(report: dict) -> None:
  print(f"\n{report['split']}: {report['num_videos']} videos, {report['num_views']} views, "
        f"aggregation={report['aggregation']}, checkpoint step {report['checkpoint_step']}")
  print(f"{'head':<16}{'top1':>8}{'top5':>8}{'mean cls':>10}")
  for h, m in report["heads"].items():
    print(f"{h:<16}{m['top1']:>8.4f}{m['top5']:>8.4f}{m['mean_class_accuracy']:>10.4f}")
