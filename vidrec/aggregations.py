"""Aggregation rules: the logits of one video's views ``[V, C]`` -> one score vector ``[C]`` (higher is
better), chosen by ``config.eval.aggregation``. Pure numpy; sits below config, evaluate and trainer.

Views come ordered by ``view_index``, clip-major (view = clip * num_crops + crop); a rule with a
``num_crops`` parameter (views per clip, e.g. FstCN's ``sci``, which fuses per clip) is also given it
(``apply_rule``)."""
from __future__ import annotations

import inspect
from typing import Callable

import numpy as np

from vidrec.registry import Registry

AGGREGATIONS: Registry[Callable[..., np.ndarray]] = Registry("eval.aggregation")


def apply_rule(rule: Callable[..., np.ndarray], logits: np.ndarray, num_crops: int) -> np.ndarray:
  """``rule(logits)``, or ``rule(logits, num_crops=num_crops)`` for a rule that fuses per clip."""
  if "num_crops" in inspect.signature(rule).parameters:
    return rule(logits, num_crops=num_crops)
  return rule(logits)


def softmax(x: np.ndarray) -> np.ndarray:
  e = np.exp(x - x.max(-1, keepdims=True))
  return e / e.sum(-1, keepdims=True)


@AGGREGATIONS.register("mean_softmax")
def mean_softmax(logits: np.ndarray) -> np.ndarray:
  """Mean of the views' softmax scores (the default)."""
  return softmax(logits).mean(0)


@AGGREGATIONS.register("mean_logits")
def mean_logits(logits: np.ndarray) -> np.ndarray:
  return logits.mean(0)


@AGGREGATIONS.register("max")
def max_softmax(logits: np.ndarray) -> np.ndarray:
  """Per class, the highest softmax score over the views."""
  return softmax(logits).max(0)


@AGGREGATIONS.register("majority_vote")
def majority_vote(logits: np.ndarray) -> np.ndarray:
  """Votes of the views' top-1 predictions (SGN Sec. IV-B); ties and the ranking of classes with equal
  votes are broken by the mean softmax score, which is < 1 so it never outweighs a vote."""
  votes = np.bincount(logits.argmax(-1), minlength=logits.shape[-1]).astype(np.float64)
  return votes + mean_softmax(logits)


def sparsity_concentration_index(p: np.ndarray) -> np.ndarray:
  """FstCN Eq. 5: SCI(p) = (N max_j p_j / sum_j p_j - 1) / (N - 1) over the last axis, in [0, 1]."""
  n = p.shape[-1]
  return (n * p.max(-1) / p.sum(-1) - 1.0) / (n - 1)


@AGGREGATIONS.register("sci")
def sci_fusion(logits: np.ndarray, num_crops: int) -> np.ndarray:
  """FstCN's SCI fusion (Eq. 5-7) of softmax scores: per clip pair, the SCI-weighted mean over its
  ``num_crops`` crops (Eq. 6; the plain mean if every SCI is 0), then the class-wise max over the
  pairs (Eq. 7). The averaging baseline of Sec. 2.4 is ``mean_softmax``."""
  if len(logits) % num_crops:
    raise ValueError(f"sci: {len(logits)} views are not whole clips of {num_crops} crops")
  p = softmax(logits).reshape(-1, num_crops, logits.shape[-1])
  w = sparsity_concentration_index(p)[..., None]
  total = w.sum(1)
  per_clip = np.where(total > 0, (w * p).sum(1) / np.where(total > 0, total, 1.0), p.mean(1))
  return per_clip.max(0)
