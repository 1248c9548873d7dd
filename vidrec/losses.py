"""Loss registry: a loss returns named, already weighted scalar terms; the trainer minimises their sum.

``config.loss.name`` picks the function; every term is logged as ``loss/<term>``.

A model's training diagnostics ride beside the terms, not minimised: a module calls
``self.sow(METRICS, name, value)`` in training and the train step logs the mean of each as
``metrics/<module path>/<name>`` (``sown_metrics``); ``ALERTS`` maps such a name to a check whose
message the trainer prints as a warning at each log step (e.g. ATW's attention dying).
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import core as flax_core, traverse_util

from vidrec.registry import Registry

LossFn = Callable[[dict, jnp.ndarray, ml_collections.ConfigDict, Any], dict[str, jnp.ndarray]]
LOSSES: Registry[LossFn] = Registry("loss.name")
METRICS = "metrics"   # the variable collection models sow their diagnostics into
# ``metrics/<module path>/<name>`` -> (logged mean -> warning message, or None when healthy).
ALERTS: Registry[Callable[[float], str | None]] = Registry("metric alert")


def sown_metrics(sown: Any) -> dict[str, jnp.ndarray]:
  """The ``METRICS`` collection of one apply -> ``{"metrics/<module path>/<name>": mean over its values}``."""
  flat = traverse_util.flatten_dict(flax_core.unfreeze(sown), sep="/")
  return {f"{METRICS}/{k}": jnp.mean(jnp.stack([jnp.mean(x) for x in jax.tree.leaves(v)]))
          for k, v in flat.items()}


def alerts(scalars: dict[str, float]) -> list[str]:
  """The warnings ``ALERTS`` raises for the logged ``scalars``."""
  found = (ALERTS.get(name)(scalars[name]) for name in ALERTS.names() if name in scalars)
  return [message for message in found if message]


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
