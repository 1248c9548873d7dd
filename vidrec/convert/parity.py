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


class TemporalShift(torch.nn.Module):
  """TSM's ``ops/temporal_shift.py`` ``TemporalShift`` (not in place): ``net`` reads its input shifted in
  time, ``[N * T, C, H, W]`` viewed as ``[N, T, C, H, W]``, with ``fold = C // fold_div``: channels
  ``[0, fold)`` from frame t + 1 ("shift left"), ``[fold, 2 fold)`` from frame t - 1 ("shift right"),
  zeros past the clip ends, the rest unchanged."""

  def __init__(self, net: torch.nn.Module, n_segment: int, fold_div: int = 8):
    super().__init__()
    self.net, self.n_segment, self.fold_div = net, n_segment, fold_div

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    nt, c, h, w = x.size()
    x = x.view(nt // self.n_segment, self.n_segment, c, h, w)
    fold = c // self.fold_div
    out = torch.zeros_like(x)
    out[:, :-1, :fold] = x[:, 1:, :fold]
    out[:, 1:, fold:2 * fold] = x[:, :-1, fold:2 * fold]
    out[:, :, 2 * fold:] = x[:, :, 2 * fold:]
    return self.net(out.view(nt, c, h, w))


class TSMResNet50(torch.nn.Module):
  """TSM's ``ops/models.py`` ``TSN`` as its Kinetics ResNet-50 was trained (``base_model="resnet50"``,
  ``is_shift``, ``shift_div=8``, ``shift_place="blockres"``: every bottleneck's ``conv1`` wrapped in
  :class:`TemporalShift`; ``dropout=0.5``: ``base_model.fc`` is a Dropout and ``new_fc`` classifies;
  ``consensus_type="avg"`` of the per-segment logits). Input ``[N, 3, T, H, W]`` (T = ``num_segments``);
  TSN's own ``[N, T * 3, H, W]`` is the same memory."""

  def __init__(self, num_segments: int = 8, num_classes: int = 400):
    super().__init__()
    self.num_segments = num_segments
    self.base_model = torchvision.models.resnet50(weights=None)
    for layer in (self.base_model.layer1, self.base_model.layer2, self.base_model.layer3, self.base_model.layer4):
      for block in layer:
        block.conv1 = TemporalShift(block.conv1, num_segments)
    self.base_model.fc = torch.nn.Dropout(0.5)
    self.new_fc = torch.nn.Linear(2048, num_classes)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    n, c, t, h, w = x.shape
    if t != self.num_segments:
      raise ValueError(f"TSM's ResNet-50 reference runs {self.num_segments} segments, got {t}: give --shape N,"
                       f"{self.num_segments},H,W")
    logits = self.new_fc(self.base_model(x.transpose(1, 2).reshape(n * t, c, h, w)))
    return logits.view(n, t, -1).mean(1)


REFERENCES = {"vggm": vggm, "tsm_resnet50": TSMResNet50}   # torch models that torchvision does not have


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
