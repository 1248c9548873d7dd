"""ATW: attention-based temporal weighted CNN over TSN segments (paper 002, Sec. 3; docs/models/atw.md).

One stream (RGB, optical flow or warped flow; "each stream ... is trained independently"): a 2D
ResNet-18/50 in torchvision layout (``vidrec.models.resnet2d.resnet2d_trunk``, parameters named like
``ResNet2DFrame``: conv1, layer<s>_<i>, fc) shared over the T snippets of a video, giving per-snippet
class scores a_i (Eq. 1), and a segmental consensus from ``vidrec.models.consensus.CONSENSUS`` (default
``attention``: Eq. 2-4) giving the video score A_att. The consensus sits before the softmax (Sec. 4).

Input ``video`` [B, T, H, W, C]: C = 3 for RGB, 2 L for a stack of L flow fields (x, y interleaved).
T is the number of snippets: 8 (``num_segments``) in training, any number (80) at test.

Outputs: ``logits`` = A_att [B, num_classes], ``snippet_logits`` = a [B, T, num_classes], ``attention``
= w [B, T] (Fig. 3: the most and least attended snippets).

Config (``config.model``, name ``"atw"``): ``depth`` (18 | 50), ``width`` (64), ``num_segments`` (N of
training, for the ``one_over_n`` init and ``positional``), ``consensus`` (attention | avg | max |
positional), ``attention_activation`` (relu | tanh | sigmoid | none), ``attention_init`` (gaussian | one |
one_over_n), ``dropout`` before fc (TSN: 0.8 RGB, 0.7 flow), ``partial_bn`` (TSN: every BatchNorm but
the first uses and keeps its running statistics in training; its other half, frozen scale/offset, is
``config.optimizer.frozen = PARTIAL_BN_FROZEN``, set with it by ``configs/recipes/atw.py``), ``remat``
(recompute each block in the backward pass), ``dtype``/``param_dtype``.

Cross-modality initialisation (TSN, "We employ cross modality pre-training [12]"): ImageNet weights go
into every stream; a flow stream's first convolution gets ``cross_modality_kernel`` of the RGB kernel.
Every ATW config sets ``init_from``'s adapter ``init_adapt=channel_mean`` (``configs/recipes/atw.py``;
``vidrec.init_from.channel_mean`` is this rule for kernels of any rank), so a flow stream initialised
from RGB weights gets this kernel automatically (tests/test_pretrained.py checks they agree); the
torchvision ``fc`` is not loaded (the classes differ).
"""
from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp
import ml_collections
import numpy as np

from vidrec import losses
from vidrec.models import MODELS, dtype_of
from vidrec.models.consensus import CONSENSUS
from vidrec.models.layers import Dtype
from vidrec.models.resnet2d import resnet2d_trunk

FC_INIT_STD = 0.001   # TSN's classifier initialisation
# Partial BN's optimizer half (``config.optimizer.frozen``): the scale/offset of every BatchNorm but
# conv1's, i.e. those inside the stages ``layer<s>_<i>`` (tsn-pytorch get_optim_policies drops them).
PARTIAL_BN_FROZEN = "layer*/bn/*"


@losses.ALERTS.register("metrics/consensus/dead")
def _dead_attention(dead: float) -> str | None:
  """Warns when every video of a log window had all snippet energies at 0 (``attention_health``)."""
  if dead < 1.0:
    return None
  return ("ATW's attention is dead: every energy e_i = act(w_att . a_i + b) was 0 in every video since the "
          "last log (Eq. 2 after the ReLU), so w is uniform and the model is average consensus "
          "(docs/models/atw.md). Lower optimizer.lr, or set model.attention_init=one or "
          "model.attention_activation=tanh.")


def cross_modality_kernel(rgb_kernel: np.ndarray, in_channels: int) -> np.ndarray:
  """TSN's cross-modality initialisation: the RGB first-conv kernel [kh, kw, 3, O] averaged over its
  input channels and replicated ``in_channels`` times -> [kh, kw, in_channels, O] (tsn-pytorch
  ``_construct_flow_model``: ``kernel.mean(dim=1, keepdim=True).expand(...)``)."""
  rgb_kernel = np.asarray(rgb_kernel)
  if rgb_kernel.ndim != 4:
    raise ValueError(f"expected a 2D conv kernel [kh, kw, in, out], got shape {rgb_kernel.shape}")
  mean = rgb_kernel.mean(axis=2, keepdims=True)
  return np.repeat(mean, in_channels, axis=2).astype(rgb_kernel.dtype)


class ATW(nn.Module):
  """One ATW stream: shared 2D ResNet over snippets -> a_i (Eq. 1) -> consensus (Eq. 2-4)."""
  num_classes: int
  depth: int = 18
  width: int = 64
  num_segments: int = 8
  consensus: str = "attention"
  attention_activation: str = "relu"
  attention_init: str = "gaussian"
  dropout: float = 0.8
  partial_bn: bool = False
  remat: bool = False
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, video: jnp.ndarray, *, train: bool = False,
               labels: jnp.ndarray | None = None) -> dict[str, jnp.ndarray]:
    del labels
    if video.ndim != 5:
      raise ValueError(f"ATW expects video [B, T, H, W, C] (T snippets), got shape {video.shape}")
    b, t = video.shape[:2]
    x = video.reshape((b * t,) + video.shape[2:]).astype(self.dtype)
    x = resnet2d_trunk(x, depth=self.depth, width=self.width, train=train, bn_train=train and not self.partial_bn,
                       remat=self.remat, dtype=self.dtype, param_dtype=self.param_dtype)
    x = nn.Dropout(self.dropout, deterministic=not train)(x.mean(axis=(1, 2)))
    a = nn.Dense(self.num_classes, dtype=self.dtype, param_dtype=self.param_dtype,
                 kernel_init=nn.initializers.normal(FC_INIT_STD), name="fc")(x)
    a = a.reshape(b, t, -1).astype(jnp.float32)                                   # Eq. 1
    consensus = CONSENSUS.get(self.consensus)(self.num_segments, self.attention_activation,
                                              self.attention_init, name="consensus")
    logits, weights = consensus(a)                                                # Eq. 2-4
    return {"logits": logits, "snippet_logits": a, "attention": weights}


@MODELS.register("atw")
def build(cfg: ml_collections.ConfigDict, num_classes: int) -> ATW:
  return ATW(num_classes=num_classes, depth=cfg.get("depth", 18), width=cfg.get("width", 64),
             num_segments=cfg.get("num_segments", 8), consensus=cfg.get("consensus", "attention"),
             attention_activation=cfg.get("attention_activation", "relu"),
             attention_init=cfg.get("attention_init", "gaussian"), dropout=cfg.get("dropout", 0.8),
             partial_bn=cfg.get("partial_bn", False), remat=cfg.get("remat", False), dtype=dtype_of(cfg.get("dtype", "float32")),
             param_dtype=dtype_of(cfg.get("param_dtype", "float32")))
