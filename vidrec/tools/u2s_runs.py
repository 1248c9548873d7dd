"""Running trained U2S models for the figures: restore a run, score a split through the evaluation path
(``pipeline.eval_dataset``, ``evaluate.collect_view_outputs`` / ``gather_scores``), and read the CSM
statistics and mask kernel out of a state. Single process only."""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Sequence

import numpy as np

from vidrec.errors import MissingDataError


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

  def sampled(self, index, keys, pick) -> tuple[np.ndarray, ...]:
    return self._source.sampled(int(self.indices[int(index)]), keys, pick)

  def __getattr__(self, name):
    return getattr(self._source, name)


def run_split(config, s, ts, source, feature_heads: Sequence[str],
              first_view_heads: Sequence[str] = ()) -> RunOutputs:
  """Scores every view of ``source`` (``pipeline.eval_dataset``, ``evaluate.collect_view_outputs``)."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from vidrec import aggregations, evaluate, trainer  # pylint: disable=g-import-not-at-top
  from vidrec.data import modalities, pipeline  # pylint: disable=g-import-not-at-top
  if jax.process_count() > 1:
    raise NotImplementedError("vidrec.tools.visualize_u2s runs in a single process")
  heads = ("logits",) + tuple(feature_heads) + tuple(first_view_heads)

  @jax.jit
  def apply_fn(variables, video, labels):
    out = s.model.apply(variables, modalities.model_input(video, config.input), train=False, labels=labels)
    return {h: out[h].astype(jnp.float32) for h in heads}

  ds = pipeline.eval_dataset(source, config.input, global_batch=config.eval.batch_size)
  variables = trainer.variables_of(ts)
  views, labels = evaluate.collect_view_outputs(apply_fn, variables, ds, s.mesh, heads,
                                                evaluate.blank_batch(config))
  n = len(source)
  rule = aggregations.AGGREGATIONS.get(config.eval.aggregation)
  scores, label_arr, _ = evaluate.gather_scores(views["logits"], labels, n, s.num_classes, rule)
  report = evaluate.video_metrics(scores, label_arr, source.class_names)
  acc = np.array([np.nan if a is None else a for a in report["per_class_accuracy"].values()])
  feats = {}
  for h in feature_heads:
    dim = next(iter(views[h].values()))[0].shape[-1]
    feats[h] = evaluate.gather_scores(views[h], labels, n, dim, aggregations.mean_logits)[0]
  first = {h: {v: x[0] for v, x in views[h].items()} for h in first_view_heads}
  return RunOutputs(label_arr, scores, acc, feats, first, variables)


def first_view_frames(config, source, indices: Sequence[int]) -> dict[int, np.ndarray]:
  """The first view of each video in ``indices`` as the pipeline ships it (uint8)."""
  from vidrec.data import pipeline  # pylint: disable=g-import-not-at-top
  sub = _SubsetSource(source, indices)
  out: dict[int, np.ndarray] = {}
  ds = pipeline.eval_dataset(sub, config.input, global_batch=config.eval.batch_size)
  for batch in ds.as_numpy_iterator():
    for row in np.flatnonzero(batch["view_index"] == 0):
      out[int(sub.indices[batch["video_index"][row]])] = batch["video"][row]
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
                                 model_cfg.get("csm_distance", "centred_cosine"))
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
