"""Shared layers: convolution + BatchNorm units and the 3D residual block (SGN Eq. 14-16)."""
from __future__ import annotations

import functools
from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp

Dtype = Any


def same_padding(kernel: Sequence[int]) -> tuple[tuple[int, int], ...]:
  """Symmetric padding k//2 per axis (3x7x7 -> 1x3x3, as in SGN Sec. IV-B)."""
  return tuple((k // 2, k // 2) for k in kernel)


class ConvBN(nn.Module):
  """Conv (no bias) -> BatchNorm -> optional ReLU, channels-last, any number of spatial dims."""
  features: int
  kernel: Sequence[int]
  strides: Sequence[int] | None = None
  relu: bool = True
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32
  bn_momentum: float = 0.9
  zero_init_scale: bool = False

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    x = nn.Conv(self.features, tuple(self.kernel), strides=self.strides or 1,
                padding=same_padding(self.kernel), use_bias=False, dtype=self.dtype,
                param_dtype=self.param_dtype,
                kernel_init=nn.initializers.variance_scaling(2.0, "fan_out", "normal"), name="conv")(x)
    x = nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum, epsilon=1e-5,
                     dtype=self.dtype, param_dtype=self.param_dtype,
                     scale_init=nn.initializers.zeros if self.zero_init_scale else nn.initializers.ones,
                     name="bn")(x)
    return nn.relu(x) if self.relu else x


class ResBlock3D(nn.Module):
  """Two 3x3x3 ConvBN layers H plus a shortcut: ReLU(H(F) + H'(F)).

  ``H'`` is a 1x1x1 strided ConvBN projection when the shape changes (the RCB of Eq. 15) and the
  identity otherwise (the RIB of Eq. 16). RCB2a keeps 64 channels at stride 1, so it has an identity
  shortcut, as in the ResNet3D-18 the paper builds on (torchvision's r3d_18 layout).
  """
  features: int
  strides: Sequence[int] = (1, 1, 1)
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    unit = functools.partial(ConvBN, dtype=self.dtype, param_dtype=self.param_dtype)
    h = unit(self.features, (3, 3, 3), self.strides, name="conv_a")(x, train)
    h = unit(self.features, (3, 3, 3), relu=False, name="conv_b")(h, train)
    shortcut = x
    if x.shape[-1] != self.features or any(s != 1 for s in self.strides):
      shortcut = unit(self.features, (1, 1, 1), self.strides, relu=False, name="proj")(x, train)
    return nn.relu(h + shortcut)
