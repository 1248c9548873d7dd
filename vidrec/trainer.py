"""The shared trainer: config -> model -> loss terms -> one jit-compiled step -> metrics/checkpoints.

State is replicated over the mesh, batches are sharded on ``data``, the state buffer is donated.
Checkpoints (orbax, async) hold the full train state, including every non-parameter variable
collection (BatchNorm statistics, per-class statistics, ...) and the input position (= next step).
"""
from __future__ import annotations

import time
from typing import Any, Callable

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import orbax.checkpoint as ocp
from absl import logging

from vidrec import config as config_lib
from vidrec import (fs, init_from, losses, memory, metrics, optim, parallel, param_paths, preemption, profiling,
                    recovery, run_record)
from vidrec.data import datasets, modalities, pipeline
from vidrec.errors import UserError
from vidrec.models import build_model


class TrainState(flax.struct.PyTreeNode):
  step: jax.Array
  params: Any
  model_state: dict            # every non-"params" variable collection
  opt_state: Any


class NonFiniteLossError(UserError, FloatingPointError):
  """A step produced a non-finite loss, gradient or state; nothing of it was checkpointed."""


def all_finite(tree) -> jax.Array:
  """True when every floating-point leaf of ``tree`` is finite (one fused reduction)."""
  leaves = [jnp.isfinite(x).all() for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)]
  return jnp.stack(leaves).all() if leaves else jnp.array(True)


_LENGTH_PROBE = 1000   # a video length at which to ask the test sampler for the length of its views


def variables_of(ts: TrainState) -> dict:
  return {"params": ts.params, **ts.model_state}


def input_shape(config: ml_collections.ConfigDict, batch: int, test: bool = False) -> tuple[int, ...]:
  """Shape of a batch of videos as the pipeline produces it: the sampler says its clip length (``test``:
  the length of one test view, which the test sampler gives), the modality how many of those frames
  form one input step and its channels."""
  sampler = pipeline.make_sampler(config.input)
  frames = sampler.test(_LENGTH_PROBE).shape[1] if test else sampler.num_frames
  return modalities.input_shape(config.input, batch, frames)


def init_state(model: nn.Module, tx: optax.GradientTransformation, config: ml_collections.ConfigDict,
               rng: jax.Array) -> TrainState:
  video = jnp.zeros(input_shape(config, 1), jnp.float32)
  variables = model.init({"params": rng, "dropout": rng}, video, train=False,
                         labels=jnp.zeros((1,), jnp.int32))
  variables = flax.core.unfreeze(variables)
  variables.pop(losses.METRICS, None)
  params = variables.pop("params")
  return TrainState(step=jnp.zeros((), jnp.int32), params=params, model_state=variables,
                    opt_state=tx.init(params))


# Initialisation runs once: on XLA:CPU its compilation (one kernel per parameter's random init) costs
# far more than the run, ~7x less CPU with the backend's optimisations off (U2S :synthetic, 16.6 -> 2.4 s).
_INIT_COMPILER_OPTIONS = {"cpu": {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}}


def initial_state(model: nn.Module, tx: optax.GradientTransformation, config: ml_collections.ConfigDict,
                  rng: jax.Array, sharding: Any) -> TrainState:
  """``init_state`` compiled cheaply (``_INIT_COMPILER_OPTIONS``) and placed with ``sharding``."""
  fn = jax.jit(lambda r: init_state(model, tx, config, r), out_shardings=sharding)
  options = _INIT_COMPILER_OPTIONS.get(jax.default_backend())
  return fn.lower(rng).compile(compiler_options=options)(rng)


def _float32(x: jax.Array) -> jax.Array:
  return x.astype(jnp.float32) if jnp.issubdtype(x.dtype, jnp.floating) else x


def make_train_step(model: nn.Module, tx: optax.GradientTransformation,
                    loss_fn: losses.LossFn, loss_cfg: ml_collections.ConfigDict,
                    schedule: optax.Schedule, base_rng: jax.Array,
                    config: ml_collections.ConfigDict | None = None, mesh: Any = None) -> Callable:
  """(state, batch) -> (state, metrics); one step of SGD on the sum of the named loss terms. With
  ``config`` and ``mesh``: the batch's uint8 videos normalised on the device (``modalities.model_input``),
  its gradient accumulation and BatchNorm mode (``vidrec.memory``); without: float model inputs."""

  def grad_fn(params, model_state: dict, batch: dict, rng: jax.Array):
    def objective(params):
      outputs, new_state = model.apply(
          {"params": params, **model_state}, batch["video"], train=True, labels=batch["label"],
          rngs={"dropout": rng}, mutable=[*model_state, losses.METRICS])
      new_state = dict(new_state)
      sown = losses.sown_metrics(new_state.pop(losses.METRICS, {}))   # logged, not minimised
      outputs = jax.tree.map(_float32, outputs)       # low-precision compute, float32 loss
      terms = loss_fn(outputs, batch["label"], loss_cfg, params)
      return losses.total_loss(terms), ({**terms, **sown}, outputs["logits"], new_state)
    return jax.value_and_grad(objective, has_aux=True)(params)

  frozen = ()
  if config is not None:
    grad_fn = memory.gradient_fn(grad_fn, config, mesh)
    frozen = param_paths.parse_patterns(config.optimizer.get("frozen"))

  def step(ts: TrainState, batch: dict) -> tuple[TrainState, dict]:
    if config is not None:
      batch = {**batch, "video": modalities.model_input(batch["video"], config.input)}
    rng = jax.random.fold_in(base_rng, ts.step)
    (loss, (terms, logits, new_state)), grads = grad_fn(ts.params, ts.model_state, batch, rng)
    grads = optim.zero_frozen(grads, frozen)
    updates, opt_state = tx.update(grads, ts.opt_state, ts.params)
    ts = ts.replace(step=ts.step + 1, params=optax.apply_updates(ts.params, updates),
                    model_state=new_state, opt_state=opt_state)
    out = {"loss": loss, "lr": schedule(ts.step - 1),
           "top1": metrics.topk_correct(logits, batch["label"], 1).mean(),
           "top5": metrics.topk_correct(logits, batch["label"], 5).mean(),
           "grad_norm": optax.global_norm(grads),
           "finite": all_finite((loss, grads, ts))}     # popped by the loop, never logged
    out.update({k if k.startswith(losses.METRICS) else f"loss/{k}": v for k, v in terms.items()})
    return ts, out

  return step


def checkpoint_manager(workdir: str, config: ml_collections.ConfigDict) -> ocp.CheckpointManager:
  return ocp.CheckpointManager(
      fs.path(workdir) / fs.CHECKPOINT_DIR,
      options=ocp.CheckpointManagerOptions(max_to_keep=config.keep_checkpoints,
                                           enable_async_checkpointing=True))


def restore(mngr: ocp.CheckpointManager, abstract: TrainState, step: int | None = None) -> tuple[TrainState, dict]:
  """Restores ``step`` (default latest) into the shapes/shardings of ``abstract``."""
  step = mngr.latest_step() if step is None else step
  restored = mngr.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(abstract), data=ocp.args.JsonRestore()))
  return restored.state, restored.data


def checkpoint_data(mngr: ocp.CheckpointManager, step: int) -> dict:
  """The JSON metadata saved with ``step`` (next_step, seed, global_batch, dataset, class_names)."""
  return mngr.restore(step, args=ocp.args.Composite(data=ocp.args.JsonRestore())).data


def save(mngr: ocp.CheckpointManager, ts: TrainState, config: ml_collections.ConfigDict,
         class_names: list[str] | None = None) -> None:
  step = int(ts.step)
  mngr.save(step, force=True, args=ocp.args.Composite(
      state=ocp.args.StandardSave(ts),
      data=ocp.args.JsonSave({"next_step": step, "seed": config.seed,
                              "global_batch": config.batch_size, "dataset": config.dataset.name,
                              "class_names": class_names})))


class Setup(flax.struct.PyTreeNode):
  """Everything ``train``/``evaluate``/``bench`` build from a config (not a pytree of arrays)."""
  model: nn.Module = flax.struct.field(pytree_node=False)
  mesh: Any = flax.struct.field(pytree_node=False)
  builder: Any = flax.struct.field(pytree_node=False)
  tx: Any = flax.struct.field(pytree_node=False)
  schedule: Any = flax.struct.field(pytree_node=False)
  abstract_state: Any = flax.struct.field(pytree_node=False)
  num_classes: int = flax.struct.field(pytree_node=False)


def setup(config: ml_collections.ConfigDict, num_classes: int | None = None) -> Setup:
  """Validates the config, opens the dataset (not where ``num_classes`` is given, e.g. from a workdir's
  ``dataset.json``: ``builder`` is then None), builds model/optimizer and the sharded state layout."""
  config_lib.validate(config)
  parallel.check_batch_size(config.batch_size)
  memory.check_batch(config, jax.device_count())
  builder = None if num_classes else datasets.load_builder(config.dataset.name, config.dataset.data_dir or None)
  num_classes = num_classes or builder.info.features["label"].num_classes
  model = build_model(config.model, num_classes)
  tx, schedule = optim.make_optimizer(config.optimizer, config.num_train_steps)
  mesh = parallel.make_mesh()
  abstract = jax.eval_shape(lambda r: init_state(model, tx, config, r), jax.random.key(0))
  abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=parallel.replicated(mesh)),
                          abstract)
  return Setup(model, mesh, builder, tx, schedule, abstract, num_classes)


def train(config: ml_collections.ConfigDict, workdir: str, allow_config_change: bool = False) -> TrainState:
  """Trains (or resumes) until ``num_train_steps``; returns the final state.

  Raises ``preemption.Preempted`` after checkpointing when SIGTERM/SIGINT arrives (docs/reliability.md).
  """
  s = setup(config)
  source = pipeline.VideoSource(s.builder, config.dataset.train_split)
  loss_fn = losses.LOSSES.get(config.loss.name)
  rng = jax.random.key(config.seed)
  init_rng, step_rng = jax.random.split(rng)
  repl, batch_sharding = parallel.replicated(s.mesh), parallel.data_sharded(s.mesh)

  mngr = checkpoint_manager(workdir, config)
  pretrained = init_from.prepare(config, s.abstract_state, resuming=mngr.latest_step() is not None)
  if mngr.latest_step() is not None:
    run_record.check_resume(workdir, config, allow_config_change)
  restored = recovery.restore_newest_readable(mngr, lambda step: restore(mngr, s.abstract_state, step))
  if restored is not None:
    ts, data = restored
    recovery.check_classes(data.get("class_names"), source.class_names, config.dataset.name)
    logging.warning("Resumed from step %d (%s)", int(ts.step),
                    {k: v for k, v in data.items() if k != "class_names"})
  else:
    ts = initial_state(s.model, s.tx, config, init_rng, repl)
    ts = init_from.apply(ts, pretrained, s.tx)
  start = int(ts.step)
  run_record.record_start(workdir, config, start, s.builder)
  metrics.drop_rows_after(workdir, start)       # steps after the checkpoint are re-run: logged once

  step_fn = jax.jit(make_train_step(s.model, s.tx, loss_fn, config.loss, s.schedule, step_rng, config, s.mesh),
                    in_shardings=(repl, batch_sharding), out_shardings=(repl, repl), donate_argnums=0)
  ds = pipeline.train_dataset(source, config.input, global_batch=config.batch_size, seed=config.seed,
                              start_step=start, process_index=jax.process_index(),
                              process_count=jax.process_count())
  batches = ds.as_numpy_iterator()
  writer = metrics.MetricWriter(workdir, config.num_train_steps)
  unreadable = recovery.UnreadableVideos(len(source), config.dataset.max_unreadable_fraction,
                                         lambda i: _video_id(source, i))
  guard = preemption.PreemptionGuard(mngr.reached_preemption).install()
  trace = profiling.StepTrace(config.profile_steps, workdir)
  history: list[dict] = []
  pending: dict | None = None
  compiled = None
  try:
    for step in range(start, config.num_train_steps):
      batch = next(batches)
      unreadable.add(batch.pop("unreadable"))
      batch = parallel.to_global(batch, s.mesh)
      if compiled is None:
        compiled = profiling.compile_step(step_fn, ts, batch)
        t_log = time.time()               # the first logged clips/s counts steps, not compilation
      trace.before(step + 1)
      ts, m = compiled(ts, batch)
      trace.after(step + 1, m)
      _check_finite(pending)            # the previous step: checked while this one runs
      pending = {"step": step + 1, "loss": m["loss"], "grad_norm": m["grad_norm"], "finite": m.pop("finite")}
      history.append(m)
      done = step + 1
      stop = guard.reached(done)        # a preemption notice: the same answer on every process
      if done % config.log_every_steps == 0 or done == config.num_train_steps:
        _check_finite(pending)
        scalars = metrics.mean_metrics(history)
        scalars["clips_per_sec"] = len(history) * config.batch_size / (time.time() - t_log)
        scalars.update(unreadable.counts())
        writer.write(done, scalars)
        writer.progress(done, scalars)
        for alert in losses.alerts(scalars):
          logging.warning(alert)
        history, t_log = [], time.time()
      if done % config.checkpoint_every_steps == 0 or done == config.num_train_steps or stop:
        _check_finite(pending)
        save(mngr, ts, config, source.class_names)
      if stop:
        raise preemption.Preempted(done, guard.signal_name)
  finally:
    trace.stop()
    guard.uninstall()
    mngr.wait_until_finished()
    mngr.close()
    writer.close()
  return ts


def _video_id(source: pipeline.VideoSource, index: int) -> str:
  return source.parse(source.read(index))["video_id"].numpy().decode()


def _check_finite(pending: dict | None) -> None:
  """Stops training at a step whose loss, gradient or updated state (parameters, optimiser and model
  state) is not finite, before any checkpoint of that state is written."""
  if pending is None or bool(jax.device_get(pending["finite"])):
    return
  loss, grad_norm = (float(jax.device_get(pending[k])) for k in ("loss", "grad_norm"))
  what = ("Loss" if not np.isfinite(loss) else "The gradient" if not np.isfinite(grad_norm)
          else "The updated state")
  raise NonFiniteLossError(
      f"{what} is not finite at step {pending['step']} (loss {loss}, gradient norm {grad_norm}); stopping. "
      f"The last checkpoint (written before this step) is intact: lower optimizer.lr or enable "
      f"optimizer.grad_clip_norm, then re-run the same command to resume from it.")
