"""torchvision state dicts <-> vidrec variables: the name map of every supported architecture.

A torchvision module maps to a vidrec module by kind (``TENSORS``): a convolution's ``weight``
``[O, I, *k]`` is vidrec's ``kernel`` ``[*k, I, O]`` (channels-last), a Linear's ``weight`` ``[O, I]`` is
``kernel.T``, a BatchNorm's ``weight`` / ``bias`` / ``running_mean`` / ``running_var`` are ``scale`` /
``bias`` (params) and ``mean`` / ``var`` (batch_stats); ``num_batches_tracked`` is not used (vidrec's
BatchNorm has a fixed momentum, the same 0.1 as torch's default).
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from vidrec.models import resnet2d, resnet3d, vgg
from vidrec.registry import Registry

Array = np.ndarray


def _conv_to_vidrec(w: Array) -> Array:
  return np.transpose(w, tuple(range(2, w.ndim)) + (1, 0))


def _conv_to_torch(k: Array) -> Array:
  nd = k.ndim - 2
  return np.transpose(k, (nd + 1, nd) + tuple(range(nd)))


def _same(x: Array) -> Array:
  return x


# kind -> [(torch leaf, vidrec collection, vidrec leaf, to vidrec, to torch)]
TENSORS: dict[str, list[tuple[str, str, str, Callable[[Array], Array], Callable[[Array], Array]]]] = {
    "conv": [("weight", "params", "kernel", _conv_to_vidrec, _conv_to_torch)],
    "conv_bias": [("weight", "params", "kernel", _conv_to_vidrec, _conv_to_torch),
                  ("bias", "params", "bias", _same, _same)],
    "dense": [("weight", "params", "kernel", np.transpose, np.transpose), ("bias", "params", "bias", _same, _same)],
    "bn": [("weight", "params", "scale", _same, _same), ("bias", "params", "bias", _same, _same),
           ("running_mean", "batch_stats", "mean", _same, _same),
           ("running_var", "batch_stats", "var", _same, _same)],
}
IGNORED_SUFFIXES = (".num_batches_tracked",)


@dataclasses.dataclass(frozen=True)
class Module:
  """One torchvision module (state-dict prefix) and the vidrec module it becomes."""
  torch: str
  vidrec: str
  kind: str


@dataclasses.dataclass(frozen=True)
class Arch:
  """A torchvision architecture: its module map, the vidrec module that runs it (``build(num_classes)``),
  its input rank, its classifier (torch prefix) and the ``config.model`` that trains it (None where no
  registered vidrec model has this layout)."""
  modules: Callable[[], list[Module]]
  build: Callable[[int], nn.Module]
  video: bool
  classifier: str
  config_model: dict | None


def video_resnet_modules(block: str) -> list[Module]:
  """torchvision's VideoResNet (r3d_18 / r2plus1d_18 / mc3_18) -> vidrec's ResNet3D(block=...)."""
  kind = resnet3d.BLOCKS.get(block)
  if kind.stem_mid:  # R2Plus1dStem: conv 1x7x7, BN, ReLU, conv 3x1x1, BN, ReLU
    out = [Module("stem.0", "bcb1/conv_s", "conv"), Module("stem.1", "bcb1/bn_s", "bn"),
           Module("stem.3", "bcb1/conv_t", "conv"), Module("stem.4", "bcb1/bn", "bn")]
  else:
    out = [Module("stem.0", "bcb1/conv", "conv"), Module("stem.1", "bcb1/bn", "bn")]
  for name in resnet3d.block_names(4, 2):
    index = ord(name[1]) - ord("a")
    tp, vp = f"layer{int(name[0]) - 1}.{index}", f"{'rcb' if index == 0 else 'rib'}{name}"
    for t_unit, v_unit in (("conv1", "conv_a"), ("conv2", "conv_b")):
      if kind.factorized:  # Conv2Plus1D: conv 1x3x3, BN, ReLU, conv 3x1x1
        out += [Module(f"{tp}.{t_unit}.0.0", f"{vp}/{v_unit}/conv_s", "conv"),
                Module(f"{tp}.{t_unit}.0.1", f"{vp}/{v_unit}/bn_s", "bn"),
                Module(f"{tp}.{t_unit}.0.3", f"{vp}/{v_unit}/conv_t", "conv")]
      else:
        out.append(Module(f"{tp}.{t_unit}.0", f"{vp}/{v_unit}/conv", "conv"))
      out.append(Module(f"{tp}.{t_unit}.1", f"{vp}/{v_unit}/bn", "bn"))
    if index == 0 and name[0] != "2":
      out += [Module(f"{tp}.downsample.0", f"{vp}/proj/conv", "conv"),
              Module(f"{tp}.downsample.1", f"{vp}/proj/bn", "bn")]
  return out + [Module("fc", "fc", "dense")]


def resnet2d_modules(depth: int) -> list[Module]:
  """torchvision's ImageNet ResNet -> vidrec's ResNet2D (``resnet2d_frame`` names)."""
  units = ("conv_a", "conv_b", "conv_c")[:3 if depth >= 50 else 2]
  out = [Module("conv1", "conv1/conv", "conv"), Module("bn1", "conv1/bn", "bn")]
  for stage, num_blocks in enumerate(resnet2d.STAGE_BLOCKS[depth]):
    for i in range(num_blocks):
      tp, vp = f"layer{stage + 1}.{i}", f"layer{stage + 1}_{i}"
      for j, unit in enumerate(units, 1):
        out += [Module(f"{tp}.conv{j}", f"{vp}/{unit}/conv", "conv"), Module(f"{tp}.bn{j}", f"{vp}/{unit}/bn", "bn")]
      if i == 0 and (stage > 0 or depth >= 50):
        out += [Module(f"{tp}.downsample.0", f"{vp}/proj/conv", "conv"),
                Module(f"{tp}.downsample.1", f"{vp}/proj/bn", "bn")]
  return out + [Module("fc", "fc", "dense")]


def vgg16_modules() -> list[Module]:
  """torchvision's vgg16: ``features`` (conv, ReLU per convolution, a max-pool per group) and
  ``classifier`` (Linear 0, 3, 6 between ReLU/Dropout) -> conv1_1..conv5_3, fc6..fc8."""
  out, index = [], 0
  for group, num_convs, _ in vgg.GROUPS:
    for i in range(1, num_convs + 1):
      out.append(Module(f"features.{index}", f"conv{group}_{i}", "conv_bias"))
      index += 2
    index += 1
  return out + [Module(f"classifier.{i}", name, "dense") for i, name in ((0, "fc6"), (3, "fc7"), (6, "fc8"))]


def _video_arch(block: str) -> Arch:
  cfg = {"name": "resnet3d", "width": 64, "num_stages": 4, "blocks_per_stage": 2, "block": block}
  return Arch(lambda: video_resnet_modules(block), lambda n: resnet3d.ResNet3D(num_classes=n, block=block),
              True, "fc", cfg)


def _resnet_arch(depth: int) -> Arch:
  cfg = {"name": "resnet2d_frame", "depth": depth, "width": 64}
  return Arch(lambda: resnet2d_modules(depth), lambda n: resnet2d.ResNet2D(num_classes=n, depth=depth),
              False, "fc", cfg)


ARCHS: Registry[Arch] = Registry("arch")
ARCHS.add("r3d_18", _video_arch("r3d"))
ARCHS.add("r2plus1d_18", _video_arch("r2plus1d"))
ARCHS.add("mc3_18", _video_arch("mc3"))
ARCHS.add("resnet18", _resnet_arch(18))
ARCHS.add("resnet50", _resnet_arch(50))
ARCHS.add("vgg16", Arch(vgg16_modules, lambda n: vgg.VGG16(num_classes=n), False, "classifier.6", None))


def tensor_map(arch: str) -> list[tuple[str, str, Callable[[Array], Array], Callable[[Array], Array]]]:
  """[(torch state-dict key, vidrec flat name "collection/module/.../leaf", to vidrec, to torch)]."""
  return [(f"{m.torch}.{t_leaf}", f"{coll}/{m.vidrec}/{v_leaf}", fwd, inv)
          for m in ARCHS.get(arch).modules() for t_leaf, coll, v_leaf, fwd, inv in TENSORS[m.kind]]


def num_classes_of(arch: str, state: dict[str, Array]) -> int:
  key = f"{ARCHS.get(arch).classifier}.weight"
  if key not in state:
    raise KeyError(f"{key!r} is not in the state dict: is it a torchvision {arch} checkpoint?")
  return int(np.shape(state[key])[0])


def variable_shapes(arch: str, num_classes: int) -> dict[str, tuple[int, ...]]:
  """Flat name -> shape of the vidrec module's variables (``jax.eval_shape``, nothing computed)."""
  spec = ARCHS.get(arch)
  x = jnp.zeros((1, 4, 32, 32, 3) if spec.video else (1, 32, 32, 3))
  tree = jax.eval_shape(lambda: spec.build(num_classes).init(jax.random.key(0), x, train=False))
  return {"/".join(k): tuple(v.shape) for k, v in flax.traverse_util.flatten_dict(tree).items()}


def to_vidrec(arch: str, state: dict[str, Array]) -> dict:
  """A torchvision state dict (numpy arrays) -> vidrec variables {"params", "batch_stats"} (numpy).

  Every tensor must be used and every vidrec variable filled, with vidrec's shape."""
  table = tensor_map(arch)
  expected = {t for t, _, _, _ in table}
  missing = sorted(expected - set(state))
  unexpected = sorted(k for k in set(state) - expected if not k.endswith(IGNORED_SUFFIXES))
  if missing or unexpected:
    raise KeyError(f"Not a torchvision {arch} state dict: missing {missing[:8]}{'...' if len(missing) > 8 else ''}"
                   f", unexpected {unexpected[:8]}{'...' if len(unexpected) > 8 else ''}. "
                   f"Check --arch (one of {ARCHS.names()}).")
  flat = {v: np.ascontiguousarray(fwd(np.asarray(state[t], np.float32))) for t, v, fwd, _ in table}
  shapes = variable_shapes(arch, num_classes_of(arch, state))
  bad = [f"{t} -> {v}: {flat[v].shape} vs vidrec {shapes.get(v)}" for t, v, _, _ in table
         if shapes.get(v) != flat[v].shape]
  if bad or set(shapes) != set(flat):
    raise ValueError(f"torchvision {arch} tensors do not fit vidrec's {arch}: {bad[:8]}, "
                     f"unfilled {sorted(set(shapes) - set(flat))[:8]}")
  return flax.traverse_util.unflatten_dict({tuple(k.split("/")): v for k, v in flat.items()})


def to_torch(arch: str, variables: dict) -> dict[str, Array]:
  """vidrec variables -> the torchvision state dict's tensors (numpy, without num_batches_tracked)."""
  flat = {"/".join(k): np.asarray(v) for k, v in flax.traverse_util.flatten_dict(dict(variables)).items()}
  return {t: np.ascontiguousarray(inv(flat[v])) for t, v, _, inv in tensor_map(arch)}
