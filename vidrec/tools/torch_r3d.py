"""torchvision r3d_18 timing for ``vs_torch``, run as a plain script in its own process (importing
PyTorch into a process that holds TensorFlow crashes here):

  python vidrec/tools/torch_r3d.py DTYPE BATCH FRAMES SIZE CLASSES STEPS

Train step (SGD momentum 0.9, weight decay 5e-4, cross-entropy) and eval forward on a fixed random
batch, median of STEPS calls after one warm-up; bfloat16 = ``torch.autocast("cpu", torch.bfloat16)``.
Prints one JSON line. Imports nothing from the vidrec package (it loads ``vidrec/timing.py`` by path).
"""
import importlib.util
import json
import os
import pathlib
import sys

import numpy as np
import torch
import torchvision

_spec = importlib.util.spec_from_file_location("vidrec_timing", pathlib.Path(__file__).parents[1] / "timing.py")
timing = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(timing)


def main(dtype: str, batch: int, frames: int, size: int, classes: int, steps: int) -> dict:
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
          "dtype": dtype, "train_step_s": round(timing.median_seconds(train_once, steps), 3),
          "eval_forward_s": round(timing.median_seconds(eval_once, steps), 3), "load_before": load}


if __name__ == "__main__":
  d, *nums = sys.argv[1:]
  print(json.dumps(main(d, *map(int, nums))), flush=True)
