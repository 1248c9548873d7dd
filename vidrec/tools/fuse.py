"""Late fusion of evaluated models: a weighted sum of their per-video scores (e.g. SGN + Frame, paper
000 Tables V-VII; two-stream RGB + flow).

  python -m vidrec.tools.fuse --member W_sgn/eval/test_scores.npz:logits:1.0 \
                              --member W_frame/eval/test_scores.npz:logits:0.5 --out DIR

Each member is ``SCORES.npz[:HEAD[:WEIGHT]]`` (``eval.py`` writes ``<workdir>/eval/<split>_scores.npz``
with the aggregated per-video scores of every evaluated head; HEAD defaults to ``logits``, WEIGHT to
1). Members must be evaluations of the same split (same videos in the same order, same labels).
Fuse scores of the ``mean_softmax`` aggregation (probabilities), as the papers do. Writes
``DIR/eval/fused_report.json`` and a confusion-matrix PNG and prints the table.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
from absl import app, flags

from vidrec import evaluate, fs

_MEMBERS = flags.DEFINE_multi_string("member", [], "SCORES.npz[:HEAD[:WEIGHT]]")
_OUT = flags.DEFINE_string("out", None, "Output folder for the fused report.")


def fuse_scores(score_dict: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> np.ndarray:
  """sum_k weights[k] * score_dict[k] over the names in ``weights`` (each must be present; all [V, C]
  of one shape). Weights are not normalised (that does not change the argmax)."""
  if not weights:
    raise ValueError("fuse_scores: weights is empty")
  missing = [k for k in weights if k not in score_dict]
  if missing:
    raise KeyError(f"fuse_scores: no scores for {missing}; have {sorted(score_dict)}")
  shapes = {k: np.shape(score_dict[k]) for k in weights}
  if len(set(shapes.values())) != 1 or len(next(iter(shapes.values()))) != 2:
    raise ValueError(f"fuse_scores: scores must all be [V, C] of the same shape, got {shapes}")
  return sum(float(w) * np.asarray(score_dict[k], dtype=np.float64) for k, w in weights.items())


def parse_member(spec: str) -> tuple[str, str, float]:
  path, head, weight = (spec.split(":") + ["logits", "1"])[:3]
  return path, head or "logits", float(weight)


def fuse_files(members: list[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
  """Loads the members' scores, checks they score the same videos, returns (fused, labels, classes)."""
  scores, weights, labels, class_names = {}, {}, None, None
  for i, spec in enumerate(members):
    path, head, weight = parse_member(spec)
    data = fs.load_npz(path)
    if head not in data:
      raise KeyError(f"{path} has no head {head!r}; it has {[k for k in data if k not in ('labels', 'class_names')]}")
    if labels is not None and not np.array_equal(labels, data["labels"]):
      raise ValueError(f"{path} scores other videos/labels than {parse_member(members[0])[0]}: "
                       f"fuse evaluations of the same split of the same dataset.")
    labels, class_names = data["labels"], list(data["class_names"])
    scores[f"{i}:{head}"], weights[f"{i}:{head}"] = data[head], weight
  return fuse_scores(scores, weights), labels, class_names


def main(argv):
  del argv
  fused, labels, class_names = fuse_files(_MEMBERS.value)
  report = {"split": "fused", "aggregation": "weighted sum", "checkpoint_step": -1,
            "num_videos": len(labels), "num_views": len(labels), "members": _MEMBERS.value,
            "heads": {"fused": evaluate.video_metrics(fused, labels, class_names)}}
  report.update(report["heads"]["fused"])
  evaluate.write_report(report, _OUT.value, "fused", class_names)
  evaluate.print_table(report)


if __name__ == "__main__":
  flags.mark_flags_as_required(["member", "out"])
  app.run(main)
