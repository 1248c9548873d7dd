"""Per-device memory of a config's train step at paper size, from XLA's buffer assignment (no compute).

  python -m vidrec.tools.memory --config configs/u2s_sthv2.py --per_device_batch 8 \
      --variants fp32,bf16,bf16+remat

For each variant (``fp32`` | ``bf16``, optionally ``+remat``) the train step of ``config`` is lowered for
one device holding ``per_device_batch`` clips (data parallelism replicates the state, so this is the
per-device footprint at any device count) and compiled; nothing is executed. Printed per variant:
parameters, state (params + optimizer + variables), XLA's argument/output/temporary bytes and the peak
estimate ``arguments + outputs - aliased + temporaries`` (the state is donated, so outputs alias it).

The compile runs on the host CPU with the GPU/TPU graph (``VIDREC_CONV3D=native``) and with
``cse_barrier_expander`` disabled, because XLA:CPU otherwise strips the optimisation barriers that keep
remat from being undone by CSE. XLA:CPU's fusion and buffer assignment differ from the GPU/TPU compilers',
so the figures are estimates of the device footprint, not measurements (docs/scaling.md).
"""
from __future__ import annotations

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("VIDREC_CONV3D", "native")
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + " --xla_disable_hlo_passes=cse_barrier_expander").strip()

import json  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
import ml_collections  # noqa: E402
import numpy as np  # noqa: E402
from absl import flags  # noqa: E402
from jax.sharding import Mesh  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from vidrec import cli, losses, optim, parallel, trainer  # noqa: E402
from vidrec.data import synthetic, synthetic_hard  # noqa: E402
from vidrec.models import build_model  # noqa: E402

# Class counts of the paper datasets (their builders read them from the data, which need not be here).
NUM_CLASSES = {"ucf101": 101, "hmdb51": 51, "ssv2": 174, "penn_action": 15,
               "synthetic_actions": synthetic.NUM_CLASSES,
               **{f"synthetic_actions/{c}": synthetic_hard.NUM_CLASSES for c in ("hard", "hard_flow", "hard_tiny")}}
DTYPES = {"fp32": "float32", "bf16": "bfloat16"}

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file, e.g. configs/u2s_sthv2.py.")
_BATCH = flags.DEFINE_integer("per_device_batch", 8, "Clips per device (per micro-batch).")
_VARIANTS = flags.DEFINE_list("variants", ["fp32", "bf16", "bf16+remat"],
                              "Comma-separated fp32 | bf16, each optionally with +remat.")
_NUM_CLASSES = flags.DEFINE_integer("num_classes", None, "Classes (default: NUM_CLASSES of the dataset).")
_JSON = flags.DEFINE_string("json", None, "Also write the rows as JSON lines to this file.")


def variant_config(config: ml_collections.ConfigDict, variant: str) -> ml_collections.ConfigDict:
  """``config`` with the variant's compute dtype and remat (e.g. "bf16+remat")."""
  dtype, *extra = variant.split("+")
  if dtype not in DTYPES or set(extra) - {"remat"}:
    raise ValueError(f"Unknown variant {variant!r}: use fp32 or bf16, optionally followed by +remat.")
  c = ml_collections.ConfigDict(config.to_dict())
  c.model.dtype, c.model.remat = DTYPES[dtype], "remat" in extra
  return c


def num_classes_of(config: ml_collections.ConfigDict) -> int:
  if _NUM_CLASSES.value:
    return _NUM_CLASSES.value
  name = config.dataset.name
  name = name if name in NUM_CLASSES else name.split("/")[0]  # a builder config, or the dataset
  if name not in NUM_CLASSES:
    raise ValueError(f"No class count known for dataset {name!r}: pass --num_classes.")
  return NUM_CLASSES[name]


def step_memory(config: ml_collections.ConfigDict, num_classes: int, per_device_batch: int) -> dict:
  """Compiles one train step for one device (``per_device_batch`` clips per micro-batch) and returns
  XLA's memory analysis in bytes, with the parameter count."""
  model = build_model(config.model, num_classes)
  tx, schedule = optim.make_optimizer(config.optimizer, config.num_train_steps)
  mesh = Mesh(np.array(jax.devices()[:1]), (parallel.DATA,))
  abstract = jax.eval_shape(lambda r: trainer.init_state(model, tx, config, r), jax.random.key(0))
  batch = per_device_batch * config.get("accum_steps", 1)
  inputs = {"video": jax.ShapeDtypeStruct(trainer.input_shape(config, batch), np.float32),
            "label": jax.ShapeDtypeStruct((batch,), np.int32)}
  step = trainer.make_train_step(model, tx, losses.LOSSES.get(config.loss.name), config.loss, schedule,
                                 jax.random.key(0), config, mesh)
  t0 = time.time()
  mem = jax.jit(step, donate_argnums=0).lower(abstract, inputs).compile().memory_analysis()
  nbytes = lambda tree: sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(tree))  # noqa: E731
  out = {"params": sum(x.size for x in jax.tree.leaves(abstract.params)), "state_bytes": nbytes(abstract),
         "argument_bytes": mem.argument_size_in_bytes, "output_bytes": mem.output_size_in_bytes,
         "alias_bytes": mem.alias_size_in_bytes, "temp_bytes": mem.temp_size_in_bytes,
         "compile_s": round(time.time() - t0, 1)}
  out["peak_bytes"] = out["argument_bytes"] + out["output_bytes"] - out["alias_bytes"] + out["temp_bytes"]
  return out


def main(argv) -> None:
  del argv
  config = _CONFIG.value
  num_classes = num_classes_of(config)
  print("| model | input | per-device batch | variant | params | state GiB | temp GiB | peak GiB |")
  print("| --- | --- | --- | --- | --- | --- | --- | --- |")
  for variant in _VARIANTS.value:
    c = variant_config(config, variant)
    row = {"model": c.model.name, "input": "x".join(map(str, trainer.input_shape(c, 1)[1:4])),
           "per_device_batch": _BATCH.value, "accum_steps": c.get("accum_steps", 1), "variant": variant,
           **step_memory(c, num_classes, _BATCH.value)}
    gib = lambda k: f"{row[k] / 2**30:.2f}"  # noqa: E731
    batch = f"{_BATCH.value}" + (f" x {row['accum_steps']} accum" if row["accum_steps"] > 1 else "")
    print(f"| {row['model']} | {row['input']} | {batch} | {variant} | "
          f"{row['params'] / 1e6:.1f} M | {gib('state_bytes')} | {gib('temp_bytes')} | {gib('peak_bytes')} |",
          flush=True)
    if _JSON.value:
      with open(_JSON.value, "a") as f:
        f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
  flags.mark_flags_as_required(["config"])
  cli.run(main)
