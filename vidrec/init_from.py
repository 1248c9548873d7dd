"""Fine-tuning from pretrained variables: ``--config.init_from=DIR`` (see docs/pretrained.md).

DIR holds ``variables.msgpack`` (flax msgpack of ``{"params": ..., "batch_stats": ...}``, numpy leaves)
and ``meta.json`` (where the weights came from and the ``config.model`` they fit), as written by
``python -m vidrec.convert``, or is the workdir of a vidrec run (pre-training on one dataset,
fine-tuning on another): its newest checkpoint's parameters and model state are read
(``run_variables``). A fresh training run (not a resumed one: there the checkpoint wins) takes every variable whose name (``collection/module/.../leaf``) and shape match the model's, keeps the
fresh initialisation of those that match a ``config.init_skip`` pattern (fnmatch globs on the name
without its collection, e.g. ``fc/*``; ``base_config``'s default ``fc/*,fc8/*,*_head/*`` names the
classifier of every vidrec model: resnet3d / sgn / resnet2d_frame ``fc``, VGG16 ``fc8``, U2S's heads)
and of the model's variables that the checkpoint lacks, prints a table of what happened, and stops
with an error, before anything compiles, on a shape mismatch it was not told to skip.

``config.init_prefix`` loads a checkpoint into a sub-module of a larger model (e.g. a converted VGG16
as the pre-conv net of a model whose VGG16 is ``params/vgg/...``: ``--config.init_prefix=vgg``).

Shape adapters (``ADAPTERS``, chosen by ``config.init_adapt``) are the hook for initialisations across
shapes, e.g. a flow network started from RGB weights: a mismatched, non-skipped variable is passed to
the adapter, which returns the array to load (of the model's shape) or None (then it is an error).
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any, Callable, Mapping

import flax
import jax
import ml_collections
import numpy as np
import optax

from vidrec import fs
from vidrec.errors import UserError
from vidrec.param_paths import flatten, matches, parse_patterns, unflatten
from vidrec.registry import Registry

VARIABLES_FILE = "variables.msgpack"
META_FILE = "meta.json"

Adapter = Callable[[str, np.ndarray, tuple[int, ...]], "np.ndarray | None"]
ADAPTERS: Registry[Adapter] = Registry("init_adapt")


@ADAPTERS.register("channel_mean")
def channel_mean(name: str, value: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
  """Cross-modality initialisation (TSN, Wang et al. 2016, Sec. 3.2): a convolution kernel
  ``[*k, C_in, O]`` whose input channels differ (RGB -> stacked flow) is averaged over its input channels
  and the mean is replicated to the model's ``C_in``. Any other mismatch: None."""
  del name
  if value.ndim < 3 or value.shape[:-2] != shape[:-2] or value.shape[-1] != shape[-1]:
    return None
  return np.broadcast_to(value.mean(axis=-2, keepdims=True), shape).copy()


@ADAPTERS.register("i3d_inflate")
def i3d_inflate(name: str, value: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
  """I3D's inflation (Carreira & Zisserman 2017, Sec. 2.2): a 2D kernel ``[kh, kw, I, O]`` where the model
  holds a 3D one ``[kt, kh, kw, I, O]`` is repeated ``kt`` times along time and divided by ``kt``, so a
  clip of identical frames gives the 2D network's responses (away from the zero-padded clip ends). Any
  other mismatch: None."""
  del name
  if value.ndim + 1 != len(shape) or value.shape != tuple(shape[1:]):
    return None
  return np.broadcast_to(value / shape[0], shape)     # a view: materialised when loaded (merge)


def save_variables(directory: str, variables: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
  """Writes ``variables`` (nested dicts of arrays) and ``meta`` to ``directory`` (created; local or
  ``gs://``, through :mod:`vidrec.fs`)."""
  out = fs.makedirs(directory)
  tree = jax.tree.map(np.asarray, dict(variables))
  (out / VARIABLES_FILE).write_bytes(flax.serialization.msgpack_serialize(tree))
  (out / META_FILE).write_text(json.dumps(dict(meta), indent=1, sort_keys=True))


def load_variables(directory: str) -> tuple[dict, dict]:
  """(variables, meta) from a directory written by :func:`save_variables` or a run's workdir."""
  path = fs.path(directory) / VARIABLES_FILE
  if not path.exists():
    if (fs.path(directory) / fs.CHECKPOINT_DIR).exists():
      return run_variables(directory)
    raise FileNotFoundError(
        f"init_from={directory!r}: no {VARIABLES_FILE} there and no vidrec run (WORKDIR/checkpoints). "
        f"Give a trained run's workdir, or convert a checkpoint first, e.g. "
        f"python -m vidrec.convert torchvision --arch r3d_18 --checkpoint r3d_18.pth --out {directory}")
  variables = flax.serialization.msgpack_restore(path.read_bytes())
  meta_path = fs.path(directory) / META_FILE
  meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
  return variables, meta


def run_variables(workdir: str) -> tuple[dict, dict]:
  """(variables, meta) of the newest checkpoint of the vidrec run in ``workdir``: its ``params`` and
  model state (BatchNorm statistics), read without a target structure, so no config, dataset or model
  is needed; meta names the run, its step and its ``config.model`` (from ``WORKDIR/config.json``)."""
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top  (only this path reads orbax)
  root = fs.path(workdir)
  options = ocp.CheckpointManagerOptions(read_only=True)
  with ocp.CheckpointManager(root / fs.CHECKPOINT_DIR, options=options) as mngr:
    step = mngr.latest_step()
    if step is None:
      raise FileNotFoundError(f"init_from={workdir!r}: the run has no checkpoint yet (train it first).")
    state = mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore())).state
  variables = jax.tree.map(np.asarray, {"params": state["params"], **state["model_state"]})
  config = root / "config.json"
  model = json.loads(config.read_text()).get("model", {}) if config.exists() else {}
  return variables, {"arch": f"vidrec run, step {step}", "source": str(root), "step": int(step),
                     "config_model": model}


@dataclasses.dataclass
class Plan:
  """What initialising from ``source`` does to each model variable (flat name -> status) and the
  values to load (for ``loaded`` / ``adapted``). Statuses: loaded, adapted, reinit (init_skip),
  missing (not in the checkpoint: fresh). ``unused``: checkpoint names the model lacks."""
  source: str
  status: dict[str, str]
  values: dict[str, np.ndarray]
  sizes: dict[str, int]
  unused: list[str]

  def table(self) -> str:
    """One row per top-level module: arrays per status and values loaded; then the totals."""
    kinds = ("loaded", "adapted", "reinit", "missing")
    rows: dict[str, dict[str, int]] = {}
    for name, status in self.status.items():
      row = rows.setdefault(name.split("/")[1], dict.fromkeys(kinds + ("values",), 0))
      row[status] += 1
      row["values"] += self.sizes[name] if status in ("loaded", "adapted") else 0
    head = ["module", "loaded", "adapted", "re-initialised", "missing (fresh)", "values loaded"]
    body = [[m] + [str(r[k]) for k in kinds + ("values",)] for m, r in rows.items()]
    total = ["total"] + [str(sum(r[k] for r in rows.values())) for k in kinds + ("values",)]
    widths = [max(len(line[i]) for line in [head, total] + body) for i in range(len(head))]
    fmt = lambda line: "  ".join(c.ljust(w) for c, w in zip(line, widths))  # noqa: E731
    lines = [f"init_from {self.source}: arrays per module", fmt(head)] + [fmt(b) for b in body] + [fmt(total)]
    shown = ", ".join(self.unused[:12]) + (", ..." if len(self.unused) > 12 else "")
    lines.append(f"unused checkpoint arrays ({len(self.unused)}): {shown or 'none'}")
    return "\n".join(lines)


def make_plan(checkpoint: Mapping[str, Any], model_shapes: Mapping[str, Any], source: str,
              skip: tuple[str, ...] = (), adapter: str = "", prefix: str = "") -> Plan:
  """Matches ``checkpoint`` variables to ``model_shapes`` (nested, leaves with ``.shape``) by name;
  with ``prefix`` (a module path such as ``backbone``) checkpoint ``coll/x`` is model ``coll/prefix/x``.

  Raises ValueError listing every shape mismatch that is neither skipped nor adapted, and when no
  checkpoint name is in the model at all."""
  ckpt, model = flatten(checkpoint), flatten(model_shapes)
  if prefix:
    ckpt = {f"{k.split('/', 1)[0]}/{prefix.strip('/')}/{k.split('/', 1)[1]}": v for k, v in ckpt.items()}
  if not set(ckpt) & set(model):
    raise ValueError(
        f"init_from {source}: no variable name of the checkpoint is in the model (checkpoint: "
        f"{sorted(ckpt)[:2]}..., model: {sorted(model)[:2]}...). If the pretrained network sits inside the "
        f"model under a module path, name it with --config.init_prefix (now {prefix!r}).")
  adapt = ADAPTERS.get(adapter) if adapter else None
  status, values, errors = {}, {}, []
  for name, leaf in model.items():
    shape = tuple(leaf.shape)
    if matches(name.split("/", 1)[1], skip):
      status[name] = "reinit"
    elif name not in ckpt:
      status[name] = "missing"
    elif tuple(np.shape(ckpt[name])) == shape:
      status[name], values[name] = "loaded", np.asarray(ckpt[name])
    else:
      value = adapt(name, np.asarray(ckpt[name]), shape) if adapt else None
      if value is None or tuple(value.shape) != shape:
        errors.append(f"  {name}: checkpoint {tuple(np.shape(ckpt[name]))}, model {shape}")
      else:
        status[name], values[name] = "adapted", value
  if errors:
    raise ValueError(
        f"init_from {source}: {len(errors)} variable(s) differ in shape between the checkpoint and the "
        f"model and are not in config.init_skip:\n" + "\n".join(errors) + "\nFix: configure the model the "
        f"checkpoint was made for (its {META_FILE} lists config.model), re-initialise these by adding "
        f"patterns to --config.init_skip (now {','.join(skip)!r}), or adapt them with --config.init_adapt "
        f"(one of {ADAPTERS.names()}).")
  sizes = {name: int(np.prod(leaf.shape)) for name, leaf in model.items()}
  return Plan(source, status, values, sizes, sorted(set(ckpt) - set(model)))


def merge(fresh: Mapping[str, Any], plan: Plan,
          put: Callable[[np.ndarray, Any], Any] = lambda value, like: value.astype(like.dtype)) -> dict:
  """``fresh`` variables with the plan's values in place; ``put(value, fresh_leaf)`` makes each leaf."""
  return unflatten({k: put(plan.values[k], v) if k in plan.values else v for k, v in flatten(fresh).items()})


def prepare(config: ml_collections.ConfigDict, abstract_state: Any, resuming: bool) -> Plan | None:
  """The plan for ``config.init_from`` against the trainer's abstract state (shapes only, so errors come
  before anything compiles); None without ``init_from`` or when resuming (the checkpoint wins)."""
  directory = config.get("init_from", "")
  if not directory:
    return None
  if resuming:
    _print(f"init_from {directory}: ignored, resuming from this run's own checkpoint")
    return None
  checkpoint, meta = load_variables(directory)
  shapes = {"params": abstract_state.params, **abstract_state.model_state}
  plan = make_plan(checkpoint, shapes, f"{directory} ({meta.get('arch', 'vidrec')})",
                   parse_patterns(config.init_skip), config.init_adapt, config.init_prefix)
  check_partial_bn(config, plan)
  _print(plan.table())
  return plan


def check_partial_bn(config: ml_collections.ConfigDict, plan: Plan) -> None:
  """Partial BN (``model.partial_bn``, ATW/TSN) keeps BatchNorm statistics at their initial values: an
  error unless the plan loads every one of them."""
  fresh = [k for k, v in plan.status.items() if k.startswith("batch_stats/") and v not in ("loaded", "adapted")]
  if config.model.get("partial_bn", False) and fresh:
    raise UserError(f"init_from {plan.source}: model.partial_bn keeps BatchNorm statistics as loaded, but "
                    f"{len(fresh)} are not in the checkpoint (e.g. {fresh[0]}): give pretrained weights with "
                    f"BatchNorm statistics, or turn partial BN off with --config.model.partial_bn=False "
                    f"--config.optimizer.frozen=''.")


def apply(ts: Any, plan: Plan | None, tx: optax.GradientTransformation) -> Any:
  """``ts`` (a fresh TrainState) with the plan's values put in place (same dtypes and shardings) and
  the optimiser state re-initialised for the new parameters."""
  if plan is None:
    return ts
  variables = merge({"params": ts.params, **ts.model_state}, plan,
                    lambda value, like: jax.device_put(value.astype(like.dtype), like.sharding))
  params = variables.pop("params")
  shardings = jax.tree.map(lambda a: a.sharding, ts.opt_state)
  return ts.replace(params=params, model_state=variables,
                    opt_state=jax.jit(tx.init, out_shardings=shardings)(params))


def _print(text: str) -> None:
  if jax.process_index() == 0:
    print(text, flush=True)
