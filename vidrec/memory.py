"""Memory levers of the train step: gradient accumulation, per-device BatchNorm, remat per block.

All act on a *gradient function* ``(params, model_state, batch, rng) -> ((loss, (terms, logits,
new_state)), grads)``, the value-and-grad of the summed loss terms on one batch (``trainer.make_train_step``):

* ``config.accum_steps = k``: the batch is split into k micro-batches that run one after another in a
  ``lax.scan`` (the model state threaded through), and loss, terms and gradients are averaged: one
  optimizer update per step, for the same global ``batch_size``, with the activations of a k-times smaller
  batch. Without BatchNorm (and dropout) this *is* the k-times batch step; with BatchNorm each
  micro-batch is normalised with its own statistics (over batch_size / k clips, across devices) and the
  running statistics are updated k times per step, in micro-batch order.
* ``config.sync_batch_norm = False``: the gradient function runs per device under ``shard_map``, so
  BatchNorm normalises each device's rows with that device's statistics (TSM's recipe, PyTorch's
  unsynchronised BN); loss, terms and gradients are averaged over devices (``pmean``, the all-reduce
  of data parallelism) and so are the updated floating-point variables (BatchNorm running statistics;
  PyTorch DDP instead broadcasts rank 0's buffers). Integer variables (counters) are the same on every
  device. The default (True) is synchronised BatchNorm over the global batch (see ``vidrec.parallel``).
* ``config.model.remat``: every residual block is wrapped in ``nn.remat`` (``layers.remat_block``): only block
  inputs are kept for the backward pass; the rest is recomputed. Same results, less activation memory.
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
from jax.sharding import Mesh, PartitionSpec as P

from vidrec import parallel

GradFn = Callable[[Any, dict, dict, jax.Array], tuple[tuple[jax.Array, tuple[dict, jax.Array, dict]], Any]]


def check_batch(config: ml_collections.ConfigDict, num_devices: int) -> None:
  """Fails before compiling when the batch does not split into ``accum_steps`` micro-batches per device."""
  k = config.get("accum_steps", 1)
  if k < 1 or config.batch_size % (k * num_devices):
    raise ValueError(
        f"accum_steps={k} with batch_size={config.batch_size} on {num_devices} devices: batch_size must be "
        f"a multiple of accum_steps x devices = {max(k, 1) * num_devices}; change --config.accum_steps "
        f"or --config.batch_size.")


def _to_micro(x: jax.Array, k: int, shards: int) -> jax.Array:
  """[B, ...] -> [k, B/k, ...]; micro-batch j takes the j-th slice of every device's rows, so every
  micro-batch stays spread over all devices (no data movement)."""
  m = x.shape[0] // (shards * k)
  x = x.reshape((shards, k, m) + x.shape[1:]).swapaxes(0, 1)
  return x.reshape((k, shards * m) + x.shape[3:])


def _from_micro(x: jax.Array, shards: int) -> jax.Array:
  """Inverse of ``_to_micro``: [k, B/k, ...] -> [B, ...] in the original row order."""
  k, m = x.shape[0], x.shape[1] // shards
  x = x.reshape((k, shards, m) + x.shape[2:]).swapaxes(0, 1)
  return x.reshape((k * shards * m,) + x.shape[3:])


def accumulate(grad_fn: GradFn, k: int, shards: int,
               varying: Callable[[Any], Any] = lambda tree: tree) -> GradFn:
  """``grad_fn`` over k sequential micro-batches, averaged (``shards``: devices the batch rows are
  split over). Gradients are summed in the scan carry, so only one gradient tree is live. Under
  ``shard_map``, ``varying`` marks the initial state and sums as per-device (``jax.lax.pcast``; the
  gradient sum inherits it from the parameters)."""
  if k == 1:
    return grad_fn

  def fn(params, model_state, batch, rng):
    micro = jax.tree.map(lambda x: _to_micro(x, k, shards), batch)

    def body(carry, xs):
      state, loss_sum, terms_sum, grad_sum = carry
      mb, j = xs
      (loss, (terms, logits, state)), grads = grad_fn(params, state, mb, jax.random.fold_in(rng, j))
      add = lambda a, b: jax.tree.map(jnp.add, a, b)  # noqa: E731
      return (state, loss_sum + loss, add(terms_sum, terms), add(grad_sum, grads)), logits

    (loss, (terms, _, _)), _ = jax.eval_shape(grad_fn, params, model_state,
                                              jax.tree.map(lambda x: x[0], micro), rng)
    zeros = lambda t: jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), t)  # noqa: E731
    init = (*varying((model_state, jnp.zeros((), loss.dtype), zeros(terms))),
            jax.tree.map(jnp.zeros_like, params))
    (state, loss, terms, grads), logits = jax.lax.scan(body, init, (micro, jnp.arange(k)))
    mean = lambda t: jax.tree.map(lambda a: a / k, t)  # noqa: E731
    return (loss / k, (mean(terms), _from_micro(logits, shards), state)), mean(grads)

  return fn


def _varying(tree: Any) -> Any:
  """Marks a replicated pytree as per-device inside ``shard_map`` (no data movement)."""
  return jax.tree.map(lambda x: jax.lax.pcast(x, (parallel.DATA,), to="varying"), tree)


def per_device(grad_fn: GradFn, mesh: Mesh) -> GradFn:
  """``grad_fn`` on each device's rows (per-device BatchNorm statistics), averaged over devices.

  The parameters are marked per-device before differentiating, so each device computes the gradient
  of its own loss (differentiating the replicated parameters directly would psum the gradients)."""

  def local(params, model_state, batch, rng):
    rng = jax.random.fold_in(rng, jax.lax.axis_index(parallel.DATA))
    (loss, (terms, logits, state)), grads = grad_fn(_varying(params), model_state, batch, rng)
    mean = lambda t: jax.lax.pmean(t, parallel.DATA)  # noqa: E731
    state = jax.tree.map(lambda a: mean(a) if jnp.issubdtype(a.dtype, jnp.floating)
                         else jax.lax.pmax(a, parallel.DATA), state)
    return (mean(loss), (mean(terms), logits, state)), mean(grads)

  rep, rows = P(), P(parallel.DATA)
  return jax.shard_map(local, mesh=mesh, in_specs=(rep, rep, rows, rep),
                       out_specs=((rep, (rep, rows, rep)), rep))


def gradient_fn(grad_fn: GradFn, config: ml_collections.ConfigDict, mesh: Mesh) -> GradFn:
  """``grad_fn`` with the config's accumulation and BatchNorm mode (module docstring)."""
  k = config.get("accum_steps", 1)
  if config.get("sync_batch_norm", True):
    return accumulate(grad_fn, k, mesh.size)
  return per_device(accumulate(grad_fn, k, 1, _varying), mesh)
