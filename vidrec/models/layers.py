"""Shared layers: a convolution with a fast CPU path for 3D kernels, BatchNorm with the project's
hyper-parameters, convolution + BatchNorm units (plain or (2+1)D-factorised), the 3D residual block
(SGN Eq. 14-16; R(2+1)D and MC3 variants), and Caffe's local response normalisation and ceil-mode max
pooling (FstCN's CNN-M layers)."""
from __future__ import annotations

import contextlib
import functools
import os
from typing import Any, Callable, Iterator, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from vidrec.models import conv_autotune, conv_gemm, conv_onednn

Dtype = Any
Padding = Sequence[tuple[int, int]]

# He initialisation over fan_out (torchvision's ResNet init) for convolutions followed by BatchNorm.
HE_FAN_OUT = nn.initializers.variance_scaling(2.0, "fan_out", "normal")
BN_MOMENTUM = 0.9       # PyTorch's momentum 0.1 (flax keeps 1 - that)
BN_EPSILON = 1e-5


CONV_IMPLS = ("native", "temporal_sum", "gemm", "onednn", "auto")


def conv3d_impl() -> str:
  """How convolutions run: ``$VIDREC_CONV3D`` (one of ``CONV_IMPLS``), else ``auto`` on CPU and
  ``native`` elsewhere. ``native`` is XLA's convolution; ``temporal_sum`` runs a 3D one as a sum of 2D
  ones (other ranks native); ``gemm`` runs every convolution as im2col GEMMs with a GEMM backward
  (``conv_gemm``); ``onednn`` runs every convolution (CPU only) by oneDNN through an XLA custom call, with
  oneDNN's backward-data and backward-weights primitives as its gradients (``conv_onednn``; needs
  ``pip install -e ".[onednn]"``); ``auto`` picks, per shape, whichever of ``native``, ``temporal_sum``,
  ``gemm`` and (where installed and buildable) ``onednn`` measured fastest on this machine, shapes under
  ``conv_autotune.MIN_MEASURED_GFLOPS`` unmeasured (``conv_autotune``; docs/performance.md)."""
  impl = os.environ.get("VIDREC_CONV3D") or ("auto" if jax.default_backend() == "cpu" else "native")
  if impl not in CONV_IMPLS:
    raise ValueError(f"VIDREC_CONV3D must be one of {CONV_IMPLS}, got {impl!r}")
  return impl


@contextlib.contextmanager
def using_conv_impl(impl: str) -> Iterator[None]:
  """Traces inside the block run convolutions as ``impl`` (sets ``$VIDREC_CONV3D``, restored on exit)."""
  saved = os.environ.get("VIDREC_CONV3D")
  os.environ["VIDREC_CONV3D"] = impl
  try:
    yield
  finally:
    if saved is None:
      del os.environ["VIDREC_CONV3D"]
    else:
      os.environ["VIDREC_CONV3D"] = saved


def conv_nd(x: jnp.ndarray, kernel: jnp.ndarray, strides: Sequence[int], padding: Padding,
            impl: str | None = None) -> jnp.ndarray:
  """Channels-last convolution of x [N, *spatial, C] with kernel [*k, C, O] (explicit padding), run as
  ``impl`` (default ``conv3d_impl()``) says.

  A 3D convolution may run as the sum over temporal taps t of 2D convolutions of the time-strided
  slices x[:, t::s_t] with kernel[t] (exactly the same result); ``gemm`` is ``conv_gemm.conv_gemm``,
  ``onednn`` ``conv_onednn.conv_onednn``."""
  nd = kernel.ndim - 2
  impl = impl or conv3d_impl()
  if impl == "auto":
    impl = conv_autotune.choose(conv_nd, x.shape, kernel.shape, strides, padding, x.dtype)
  if impl == "gemm":
    return conv_gemm.conv_gemm(x, kernel, strides, padding)
  if impl == "onednn":
    return conv_onednn.conv_onednn(x, kernel, strides, padding)
  if nd == 3 and impl == "temporal_sum":
    (p0, p1), st = padding[0], strides[0]
    xp = jnp.pad(x, ((0, 0), (p0, p1), (0, 0), (0, 0), (0, 0)))
    t_out = (xp.shape[1] - kernel.shape[0]) // st + 1
    out = 0
    for t in range(kernel.shape[0]):
      xs = lax.slice_in_dim(xp, t, t + st * (t_out - 1) + 1, st, axis=1)
      y = conv_nd(xs.reshape((-1,) + xs.shape[2:]), kernel[t], strides[1:], padding[1:], "native")
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
    # model.init (batch 1, trainer.init_state): every path gives the same values; native, so that
    # ``auto`` measures no shape that training will not run
    impl = "native" if self.is_initializing() else None
    y = conv_nd(x.astype(self.dtype), kernel.astype(self.dtype), strides, self.padding or same_padding(k), impl)
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
  """Conv (no bias) -> BatchNorm -> optional ReLU, channels-last, any number of spatial dims.

  With ``mid_features`` set, a 3D ``kt x kh x kw`` convolution is factorised as in R(2+1)D (torchvision's
  ``Conv2Plus1D`` / ``R2Plus1dStem``): ``conv_s`` 1 x kh x kw (stride 1 x s_h x s_w, ``mid_features``
  channels) -> ``bn_s`` -> ReLU -> ``conv_t`` kt x 1 x 1 (stride s_t x 1 x 1), then ``bn`` as usual."""
  features: int
  kernel: Sequence[int]
  strides: Sequence[int] | None = None
  relu: bool = True
  mid_features: int | None = None
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32
  bn_momentum: float = BN_MOMENTUM
  zero_init_scale: bool = False

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    conv = functools.partial(Conv, use_bias=False, dtype=self.dtype, param_dtype=self.param_dtype,
                             kernel_init=HE_FAN_OUT)
    bn = functools.partial(batch_norm, train, dtype=self.dtype, param_dtype=self.param_dtype,
                           momentum=self.bn_momentum)
    kernel = tuple(self.kernel)
    strides = tuple(self.strides) if self.strides else (1,) * len(kernel)
    if self.mid_features is None:
      x = conv(self.features, kernel, strides=strides, name="conv")(x)
    else:
      if len(kernel) != 3:
        raise ValueError(f"A (2+1)D-factorised ConvBN needs a 3D kernel, got {kernel}")
      x = conv(self.mid_features, (1,) + kernel[1:], strides=(1,) + strides[1:], name="conv_s")(x)
      x = nn.relu(bn(name="bn_s")(x))
      x = conv(self.features, kernel[:1] + (1, 1), strides=strides[:1] + (1, 1), name="conv_t")(x)
    x = bn(zero_init_scale=self.zero_init_scale, name="bn")(x)
    return nn.relu(x) if self.relu else x


def r2plus1d_mid_features(in_features: int, features: int, kernel: Sequence[int] = (3, 3, 3)) -> int:
  """torchvision's (2+1)D mid-channel rule (R(2+1)D paper, Sec. 3.5): the factorised pair has about the
  parameters of the full ``kt x kh x kw`` convolution, ``floor(Ci Co kt kh kw / (Ci kh kw + kt Co))``."""
  kt, kh, kw = kernel
  return (in_features * features * kt * kh * kw) // (in_features * kh * kw + kt * features)


class ResBlock3D(nn.Module):
  """Two ConvBN layers H plus a shortcut: ReLU(H(F) + H'(F)).

  ``H'`` is a 1x1x1 strided ConvBN projection when the shape changes (the RCB of Eq. 15) and the
  identity otherwise (the RIB of Eq. 16). RCB2a keeps 64 channels at stride 1, so it has an identity
  shortcut, as in the ResNet3D-18 the paper builds on (torchvision's r3d_18 layout). With
  ``conv_shortcut`` (SGN's Eq. 15 as printed: every RCB has a convolutional H', and "all other 3D
  convolution kernels are 3x3x3", Sec. IV-B) ``H'`` is a ConvBN with the block's own ``kernel`` and
  stride, whatever the shapes.

  ``kernel`` is 3x3x3 (r3d) or 1x3x3 (MC3's 2D stages); ``factorized`` turns both convolutions into
  (2+1)D pairs with ``r2plus1d_mid_features(C_in, features)`` mid channels (torchvision's BasicBlock
  computes that number once from the block's input width and uses it for both convolutions).
  """
  features: int
  strides: Sequence[int] = (1, 1, 1)
  kernel: Sequence[int] = (3, 3, 3)
  factorized: bool = False
  conv_shortcut: bool = False
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    mid = r2plus1d_mid_features(x.shape[-1], self.features, self.kernel) if self.factorized else None
    unit = functools.partial(ConvBN, mid_features=mid, dtype=self.dtype, param_dtype=self.param_dtype)
    h = unit(self.features, self.kernel, self.strides, name="conv_a")(x, train)
    h = unit(self.features, self.kernel, relu=False, name="conv_b")(h, train)
    shortcut = x
    if self.conv_shortcut:
      shortcut = unit(self.features, self.kernel, self.strides, relu=False, name="proj")(x, train)
    elif x.shape[-1] != self.features or any(s != 1 for s in self.strides):
      shortcut = unit(self.features, (1, 1, 1), self.strides, relu=False, mid_features=None,
                      name="proj")(x, train)
    return nn.relu(h + shortcut)


def local_response_norm(x: jnp.ndarray, k: float = 2.0, n: int = 5, alpha: float = 5e-4,
                        beta: float = 0.75) -> jnp.ndarray:
  """Caffe's cross-channel LRN (channels-last): ``b_c = a_c / (k + alpha/n * sum_{c'} a_{c'}^2)^beta``
  over the ``n`` channels centred on ``c`` (zero-padded at the ends). Defaults: AlexNet's k = 2, n = 5
  as FstCN Sec. 2.5 quotes them, with alpha = 5e-4."""
  if n % 2 != 1:
    raise ValueError(f"LRN window n must be odd (centred on the channel), got {n}")
  c = jnp.arange(x.shape[-1])
  band = (jnp.abs(c[:, None] - c[None]) <= n // 2).astype(jnp.float32)   # the window as a matrix
  s = jnp.square(x.astype(jnp.float32)) @ band
  return (x / jnp.power(k + (alpha / n) * s, beta).astype(x.dtype)).astype(x.dtype)


def ceil_pool_size(size: int, window: int, stride: int) -> int:
  """Caffe's pooled size without padding: ``ceil((size - window) / stride) + 1``."""
  return -(-(size - window) // stride) + 1


def max_pool_ceil(x: jnp.ndarray, window: int, stride: int) -> jnp.ndarray:
  """Max pooling over the spatial axes of x [N, H, W, C] with Caffe's ceil-mode output size (the last
  window may hang over the bottom/right edge; the missing cells count as -inf)."""
  pads = []
  for size in x.shape[1:3]:
    if size < window:
      raise ValueError(f"max_pool_ceil: spatial size {size} is smaller than the window {window}; "
                       f"use a larger input (input.crop)")
    pads.append((0, (ceil_pool_size(size, window, stride) - 1) * stride + window - size))
  return nn.max_pool(x, (window, window), (stride, stride), padding=tuple(pads))
