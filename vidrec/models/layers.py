"""Shared layers: a convolution with a fast CPU path for 3D kernels, BatchNorm with the project's
hyper-parameters, convolution + BatchNorm units and the 3D residual block (SGN Eq. 14-16)."""
from __future__ import annotations

import functools
import os
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

Dtype = Any
Padding = Sequence[tuple[int, int]]

# He initialisation over fan_out (torchvision's ResNet init) for convolutions followed by BatchNorm.
HE_FAN_OUT = nn.initializers.variance_scaling(2.0, "fan_out", "normal")
BN_MOMENTUM = 0.9       # PyTorch's momentum 0.1 (flax keeps 1 - that)
BN_EPSILON = 1e-5


def conv3d_impl() -> str:
  """How 3D convolutions run: ``$VIDREC_CONV3D`` (``native`` | ``temporal_sum``), else ``temporal_sum``
  on CPU (XLA:CPU's 3D convolution is several times slower than its 2D one) and ``native`` elsewhere."""
  impl = os.environ.get("VIDREC_CONV3D") or ("temporal_sum" if jax.default_backend() == "cpu" else "native")
  if impl not in ("native", "temporal_sum"):
    raise ValueError(f"VIDREC_CONV3D must be 'native' or 'temporal_sum', got {impl!r}")
  return impl


def conv_nd(x: jnp.ndarray, kernel: jnp.ndarray, strides: Sequence[int], padding: Padding) -> jnp.ndarray:
  """Channels-last convolution of x [N, *spatial, C] with kernel [*k, C, O] (explicit padding).

  A 3D convolution may run as the sum over temporal taps t of 2D convolutions of the time-strided
  slices x[:, t::s_t] with kernel[t] (exactly the same result; see ``conv3d_impl``)."""
  nd = kernel.ndim - 2
  if nd == 3 and conv3d_impl() == "temporal_sum":
    (p0, p1), st = padding[0], strides[0]
    xp = jnp.pad(x, ((0, 0), (p0, p1), (0, 0), (0, 0), (0, 0)))
    t_out = (xp.shape[1] - kernel.shape[0]) // st + 1
    out = 0
    for t in range(kernel.shape[0]):
      xs = lax.slice_in_dim(xp, t, t + st * (t_out - 1) + 1, st, axis=1)
      y = conv_nd(xs.reshape((-1,) + xs.shape[2:]), kernel[t], strides[1:], padding[1:])
      out = out + y.reshape((x.shape[0], t_out) + y.shape[1:])
    return out
  spatial = "DHW"[-nd:] if nd <= 3 else None
  return lax.conv_general_dilated(x, kernel, tuple(strides), tuple(padding),
                                  dimension_numbers=(f"N{spatial}C", f"{spatial}IO", f"N{spatial}C"))


class Conv(nn.Module):
  """Drop-in for ``nn.Conv`` (same parameter names and shapes) with explicit padding, using ``conv_nd``."""
  features: int
  kernel_size: Sequence[int]
  strides: Sequence[int] | int = 1
  padding: Padding | None = None       # default: k // 2 on each side
  use_bias: bool = True
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32
  kernel_init: Callable = nn.initializers.lecun_normal()
  bias_init: Callable = nn.initializers.zeros

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    k = tuple(self.kernel_size)
    strides = (self.strides,) * len(k) if isinstance(self.strides, int) else tuple(self.strides)
    kernel = self.param("kernel", self.kernel_init, k + (x.shape[-1], self.features), self.param_dtype)
    y = conv_nd(x.astype(self.dtype), kernel.astype(self.dtype), strides, self.padding or same_padding(k))
    if self.use_bias:
      y = y + self.param("bias", self.bias_init, (self.features,), self.param_dtype).astype(self.dtype)
    return y


def remat_block(block_cls: type[nn.Module], enabled: bool) -> type[nn.Module]:
  """``block_cls`` or, when enabled (``config.model.remat``), its rematerialised version: only the
  block's input is kept for the backward pass, its activations are recomputed (``block(x, train)``,
  ``train`` static). Parameter names are unchanged."""
  return nn.remat(block_cls, static_argnums=(2,)) if enabled else block_cls


def same_padding(kernel: Sequence[int]) -> tuple[tuple[int, int], ...]:
  """Symmetric padding k//2 per axis (3x7x7 -> 1x3x3, as in SGN Sec. IV-B)."""
  return tuple((k // 2, k // 2) for k in kernel)


def batch_norm(train: bool, *, dtype: Dtype = jnp.float32, param_dtype: Dtype = jnp.float32,
               momentum: float = BN_MOMENTUM, zero_init_scale: bool = False,
               name: str | None = None) -> nn.BatchNorm:
  """BatchNorm over the batch (``train``) or with its running averages, channels last."""
  return nn.BatchNorm(use_running_average=not train, momentum=momentum, epsilon=BN_EPSILON, dtype=dtype,
                      param_dtype=param_dtype,
                      scale_init=nn.initializers.zeros if zero_init_scale else nn.initializers.ones,
                      name=name)


class ConvBN(nn.Module):
  """Conv (no bias) -> BatchNorm -> optional ReLU, channels-last, any number of spatial dims."""
  features: int
  kernel: Sequence[int]
  strides: Sequence[int] | None = None
  relu: bool = True
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32
  bn_momentum: float = BN_MOMENTUM
  zero_init_scale: bool = False

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    x = Conv(self.features, tuple(self.kernel), strides=self.strides or 1, use_bias=False,
             dtype=self.dtype, param_dtype=self.param_dtype, kernel_init=HE_FAN_OUT, name="conv")(x)
    x = batch_norm(train, dtype=self.dtype, param_dtype=self.param_dtype, momentum=self.bn_momentum,
                   zero_init_scale=self.zero_init_scale, name="bn")(x)
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
