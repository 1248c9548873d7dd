"""Logit parity of converted models against torchvision itself (needs the ``[torch]`` extra).

``parity(arch)`` builds torchvision's ``arch`` with random weights (``weights=None``) and randomised
BatchNorm affine parameters and running statistics (torchvision's fresh ones are 1/0/0/1, which would
not test their mapping), saves its state dict to a ``.pth`` file, loads that file through
:func:`vidrec.convert.load_torchvision` and compares logits in eval mode on one random input.
"""
from __future__ import annotations

import os
import sys
import tempfile

# torchvision imports torch._dynamo, which imports triton when it is installed (the CUDA build of
# torch ships it); importing triton after TensorFlow (vidrec.data imports it) segfaults, and the
# CPU-only parity check needs no triton, so it is hidden before torch is imported.
sys.modules.setdefault("triton", None)

import jax  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402

from vidrec.convert import ARCHS, load_torchvision

DEFAULT_SHAPES = {True: (2, 8, 112, 112), False: (2, 224, 224)}


def random_torchvision(arch: str, seed: int = 0) -> torch.nn.Module:
  """torchvision's ``arch`` (random init, seeded) with random BatchNorm parameters and statistics."""
  torch.manual_seed(seed)
  namespace = torchvision.models.video if ARCHS.get(arch).video else torchvision.models
  model = getattr(namespace, arch)(weights=None).eval()
  with torch.no_grad():
    for m in model.modules():
      if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):  # pylint: disable=protected-access
        m.weight.uniform_(0.5, 1.5)
        m.bias.normal_(0.0, 0.1)
        m.running_mean.normal_(0.0, 0.1)
        m.running_var.uniform_(0.5, 1.5)
  return model


def parity(arch: str, shape: tuple[int, ...] | None = None, seed: int = 0) -> dict:
  """Max abs / relative (to the largest torch logit) difference of vidrec's and torchvision's logits
  on a standard-normal channels-last input of ``shape`` (N, T, H, W or N, H, W; 3 channels added)."""
  spec = ARCHS.get(arch)
  shape = tuple(shape or DEFAULT_SHAPES[spec.video])
  if len(shape) != (4 if spec.video else 3):
    raise ValueError(f"--shape for {arch}: give {'N,T,H,W' if spec.video else 'N,H,W'}, got {shape}")
  model = random_torchvision(arch, seed)
  x = np.random.default_rng(seed).standard_normal(shape + (3,), dtype=np.float32)
  with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, f"{arch}.pth")
    torch.save(model.state_dict(), path)
    module, variables = load_torchvision(arch, path)
  with torch.no_grad():
    expected = model(torch.from_numpy(np.moveaxis(x, -1, 1).copy())).numpy()
  got = np.asarray(jax.jit(lambda v, x: module.apply(v, x, train=False)["logits"])(variables, x))
  diff = np.abs(got - expected).max()
  return {"arch": arch, "input": list(shape) + [3], "max_abs": float(diff),
          "max_rel": float(diff / np.abs(expected).max()), "max_abs_logit": float(np.abs(expected).max())}
