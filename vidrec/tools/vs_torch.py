"""vidrec ResNet3D-18 vs torchvision r3d_18 on the same CPU, in one run (docs/performance.md).

  python -m vidrec.tools.vs_torch [--impls temporal_sum,gemm] [--dtypes float32,bfloat16] [--steps 3]

Both: width 64, 400 classes, batch 8 x 16 x 112 x 112, SGD momentum 0.9 (weight decay 5e-4), softmax
cross-entropy. Times the train step and the eval forward: median of ``--steps`` calls after one warm-up
(vidrec: after compilation; ``$VIDREC_CONV3D`` per impl). bfloat16: vidrec ``model.dtype=bfloat16``
(float32 params, BatchNorm statistics and loss); PyTorch ``torch.autocast("cpu", torch.bfloat16)``.
Prints one JSON line per (framework, impl, dtype), with the load average before it. PyTorch is only
needed here (the ``[torch]`` extra), in a separate process (``torch_r3d.py``).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import jax
import numpy as np
from absl import flags

from vidrec import cli, losses, optim, trainer
from vidrec.config import base_config
from vidrec.models import build_model
from vidrec.timing import median_seconds

_IMPLS = flags.DEFINE_list("impls", ["temporal_sum", "gemm"], "vidrec convolution paths ($VIDREC_CONV3D).")
_DTYPES = flags.DEFINE_list("dtypes", ["float32", "bfloat16"], "Compute dtypes.")
_STEPS = flags.DEFINE_integer("steps", 3, "Timed steps (median) after one warm-up.")
_BATCH = flags.DEFINE_integer("batch", 8, "Clips per step.")
_FRAMES = flags.DEFINE_integer("frames", 16, "Frames per clip.")
_SIZE = flags.DEFINE_integer("size", 112, "Frame height and width.")
_CLASSES = flags.DEFINE_integer("classes", 400, "Classes.")
_TORCH = flags.DEFINE_bool("torch", True, "Also time torchvision's r3d_18.")


def _load() -> list[float]:
  return [round(x, 2) for x in os.getloadavg()]


def time_vidrec(impl: str, dtype: str, video: np.ndarray, labels: np.ndarray, steps: int) -> dict:
  os.environ["VIDREC_CONV3D"] = impl
  config = base_config()
  config.model.update(name="resnet3d", dtype=dtype)
  model = build_model(config.model, _CLASSES.value)
  tx, schedule = optim.make_optimizer(config.optimizer, 100)
  ts = trainer.init_state(model, tx, config, jax.random.key(0))
  batch = {"video": jax.device_put(video), "label": jax.device_put(labels)}
  step = jax.jit(trainer.make_train_step(model, tx, losses.LOSSES.get("classification"), config.loss,
                                         schedule, jax.random.key(1)), donate_argnums=0)
  t = time.perf_counter()
  compiled = step.lower(ts, batch).compile()
  compile_s = time.perf_counter() - t
  state = {"ts": ts}

  def train_once():
    state["ts"], m = compiled(state["ts"], batch)
    jax.block_until_ready(m["loss"])

  load = _load()
  train_s = median_seconds(train_once, steps)
  forward = jax.jit(lambda v, x: model.apply(v, x, train=False)["logits"]).lower(
      trainer.variables_of(state["ts"]), batch["video"]).compile()
  variables = trainer.variables_of(state["ts"])
  eval_s = median_seconds(lambda: jax.block_until_ready(forward(variables, batch["video"])), steps)
  return {"framework": "vidrec", "impl": impl, "dtype": dtype, "train_step_s": round(train_s, 3),
          "eval_forward_s": round(eval_s, 3), "compile_s": round(compile_s, 1), "load_before": load}


def time_torch(dtype: str, steps: int) -> dict:
  """torchvision's r3d_18 timed by ``torch_r3d.py`` in its own process (torch next to TensorFlow crashes)."""
  script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_r3d.py")
  args = [dtype] + [str(v) for v in (_BATCH.value, _FRAMES.value, _SIZE.value, _CLASSES.value, steps)]
  out = subprocess.run([sys.executable, script, *args], check=True, capture_output=True, text=True).stdout
  return json.loads(out.strip().splitlines()[-1])


def main(argv):
  del argv
  rng = np.random.default_rng(0)
  video = rng.standard_normal((_BATCH.value, _FRAMES.value, _SIZE.value, _SIZE.value, 3)).astype(np.float32)
  labels = rng.integers(0, _CLASSES.value, _BATCH.value).astype(np.int32)   # torch_r3d.py draws the same
  for dtype in _DTYPES.value:
    if _TORCH.value:
      print(json.dumps(time_torch(dtype, _STEPS.value)), flush=True)
    for impl in _IMPLS.value:
      print(json.dumps(time_vidrec(impl, dtype, video, labels, _STEPS.value)), flush=True)


if __name__ == "__main__":
  cli.run(main)
