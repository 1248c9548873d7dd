"""torchvision r3d_18 timing for ``vs_torch``, run as a plain script in its own process (importing
PyTorch into a process that holds TensorFlow crashes here):

  python vidrec/tools/torch_r3d.py DTYPE BATCH FRAMES SIZE CLASSES STEPS

Train step (SGD momentum 0.9, weight decay 5e-4, cross-entropy) and eval forward on a fixed random
batch, median of STEPS calls after one warm-up; bfloat16 = ``torch.autocast("cpu", torch.bfloat16)``.
Prints one JSON line. Imports nothing from vidrec, and torch only inside :func:`main`, so that
``vs_torch`` and ``conv_bench`` can share :func:`median_seconds` without loading PyTorch.
"""
import json
import os
import statistics
import sys
import time

from typing import Callable

import numpy as np


def median_seconds(fn: Callable[[], object], steps: int) -> float:
  """Median wall time of ``steps`` calls of ``fn`` after one warm-up call (``fn`` must block until done)."""
  fn()
  times = []
  for _ in range(steps):
    t = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t)
  return statistics.median(times)


def main(dtype: str, batch: int, frames: int, size: int, classes: int, steps: int) -> dict:
  import torch  # pylint: disable=g-import-not-at-top
  import torchvision  # pylint: disable=g-import-not-at-top
  torch.manual_seed(0)
  rng = np.random.default_rng(0)
  x = torch.from_numpy(rng.standard_normal((batch, 3, frames, size, size)).astype(np.float32))
  y = torch.from_numpy(rng.integers(0, classes, batch)).long()
  model = torchvision.models.video.r3d_18(num_classes=classes)
  opt = torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9, weight_decay=5e-4)
  autocast = lambda: torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bfloat16")

  def train_once():
    model.train()
    opt.zero_grad(set_to_none=True)
    with autocast():
      loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()

  def eval_once():
    model.eval()
    with torch.no_grad(), autocast():
      model(x)

  load = [round(v, 2) for v in os.getloadavg()]
  return {"framework": "torch", "impl": f"torch {torch.__version__} eager, {torch.get_num_threads()} threads",
          "dtype": dtype, "train_step_s": round(median_seconds(train_once, steps), 3),
          "eval_forward_s": round(median_seconds(eval_once, steps), 3), "load_before": load}


if __name__ == "__main__":
  d, *nums = sys.argv[1:]
  print(json.dumps(main(d, *map(int, nums))), flush=True)
