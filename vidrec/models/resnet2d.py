"""Single-frame 2D ResNet-18/50: the "Frame" stream of "SGN + Frame" (paper 000, Tables V-VII).

The paper fuses SGN's scores with those of a single-frame image network ("Single Frame [31]", i.e. the
spatial stream of two-stream networks) without specifying it; this is the standard ImageNet ResNet in
torchvision's layout (v1.5: the stride of a bottleneck sits on its 3x3 convolution), channels-last:
conv1 7x7/2 - BN - ReLU - maxpool 3x3/2 - 4 stages (64, 128, 256, 512 x width/64; BasicBlock x [2,2,2,2]
for depth 18, Bottleneck (expansion 4) x [3,4,6,3] for depth 50) - global average pool - fc. Parameter
counts match torchvision: 11,689,512 (resnet18) and 25,557,032 (resnet50) with 1000 classes.

Input ``video`` [N, T, H, W, 3]: normally T = 1 (one sampled frame per view). With T > 1 every frame is
classified independently and logits and embeddings are averaged over T.

Config (``config.model``, name ``"resnet2d_frame"``): ``depth`` (18 | 50, default 18), ``width`` (64),
``dropout`` before fc (0.0), ``zero_init_residual`` (False, as torchvision), ``remat`` (False: recompute
each block in the backward pass), ``dtype``/``param_dtype``.
Outputs ``{"logits": [N, num_classes], "embedding": [N, D]}``.
"""
from __future__ import annotations

import functools

import flax.linen as nn
import jax.numpy as jnp
import ml_collections


from vidrec.errors import UserError
from vidrec.models import MODELS, dtype_of
from vidrec.models.layers import ConvBN, Dtype, remat_block

STAGE_BLOCKS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}


class BasicBlock2D(nn.Module):
  """Two 3x3 ConvBN layers + shortcut (1x1 strided ConvBN projection when the shape changes)."""
  features: int
  strides: int = 1
  zero_init_residual: bool = False
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32
  expansion = 1

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    unit = functools.partial(ConvBN, dtype=self.dtype, param_dtype=self.param_dtype)
    s = (self.strides, self.strides)
    h = unit(self.features, (3, 3), s, name="conv_a")(x, train)
    h = unit(self.features, (3, 3), relu=False, zero_init_scale=self.zero_init_residual, name="conv_b")(h, train)
    shortcut = x
    if x.shape[-1] != self.features or self.strides != 1:
      shortcut = unit(self.features, (1, 1), s, relu=False, name="proj")(x, train)
    return nn.relu(h + shortcut)


class Bottleneck2D(nn.Module):
  """1x1 -> 3x3 (strided) -> 1x1 (x4 channels) ConvBN layers + shortcut (torchvision ResNet v1.5)."""
  features: int
  strides: int = 1
  zero_init_residual: bool = False
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32
  expansion = 4

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    unit = functools.partial(ConvBN, dtype=self.dtype, param_dtype=self.param_dtype)
    s = (self.strides, self.strides)
    out = self.features * self.expansion
    h = unit(self.features, (1, 1), name="conv_a")(x, train)
    h = unit(self.features, (3, 3), s, name="conv_b")(h, train)
    h = unit(out, (1, 1), relu=False, zero_init_scale=self.zero_init_residual, name="conv_c")(h, train)
    shortcut = x
    if x.shape[-1] != out or self.strides != 1:
      shortcut = unit(out, (1, 1), s, relu=False, name="proj")(x, train)
    return nn.relu(h + shortcut)


def resnet2d_trunk(x: jnp.ndarray, *, depth: int, width: int, train: bool, bn_train: bool | None = None,
                   zero_init_residual: bool = False, remat: bool = False, dtype: Dtype = jnp.float32,
                   param_dtype: Dtype = jnp.float32) -> jnp.ndarray:
  """conv1 7x7/2 - BN - ReLU - maxpool 3x3/2 - the 4 stages, images [N, H, W, C] -> [N, h, w, D].

  Call it inside a compact ``__call__``: its layers become the caller's submodules ``conv1`` and
  ``layer<s>_<i>`` (the torchvision names ``vidrec.convert`` maps). ``bn_train`` (default ``train``) is
  the BatchNorm mode of every stage: False with ``train`` True is TSN's partial BN (only conv1's
  BatchNorm normalises by the batch). ``remat`` recomputes each block in the backward pass.
  """
  if depth not in STAGE_BLOCKS:
    raise UserError(f"config.model.depth={depth}: use one of {sorted(STAGE_BLOCKS)}")
  bn_train = train if bn_train is None else bn_train
  x = ConvBN(width, (7, 7), (2, 2), dtype=dtype, param_dtype=param_dtype, name="conv1")(x, train)
  x = nn.max_pool(x, (3, 3), (2, 2), padding=((1, 1), (1, 1)))
  block_cls = remat_block(BasicBlock2D if depth < 50 else Bottleneck2D, remat)
  for stage, num_blocks in enumerate(STAGE_BLOCKS[depth]):
    for i in range(num_blocks):
      x = block_cls(width * 2 ** stage, 2 if i == 0 and stage > 0 else 1, zero_init_residual,
                    dtype=dtype, param_dtype=param_dtype, name=f"layer{stage + 1}_{i}")(x, bn_train)
  return x


class ResNet2DFrame(nn.Module):
  """Channels-last 2D ResNet applied to each frame of [N, T, H, W, C]; logits/embedding averaged over T."""
  num_classes: int
  depth: int = 18
  width: int = 64
  dropout: float = 0.0
  zero_init_residual: bool = False
  remat: bool = False
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, video: jnp.ndarray, *, train: bool = False,
               labels: jnp.ndarray | None = None) -> dict[str, jnp.ndarray]:
    del labels
    if video.ndim != 5:
      raise ValueError(f"ResNet2DFrame expects video [N, T, H, W, C], got shape {video.shape}")
    n, t = video.shape[:2]
    x = video.reshape((n * t,) + video.shape[2:]).astype(self.dtype)
    x = resnet2d_trunk(x, depth=self.depth, width=self.width, train=train,
                       zero_init_residual=self.zero_init_residual, remat=self.remat, dtype=self.dtype,
                       param_dtype=self.param_dtype)
    embedding = x.mean(axis=(1, 2))
    embedding = nn.Dropout(self.dropout, deterministic=not train)(embedding)
    logits = nn.Dense(self.num_classes, dtype=self.dtype, param_dtype=self.param_dtype, name="fc")(embedding)
    logits = logits.reshape(n, t, -1).mean(axis=1)
    embedding = embedding.reshape(n, t, -1).mean(axis=1)
    return {"logits": logits.astype(jnp.float32), "embedding": embedding.astype(jnp.float32)}


class ResNet2D(ResNet2DFrame):
  """The same network (same parameter names) on images [N, H, W, C]: torchvision's ImageNet
  ResNet-18/50 (``vidrec.convert``) and the per-frame backbone of image-pretrained models."""

  def __call__(self, images: jnp.ndarray, *, train: bool = False,
               labels: jnp.ndarray | None = None) -> dict[str, jnp.ndarray]:
    if images.ndim != 4:
      raise ValueError(f"ResNet2D expects images [N, H, W, C], got shape {images.shape}")
    return super().__call__(images[:, None], train=train, labels=labels)


@MODELS.register("resnet2d_frame")
def build(cfg: ml_collections.ConfigDict, num_classes: int) -> ResNet2DFrame:
  return ResNet2DFrame(num_classes=num_classes, depth=cfg.get("depth", 18), width=cfg.get("width", 64),
                       dropout=cfg.get("dropout", 0.0), zero_init_residual=cfg.get("zero_init_residual", False),
                       remat=cfg.get("remat", False),
                       dtype=dtype_of(cfg.get("dtype", "float32")),
                       param_dtype=dtype_of(cfg.get("param_dtype", "float32")))
