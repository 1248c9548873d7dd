"""Logit parity of converted models against torchvision itself (needs the ``[torch]`` extra).

``parity(arch)`` builds torchvision's ``arch`` (or the arch's ``reference``) with random weights
(``weights=None``) and randomised BatchNorm affine parameters and running statistics (torchvision's
fresh ones are 1/0/0/1, which would not test their mapping), saves its state dict to a ``.pth`` file,
loads that file through :func:`vidrec.convert.load_torchvision` and compares logits in eval mode on one
random input.
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


def vggm() -> torch.nn.Module:
  """VGG-M as pretrainedmodels (Cadene) defines it (``vggm-786f2434.pth``): its SpatialCrossMapLRN is
  torch's LocalResponseNorm (the zero-padded mean of 5 squares times alpha, plus k, to the beta)."""
  nn = torch.nn
  lrn = lambda: nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0)  # noqa: E731
  pool = lambda: nn.MaxPool2d(3, 2, ceil_mode=True)  # noqa: E731
  model = nn.Module()
  model.features = nn.Sequential(
      nn.Conv2d(3, 96, 7, 2), nn.ReLU(), lrn(), pool(), nn.Conv2d(96, 256, 5, 2, 1), nn.ReLU(), lrn(), pool(),
      nn.Conv2d(256, 512, 3, 1, 1), nn.ReLU(), nn.Conv2d(512, 512, 3, 1, 1), nn.ReLU(),
      nn.Conv2d(512, 512, 3, 1, 1), nn.ReLU(), pool(), nn.Flatten())
  model.classif = nn.Sequential(nn.Linear(18432, 4096), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4096, 4096),
                                nn.ReLU(), nn.Dropout(0.5), nn.Linear(4096, 1000))
  model.forward = lambda x: model.classif(model.features(x))
  return model


REFERENCES = {"vggm": vggm}   # torch models that torchvision does not have


def random_torchvision(arch: str, seed: int = 0) -> torch.nn.Module:
  """The arch's reference torch model (random init, seeded) with random BatchNorm parameters and
  statistics."""
  torch.manual_seed(seed)
  spec = ARCHS.get(arch)
  name = spec.reference or arch
  namespace = torchvision.models.video if spec.video else torchvision.models
  model = (REFERENCES[name]() if name in REFERENCES else getattr(namespace, name)(weights=None)).eval()
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
    expected = model(torch.from_numpy(np.moveaxis(x[..., ::-1] if spec.bgr else x, -1, 1).copy())).numpy()
  clip = np.repeat(x[:, None], spec.frames, axis=1) if spec.frames else x
  got = np.asarray(jax.jit(lambda v, x: module.apply(v, x, train=False)["logits"])(variables, clip))
  diff = np.abs(got - expected).max()
  return {"arch": arch, "input": list(shape) + [3], "max_abs": float(diff),
          "max_rel": float(diff / np.abs(expected).max()), "max_abs_logit": float(np.abs(expected).max())}
