"""Activation and gradient scale per residual block of a ResNet3D / SGN, on one training batch.

  python -m vidrec.tools.block_scales --config configs/sgn_ucf101.py:synthetic --config.model.sgm_blocks=5b
  python -m vidrec.tools.block_scales --config ... --workdir W      # the trained state in W (latest step)

For every block (``rcb2a`` .. ``rib5b``) it prints, over one training batch in training mode (BatchNorm
on batch statistics, as the train step sees it):

- ``rms(y)``: root mean square of the block's output ``y`` (before any SGM gate), and
  ``rms(dL/dy)``: of the gradient of the training loss with respect to ``y``;
- for an SGB: ``mean(a)`` / ``rms(a)`` of its gate alpha and ``rms(y.a)`` of the gated output;
- ``|dL/dW|`` / ``|W|``: the global norms of the gradient and of the parameters of the block (and of
  its SGM, ``sgm<block>``; and of ``fc``), whose ratio is the relative size of one SGD step per unit
  learning rate.

The gradient with respect to a block output comes from adding a zero tensor to each block's output via
``flax.linen.intercept_methods`` and differentiating with respect to it (the model is unchanged).
This is the tool behind the SGN gate-scale reading (docs/models/sgn.md, docs/experiments.md).
"""
from __future__ import annotations

import json
from typing import Any, Sequence

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from vidrec.models.layers import ResBlock3D


def _rms(x: jnp.ndarray) -> float:
  return float(jnp.sqrt(jnp.mean(jnp.square(jnp.asarray(x, jnp.float32)))))


def _norm(tree: Any) -> float:
  return float(jnp.sqrt(sum(jnp.sum(jnp.square(leaf)) for leaf in jax.tree.leaves(tree))))


def block_scales(model: nn.Module, variables: dict, video: jnp.ndarray, labels: jnp.ndarray,
                 loss_fn: Any, loss_cfg: ml_collections.ConfigDict) -> dict[str, dict[str, float]]:
  """``{module name: {statistic: value}}`` for every ``ResBlock3D`` (see the module docstring) plus
  ``fc`` and the SGMs' parameter norms, from one training-mode forward/backward pass."""
  params = variables["params"]
  state = {k: v for k, v in variables.items() if k != "params"}

  def run(params, eps):
    outputs_y: dict[str, jnp.ndarray] = {}

    def intercept(next_fun, args, kwargs, context):
      out = next_fun(*args, **kwargs)
      if isinstance(context.module, ResBlock3D) and context.method_name == "__call__":
        name = context.module.name
        out = out + eps[name] if name in eps else out
        outputs_y[name] = out
      return out

    with nn.intercept_methods(intercept):
      outputs, _ = model.apply({"params": params, **state}, video, train=True, labels=labels,
                               rngs={"dropout": jax.random.key(0)}, mutable=list(state))
    from vidrec import losses  # pylint: disable=g-import-not-at-top
    loss = losses.total_loss(loss_fn(outputs, labels, loss_cfg, params))
    return loss, (outputs, outputs_y)

  blocks = sorted((k for k in params if k.startswith(("rcb", "rib"))), key=lambda k: k[3:])  # network order
  shapes = jax.eval_shape(run, params, {})[1][1]
  eps = {name: jnp.zeros(shapes[name].shape, shapes[name].dtype) for name in blocks}
  (loss, (outputs, ys)), (g_params, g_eps) = jax.jit(jax.value_and_grad(run, argnums=(0, 1), has_aux=True))(
      params, eps)
  stats: dict[str, dict[str, float]] = {"loss": {"value": float(loss)}}
  for name in blocks:
    row = {"rms(y)": _rms(ys[name]), "rms(dL/dy)": _rms(g_eps[name]),
           "|W|": _norm(params[name]), "|dL/dW|": _norm(g_params[name])}
    alpha = outputs.get(f"alpha/{name[3:]}")
    if alpha is not None:
      sgm = f"sgm{name[3:]}"
      row.update({"mean(a)": float(jnp.mean(alpha)), "rms(a)": _rms(alpha), "rms(y.a)": _rms(ys[name] * alpha)})
      if sgm in params:
        row.update({"|W_sgm|": _norm(params[sgm]), "|dL/dW_sgm|": _norm(g_params[sgm])})
    stats[name] = row
  stats["fc"] = {"|W|": _norm(params["fc"]), "|dL/dW|": _norm(g_params["fc"])}
  return stats


def format_table(stats: dict[str, dict[str, float]]) -> str:
  """Markdown table of :func:`block_scales` (blank where a statistic does not apply)."""
  cols = ["rms(y)", "mean(a)", "rms(a)", "rms(y.a)", "rms(dL/dy)", "|W|", "|dL/dW|", "|W_sgm|", "|dL/dW_sgm|"]
  lines = [f"loss {stats['loss']['value']:.4f}", "", "| module | " + " | ".join(cols) + " |",
           "| --- |" + " --- |" * len(cols)]
  for name, row in stats.items():
    if name != "loss":
      lines.append(f"| {name} | " + " | ".join(f"{row[c]:.3g}" if c in row else "" for c in cols) + " |")
  return "\n".join(lines)


def main(argv: Sequence[str]) -> None:
  del argv
  from absl import flags  # pylint: disable=g-import-not-at-top

  from vidrec import losses, trainer  # pylint: disable=g-import-not-at-top
  from vidrec.data import pipeline  # pylint: disable=g-import-not-at-top
  f = flags.FLAGS
  config = f.config
  s = trainer.setup(config)
  if f.workdir:
    mngr = trainer.checkpoint_manager(f.workdir, config)
    ts, _ = trainer.restore(mngr, s.abstract_state, f.step)
    mngr.close()
  else:
    ts = jax.jit(lambda r: trainer.init_state(s.model, s.tx, config, r))(jax.random.split(jax.random.key(config.seed))[0])
  source = pipeline.VideoSource(s.builder, config.dataset.train_split)
  batch = next(pipeline.train_dataset(source, config.input, global_batch=config.batch_size,
                                      seed=config.seed).as_numpy_iterator())
  stats = block_scales(s.model, flax.core.unfreeze(trainer.variables_of(ts)), jnp.asarray(batch["video"]),
                       jnp.asarray(batch["label"]), losses.LOSSES.get(config.loss.name), config.loss)
  print(format_table(stats))
  if f.out:
    with open(f.out, "w") as fh:
      json.dump(stats, fh, indent=1)


if __name__ == "__main__":
  from absl import flags  # pylint: disable=g-import-not-at-top
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top

  from vidrec import cli  # pylint: disable=g-import-not-at-top
  config_flags.DEFINE_config_file("config", None, "Config of the model (and of the run in --workdir).",
                                  lock_config=True)
  flags.DEFINE_string("workdir", None, "Trained run to read (default: a fresh initialisation, seed config.seed).")
  flags.DEFINE_integer("step", None, "Checkpoint step (default: latest).")
  flags.DEFINE_string("out", None, "Also write the statistics as JSON here.")
  flags.mark_flags_as_required(["config"])
  cli.run(main)
