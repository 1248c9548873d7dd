"""VGG16 (configuration D of Simonyan & Zisserman) in torchvision's layout, channels-last.

Used as JointLSTM's frozen pre-conv net (paper 001, Sec. 3.1: taps at ``pool4`` and ``conv5_3``) and as
an ImageNet model for weight import. Parameter names follow the Caffe/paper layer names: ``conv1_1`` ...
``conv5_3`` (3x3, stride 1, padding 1, bias, ReLU), 2x2/2 max pooling after each group (``pool1`` ...
``pool5``, floor mode as torchvision), then torchvision's ``AdaptiveAvgPool2d((7, 7))``, a flatten in
torchvision's (C, H, W) order and ``fc6`` (25088 -> 4096), ``fc7`` (4096 -> 4096), ``fc8`` (-> classes),
with ReLU + dropout after fc6 and fc7. With 1000 classes it has torchvision's 138,357,544 parameters.

``width`` scales every convolution's channels (64, 128, 256, 512, 512 at width 64) so a CPU-sized
stand-in keeps the module's code path.
"""
from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from vidrec.models.layers import Conv, Dtype

# (group, number of 3x3 convolutions, channels at width 64)
GROUPS = ((1, 2, 64), (2, 2, 128), (3, 3, 256), (4, 3, 512), (5, 3, 512))


def adaptive_avg_pool(x: jnp.ndarray, size: tuple[int, int]) -> jnp.ndarray:
  """torch's ``AdaptiveAvgPool2d`` on [N, H, W, C]: output cell i averages rows floor(i*H/s) ..
  ceil((i+1)*H/s) - 1 (and likewise for columns)."""
  def bins(n: int, s: int) -> list[tuple[int, int]]:
    return [((i * n) // s, -(-((i + 1) * n) // s)) for i in range(s)]
  rows = [jnp.stack([x[:, r0:r1, c0:c1].mean(axis=(1, 2)) for c0, c1 in bins(x.shape[2], size[1])], 1)
          for r0, r1 in bins(x.shape[1], size[0])]
  return jnp.stack(rows, 1)


class VGG16(nn.Module):
  """Images [N, H, W, 3] -> {"conv1_1", ..., "conv5_3", "pool1", ..., "pool5"[, "logits"]}.

  ``num_classes=None`` builds the convolutional part only (no fc6-fc8; JointLSTM's pre-conv net).
  Convolution outputs are after their ReLU (Caffe's in-place ReLU blobs)."""
  num_classes: int | None = 1000
  width: int = 64
  dropout: float = 0.5
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray, *, train: bool = False) -> dict[str, jnp.ndarray]:
    if x.ndim != 4:
      raise ValueError(f"VGG16 expects images [N, H, W, C], got shape {x.shape}")
    out: dict[str, jnp.ndarray] = {}
    x = x.astype(self.dtype)
    for group, num_convs, channels in GROUPS:
      for i in range(1, num_convs + 1):
        name = f"conv{group}_{i}"
        x = nn.relu(Conv(channels * self.width // 64, (3, 3), dtype=self.dtype, param_dtype=self.param_dtype,
                         name=name)(x))
        out[name] = x
      x = nn.max_pool(x, (2, 2), (2, 2))
      out[f"pool{group}"] = x
    if self.num_classes is None:
      return out
    x = adaptive_avg_pool(x, (7, 7))
    x = jnp.transpose(x, (0, 3, 1, 2)).reshape(x.shape[0], -1)   # torchvision's (C, H, W) flatten
    for name in ("fc6", "fc7"):
      x = nn.Dense(4096, dtype=self.dtype, param_dtype=self.param_dtype, name=name)(x)
      x = nn.Dropout(self.dropout, deterministic=not train)(nn.relu(x))
    out["logits"] = nn.Dense(self.num_classes, dtype=self.dtype, param_dtype=self.param_dtype,
                             name="fc8")(x).astype(jnp.float32)
    return out
