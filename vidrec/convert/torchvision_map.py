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

from vidrec.models import fstcn, layers, resnet2d, resnet3d, u2s, vgg
from vidrec.registry import Registry

Array = np.ndarray


def _conv_to_vidrec(w: Array) -> Array:
  return np.transpose(w, tuple(range(2, w.ndim)) + (1, 0))


def _conv_to_torch(k: Array) -> Array:
  nd = k.ndim - 2
  return np.transpose(k, (nd + 1, nd) + tuple(range(nd)))


def _same(x: Array) -> Array:
  return x


VGGM_CONV5 = 512   # VGG-M's conv5 channels: its fc6 reads a (C, H, W)-flattened 512 x 6 x 6 map


def _chw_dense_to_vidrec(w: Array) -> Array:
  """A Linear after torch's (C, H, W) flatten, ``[O, C*H*W]`` -> a Dense after vidrec's (H, W, C)
  flatten, ``[H*W*C, O]`` (square maps of ``VGGM_CONV5`` channels)."""
  o, i = w.shape
  s = int(round((i // VGGM_CONV5) ** 0.5))
  return w.reshape(o, VGGM_CONV5, s, s).transpose(2, 3, 1, 0).reshape(i, o)


def _chw_dense_to_torch(k: Array) -> Array:
  i, o = k.shape
  s = int(round((i // VGGM_CONV5) ** 0.5))
  return k.reshape(s, s, VGGM_CONV5, o).transpose(3, 2, 0, 1).reshape(o, i)


# kind -> [(torch leaf, vidrec collection, vidrec leaf, to vidrec, to torch)]
TENSORS: dict[str, list[tuple[str, str, str, Callable[[Array], Array], Callable[[Array], Array]]]] = {
    "conv": [("weight", "params", "kernel", _conv_to_vidrec, _conv_to_torch)],
    "conv_bias": [("weight", "params", "kernel", _conv_to_vidrec, _conv_to_torch),
                  ("bias", "params", "bias", _same, _same)],
    "dense": [("weight", "params", "kernel", np.transpose, np.transpose), ("bias", "params", "bias", _same, _same)],
    "conv_bias_bgr": [("weight", "params", "kernel", lambda w: _conv_to_vidrec(w)[..., ::-1, :].copy(),
                       lambda k: _conv_to_torch(k[..., ::-1, :])), ("bias", "params", "bias", _same, _same)],
    "dense_chw": [("weight", "params", "kernel", _chw_dense_to_vidrec, _chw_dense_to_torch),
                  ("bias", "params", "bias", _same, _same)],
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
  """A torch architecture: its module map, the vidrec module that runs it (``build(num_classes)``),
  its input rank, its classifier (torch prefix) and the ``config.model`` that trains it (None where no
  registered vidrec model has this layout). ``reference``: the torch model parity compares against
  (torchvision's builder of that name, default the arch's own, or ``parity.REFERENCES``); ``frames``
  > 0: vidrec runs the image model's input as a clip of that many copies; ``copies``: (source, target)
  module paths duplicated when converting (U2S's two branches start from the same groups); ``bgr``: the
  torch model reads BGR (vidrec's conversion takes RGB)."""
  modules: Callable[[], list[Module]]
  build: Callable[[int], nn.Module]
  video: bool
  classifier: str
  config_model: dict | None
  reference: str = ""
  frames: int = 0
  copies: tuple[tuple[str, str], ...] = ()
  bgr: bool = False


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


def u2s_resnet50_modules(prefix: str = "", conv1: str = "conv1", fc: str = "fc") -> list[Module]:
  """A torchvision ResNet-50 -> U2S's post-activation layout (``model.preact=False``): stem and layer1-2
  -> the shared Res2D ``res2d`` (groups 0-1), layer3-4 -> the UN's ``un_top`` (groups 2-3; 2D kernels,
  which ``init_adapt=i3d_inflate`` inflates into the ``top_heavy`` Res3D), the classifier -> ``un_head``.

  The torch names: ``prefix`` before every ResNet key, ``conv1`` for each block's first convolution and
  ``fc`` for the classifier; the defaults are torchvision's, TSM's (``tsm_resnet50``) are
  ``base_model.``, ``conv1.net`` (its ``TemporalShift`` wraps the convolution) and ``new_fc``."""
  out = [Module(f"{prefix}conv1", "res2d/stem/conv", "conv"), Module(f"{prefix}bn1", "res2d/stem/bn", "bn")]
  for stage, num_blocks in enumerate(u2s._DEPTHS[50][1]):  # pylint: disable=protected-access
    top = "res2d" if stage < 2 else "un_top"
    for i in range(num_blocks):
      tp, vp = f"{prefix}layer{stage + 1}.{i}", f"{top}/group{stage}_block{i}"
      for j, conv in enumerate((conv1, "conv2", "conv3"), 1):
        out += [Module(f"{tp}.{conv}", f"{vp}/conv{j}/conv", "conv"), Module(f"{tp}.bn{j}", f"{vp}/conv{j}/bn", "bn")]
      if i == 0:
        out += [Module(f"{tp}.downsample.0", f"{vp}/proj/conv", "conv"),
                Module(f"{tp}.downsample.1", f"{vp}/proj/bn", "bn")]
  return out + [Module(fc, "un_head", "dense")]


def vggm_modules() -> list[Module]:
  """VGG-M (CNN-M, Chatfield et al. 2014) as ported by pretrainedmodels (``features``: conv 0, 4, 8, 10,
  12; ``classif``: Linear 0, 3, 6) -> FstCN's auxiliary network: ``lower_scls/conv1..4``, ``conv5``,
  ``scl_fc6``, ``scl_fc7``, ``classifier_aux``. VGG-M reads BGR: conv1's input channels are reversed so
  that vidrec feeds it RGB."""
  convs = [Module(f"features.{i}", f"lower_scls/conv{j}", "conv_bias_bgr" if j == 1 else "conv_bias")
           for j, i in enumerate((0, 4, 8, 10), 1)]
  return convs + [Module("features.12", "conv5", "conv_bias"), Module("classif.0", "scl_fc6", "dense_chw"),
                  Module("classif.3", "scl_fc7", "dense"), Module("classif.6", "classifier_aux", "dense")]


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
# U2S from ImageNet ResNet-50 (TSM-style 2D groups with the shift off: fold_div above every width, so the
# map is checked against torchvision's resnet50 exactly; the top_heavy Res3D inflates it, i3d_inflate).
ARCHS.add("u2s_resnet50", Arch(
    u2s_resnet50_modules,
    lambda n: u2s.U2S(num_classes=n, depth=50, base="tsm", preact=False, variant="one_pass", tsm_fold_div=4096),
    False, "fc", {"name": "u2s", "depth": 50, "width": 64, "preact": False}, reference="resnet50", frames=1,
    copies=(("un_top", "csn_top"),)))
# U2S's tsm base from TSM's Kinetics-400 ResNet-50 (mit-han-lab/temporal-shift-module: TSN(base_model=
# resnet50, is_shift, shift_div=8, shift_place="blockres", dropout=0.5)): the same 2D groups with the shift
# on (every block's residual branch, 1/8 of the channels each way), checked against parity.tsm_resnet50.
ARCHS.add("tsm_resnet50", Arch(
    lambda: u2s_resnet50_modules("base_model.", "conv1.net", "new_fc"),
    lambda n: u2s.U2S(num_classes=n, depth=50, base="tsm", preact=False, variant="one_pass", tsm_fold_div=8),
    True, "new_fc", {"name": "u2s", "depth": 50, "width": 64, "base": "tsm", "preact": False,
                     "tsm_fold_div": 8}, reference="tsm_resnet50", copies=(("un_top", "csn_top"),)))
# FstCN's auxiliary network (CNN-M-2048 in the paper; VGG-M's fc7 has 4096 units).
ARCHS.add("vggm", Arch(vggm_modules, lambda n: fstcn.FstCN(num_classes=n, paths="scl", fc=(4096, 4096)),
                       False, "classif.6", {"name": "fstcn", "paths": "scl"}, frames=2, bgr=True))


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
  if spec.frames:    # a clip of identical frames, large enough for VGG-M's 6 x 6 fc6 input
    x = jnp.zeros((1, spec.frames, 224, 224, 3))
  with layers.using_conv_impl("native"):    # shapes only: no per-shape convolution measurements
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


def with_copies(arch: str, variables: dict) -> dict:
  """``variables`` with the arch's ``copies`` made (e.g. U2S's ``un_top`` also as ``csn_top``), as the
  converted directory holds them."""
  out = {collection: dict(tree) for collection, tree in variables.items()}
  for source, target in ARCHS.get(arch).copies:
    for tree in out.values():
      if source in tree:
        tree[target] = jax.tree.map(lambda a: a, tree[source])
  return out
