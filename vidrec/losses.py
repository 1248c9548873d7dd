"""Loss registry: a loss returns named, already weighted scalar terms; the trainer minimises their sum.

``config.loss.name`` picks the function; every term is logged as ``loss/<term>``.
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import optax

from vidrec.registry import Registry

LossFn = Callable[[dict, jnp.ndarray, ml_collections.ConfigDict, Any], dict[str, jnp.ndarray]]
LOSSES: Registry[LossFn] = Registry("loss.name")


def cross_entropy(logits: jnp.ndarray, labels: jnp.ndarray, label_smoothing: float = 0.0) -> jnp.ndarray:
  """Mean softmax cross-entropy with optional label smoothing (computed in float32)."""
  onehot = optax.smooth_labels(jax.nn.one_hot(labels, logits.shape[-1]), label_smoothing)
  return optax.softmax_cross_entropy(logits.astype(jnp.float32), onehot).mean()


@LOSSES.register("classification")
def classification(outputs: dict, labels: jnp.ndarray, cfg: ml_collections.ConfigDict,
                   params: Any) -> dict[str, jnp.ndarray]:
  """Softmax cross-entropy on ``outputs['logits']``."""
  del params
  return {"ce": cross_entropy(outputs["logits"], labels, cfg.get("label_smoothing", 0.0))}


def total_loss(terms: dict[str, jnp.ndarray]) -> jnp.ndarray:
  return sum(terms.values())
