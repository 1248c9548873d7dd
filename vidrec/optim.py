"""Optimizers and learning-rate schedules (config.optimizer), by name."""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import optax

from vidrec import param_paths
from vidrec.errors import UserError
from vidrec.registry import Registry

SCHEDULES: Registry[Callable[[ml_collections.ConfigDict, int], optax.Schedule]] = Registry(
    "optimizer.schedule")
OPTIMIZERS: Registry[Callable[[ml_collections.ConfigDict, optax.Schedule], optax.GradientTransformation]] = \
    Registry("optimizer.name")


@SCHEDULES.register("step")
def _step(cfg: ml_collections.ConfigDict, num_steps: int) -> optax.Schedule:
  """The papers' step decay: lr * gamma^k after each of ``decay_steps`` (a list) or every
  ``decay_every`` steps."""
  boundaries = list(cfg.get("decay_steps") or range(cfg.decay_every, num_steps, cfg.decay_every))
  return optax.piecewise_constant_schedule(cfg.lr, {int(b): cfg.gamma for b in boundaries})


@SCHEDULES.register("cosine")
def _cosine(cfg: ml_collections.ConfigDict, num_steps: int) -> optax.Schedule:
  return optax.cosine_decay_schedule(cfg.lr, max(num_steps - cfg.warmup_steps, 1))


@SCHEDULES.register("constant")
def _constant(cfg: ml_collections.ConfigDict, num_steps: int) -> optax.Schedule:
  del num_steps
  return optax.constant_schedule(cfg.lr)


def make_schedule(cfg: ml_collections.ConfigDict, num_steps: int) -> optax.Schedule:
  """The named schedule, after a linear warm-up of ``warmup_steps`` (0: none)."""
  main = SCHEDULES.get(cfg.schedule)(cfg, num_steps)
  if not cfg.warmup_steps:
    return main
  warmup = optax.linear_schedule(0.0, cfg.lr, cfg.warmup_steps)
  return optax.join_schedules([warmup, main], [cfg.warmup_steps])


def _decay_mask(params):
  """Weight decay on kernels only (not on biases and BatchNorm scales/offsets)."""
  return jax.tree.map(lambda p: p.ndim > 1, params)


@OPTIMIZERS.register("sgd")
def _sgd(cfg: ml_collections.ConfigDict, lr: optax.Schedule) -> optax.GradientTransformation:
  """SGD with momentum and L2 weight decay added to the gradient (Caffe's rule, as the papers)."""
  return optax.chain(optax.add_decayed_weights(cfg.weight_decay, _decay_mask),
                     optax.sgd(lr, momentum=cfg.momentum, nesterov=cfg.get("nesterov", False)))


@OPTIMIZERS.register("adamw")
def _adamw(cfg: ml_collections.ConfigDict, lr: optax.Schedule) -> optax.GradientTransformation:
  return optax.adamw(lr, weight_decay=cfg.weight_decay, mask=_decay_mask)


CLIPS: Registry[Callable[[float], optax.GradientTransformation]] = Registry("optimizer.grad_clip_scope")
CLIPS.add("global", optax.clip_by_global_norm)


@CLIPS.register("module")
def clip_by_module_norm(max_norm: float) -> optax.GradientTransformation:
  """Each top-level module's gradient rescaled to at most ``max_norm`` by its own global norm, so a large
  loss term that reaches only some modules (JointLSTM's lambda * R: the 3D convnets) does not shrink the
  others' step, as one global norm does."""
  clip = optax.clip_by_global_norm(max_norm)

  def update(updates, state, params=None):
    del params
    return {name: clip.update(tree, state)[0] for name, tree in updates.items()}, state

  return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def frozen_labels(patterns: tuple[str, ...]) -> Callable[[Any], Any]:
  """Param tree -> "frozen" / "train" per leaf, by globs over "/"-joined names ("vgg/*").

  Raises UserError naming the pattern when one matches no parameter (a typo would silently train).
  """
  def labels(params: Any) -> Any:
    flat = param_paths.flatten(params)
    for p in patterns:
      if not any(param_paths.matches(name, (p,)) for name in flat):
        raise UserError(f"optimizer.frozen pattern {p!r} matches no parameter of the model; names look like "
                        f"{sorted(flat)[:3]}... Fix the glob (fnmatch, '*' crosses '/') or drop it.")
    return param_paths.unflatten(
        {k: "frozen" if param_paths.matches(k, patterns) else "train" for k in flat})
  return labels


def zero_frozen(grads: Any, patterns: tuple[str, ...]) -> Any:
  """``grads`` with the leaves matching ``patterns`` (``optimizer.frozen``) replaced by zeros.

  Their optimizer gets ``set_to_zero`` anyway; zeroing them in the step as well leaves their backward
  pass unread, so XLA removes it (below a frozen bottom such as U2S's stage-2 Res2D, all of it) and the
  logged gradient norm is that of the trained parameters."""
  if not patterns:
    return grads
  return jax.tree.map(lambda g, label: jnp.zeros_like(g) if label == "frozen" else g, grads,
                      frozen_labels(patterns)(grads))


def make_optimizer(cfg: ml_collections.ConfigDict,
                   num_steps: int) -> tuple[optax.GradientTransformation, optax.Schedule]:
  """The named optimizer after optional gradient-norm clipping (``grad_clip_norm`` > 0, over the whole
  gradient or per top-level module: ``grad_clip_scope``, ``CLIPS``), on every parameter except those matching
  ``cfg.frozen`` (comma-separated globs), which get no update at all: no step, no weight decay, no
  optimizer state (``optax.multi_transform`` with ``set_to_zero``)."""
  schedule = make_schedule(cfg, num_steps)
  tx = OPTIMIZERS.get(cfg.name)(cfg, schedule)
  if cfg.get("grad_clip_norm"):
    tx = optax.chain(CLIPS.get(cfg.get("grad_clip_scope", "global"))(cfg.grad_clip_norm), tx)
  frozen = param_paths.parse_patterns(cfg.get("frozen"))
  if frozen:
    tx = optax.multi_transform({"train": tx, "frozen": optax.set_to_zero()}, frozen_labels(frozen))
  return tx, schedule
