"""ResNet3D as laid out in SGN (paper 000, Sec. IV-B, Fig. 3(a)).

BCB1(64) - RCB2a(64) - RIB2b(64) - RCB3a(128) - RIB3b(128) - RCB4a(256) - RIB4b(256) - RCB5a(512)
- RIB5b(512) - pool - fc(c). conv1 is 3x7x7, stride 1x2x2, padding 1x3x3 (BCB, Eq. 14); every other
convolution is 3x3x3; stages 3-5 start with stride 2 in time and space. Blocks are residual (Eq. 15/16).

Config (``config.model``): ``width`` (channels of BCB1/stage 2; 64 standard), ``blocks_per_stage``
(2 -> ResNet3D-18 as in the paper), ``num_stages`` (4; fewer for tiny CPU models), ``dropout`` before
fc, ``remat`` (recompute each block in the backward pass), ``dtype``/``param_dtype``. With width 64 and
400 classes it has 33,371,472 parameters.

``block`` (``BLOCKS``) picks the convolutions, in torchvision's video-ResNet layouts (Tran et al. 2018):
``r3d`` (default, the paper's: 3x3x3 everywhere, torchvision's r3d_18), ``r2plus1d`` (every 3x3x3
convolution, and the 3x7x7 stem, factorised into a 1xkxk spatial and a kx1x1 temporal convolution with
BN + ReLU between; torchvision's r2plus1d_18: 31,505,325 parameters at width 64 / 400 classes) and
``mc3`` (3D convolutions in the stem and stage 2, 1x3x3 convolutions and spatial-only strides 1x2x2
in stages 3-5; torchvision's mc3_18: 11,695,440 parameters).

``rcb`` picks the shortcut H' of the convolution blocks (RCB2a, 3a, 4a, 5a): ``"torchvision"`` (default,
weight-compatible with torchvision: a 1x1x1 projection where the shape changes, the identity at RCB2a)
or ``"eq15"`` (SGN Eq. 15 as printed: every RCB, RCB2a included, has a convolutional H' with the
block's kernel, 3x3x3 for ``r3d``, since "all other 3D convolution kernels are 3x3x3", Sec. IV-B;
r3d at width 64 / 400 classes: 37,955,024 parameters).

Subclasses (SGN) change individual blocks by overriding :meth:`ResNet3D.block_output` (which may also
store extra per-call entries in ``features``) and add outputs by overriding :meth:`ResNet3D.extra_outputs`.
"""
from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax.numpy as jnp
import ml_collections

from vidrec.models import MODELS, dtype_of
from vidrec.models.layers import ConvBN, Dtype, ResBlock3D, remat_block
from vidrec.registry import Registry


@dataclasses.dataclass(frozen=True)
class BlockKind:
  """How one ``model.block`` option builds the network.

  ``stem_mid``: 0 for the plain 3x7x7 stem; else the (2+1)D stem's mid channels at width 64
  (torchvision's R2Plus1dStem: 45; scaled by width/64 at other widths). ``temporal_stages``: stages
  (counted from stage 2) whose convolutions are 3x3x3 and whose strides include time; later stages
  use 1x3x3 kernels and 1x2x2 strides. ``factorized``: (2+1)D blocks."""
  stem_mid: int = 0
  temporal_stages: int = 4
  factorized: bool = False

  def stage_is_3d(self, stage: int) -> bool:
    return stage - 2 < self.temporal_stages


BLOCKS: Registry[BlockKind] = Registry("model.block")
BLOCKS.add("r3d", BlockKind())
BLOCKS.add("r2plus1d", BlockKind(stem_mid=45, factorized=True))
BLOCKS.add("mc3", BlockKind(temporal_stages=1))

# model.rcb: does every convolution block get a convolutional shortcut H' (Eq. 15) of its own kernel?
RCB_SHORTCUTS: Registry[bool] = Registry("model.rcb")
RCB_SHORTCUTS.add("torchvision", False)
RCB_SHORTCUTS.add("eq15", True)


def block_names(num_stages: int = 4, blocks_per_stage: int = 2) -> list[str]:
  """Block names in order: ['2a', '2b', '3a', ...]; the first of a stage is the RCB, the rest RIBs."""
  return [f"{stage}{chr(ord('a') + i)}" for stage in range(2, 2 + num_stages)
          for i in range(blocks_per_stage)]


def block_strides(name: str, block: str = "r3d") -> tuple[int, int, int]:
  """(t, h, w) stride of block ``name``: 2 for the first block of stages 3-5 (Sec. IV-B), else 1;
  stages without temporal convolutions (``mc3``) keep stride 1 in time."""
  if name[1] != "a" or int(name[0]) == 2:
    return (1, 1, 1)
  return (2, 2, 2) if BLOCKS.get(block).stage_is_3d(int(name[0])) else (1, 2, 2)


class ResNet3D(nn.Module):
  """Channels-last ResNet3D; returns {'logits', 'embedding'}."""
  num_classes: int
  width: int = 64
  num_stages: int = 4
  blocks_per_stage: int = 2
  block: str = "r3d"
  rcb: str = "torchvision"
  dropout: float = 0.0
  remat: bool = False
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  def block_output(self, name: str, block: ResBlock3D, x: jnp.ndarray,
                   features: dict[str, jnp.ndarray], train: bool) -> jnp.ndarray:
    """Runs one block on ``x``; ``features`` maps earlier block names (and 'stem') to their outputs."""
    del name, features
    return block(x, train)

  def extra_outputs(self, features: dict[str, jnp.ndarray]) -> dict[str, jnp.ndarray]:
    """Entries added to the output dict, read from ``features`` after the last block (none here)."""
    del features
    return {}

  @nn.compact
  def __call__(self, video: jnp.ndarray, *, train: bool = False,
               labels: jnp.ndarray | None = None) -> dict[str, jnp.ndarray]:
    del labels
    if video.ndim != 5:
      raise ValueError(f"ResNet3D expects video [N, T, H, W, C], got shape {video.shape}")
    kind = BLOCKS.get(self.block)
    conv_shortcut = RCB_SHORTCUTS.get(self.rcb)
    x = video.astype(self.dtype)
    stem_mid = max(1, kind.stem_mid * self.width // 64) if kind.stem_mid else None
    x = ConvBN(self.width, (3, 7, 7), (1, 2, 2), mid_features=stem_mid, dtype=self.dtype,
               param_dtype=self.param_dtype, name="bcb1")(x, train)
    features = {"stem": x}
    for name in block_names(self.num_stages, self.blocks_per_stage):
      stage, first = int(name[0]), name[1] == "a"
      block = remat_block(ResBlock3D, self.remat)(
          self.width * 2 ** (stage - 2), block_strides(name, self.block),
          kernel=(3, 3, 3) if kind.stage_is_3d(stage) else (1, 3, 3), factorized=kind.factorized,
          conv_shortcut=first and conv_shortcut, dtype=self.dtype, param_dtype=self.param_dtype, name=f"{'rcb' if first else 'rib'}{name}")
      x = self.block_output(name, block, x, features, train)
      features[name] = x
    embedding = x.mean(axis=(1, 2, 3))
    embedding = nn.Dropout(self.dropout, deterministic=not train)(embedding)
    logits = nn.Dense(self.num_classes, dtype=self.dtype, param_dtype=self.param_dtype, name="fc")(embedding)
    return {"logits": logits.astype(jnp.float32), "embedding": embedding.astype(jnp.float32),
            **self.extra_outputs(features)}


def resnet3d_kwargs(cfg: ml_collections.ConfigDict) -> dict:
  """The ResNet3D fields read from ``config.model`` (shared with models built on ResNet3D)."""
  return dict(width=cfg.get("width", 64), num_stages=cfg.get("num_stages", 4),
              blocks_per_stage=cfg.get("blocks_per_stage", 2), block=cfg.get("block", "r3d"),
              rcb=cfg.get("rcb", "torchvision"),
              dropout=cfg.get("dropout", 0.0), remat=cfg.get("remat", False),
              dtype=dtype_of(cfg.get("dtype", "float32")),
              param_dtype=dtype_of(cfg.get("param_dtype", "float32")))


@MODELS.register("resnet3d")
def build(cfg: ml_collections.ConfigDict, num_classes: int) -> ResNet3D:
  kwargs = resnet3d_kwargs(cfg)
  BLOCKS.get(kwargs["block"])  # an unknown block or rcb name fails at build time
  RCB_SHORTCUTS.get(kwargs["rcb"])
  return ResNet3D(num_classes=num_classes, **kwargs)
