"""Aggregation rules: the logits of one video's views ``[V, C]`` -> one score vector ``[C]`` (higher is
better), chosen by ``config.eval.aggregation``. Pure numpy; sits below config, evaluate and trainer."""
from __future__ import annotations

from typing import Callable

import numpy as np

from vidrec.registry import Registry

AGGREGATIONS: Registry[Callable[[np.ndarray], np.ndarray]] = Registry("eval.aggregation")


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
