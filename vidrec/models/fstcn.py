"""FstCN: factorized spatio-temporal convolutional networks (Sun et al., ICCV 2015; paper 004).

A 3D kernel is factorised as K = K_xy (x) k_t (Eq. 2), i.e. 2D spatial convolutions of every frame
followed by convolutions along time (Eq. 3). Per clip pair {V_clip, V_clip^diff}:

- the lower SCLs (CNN-M-2048 conv1-conv4, Sec. 2.5) run on one RGB frame of V_clip and on the l_t
  frames of V_clip^diff = |V(t) - V(t + d_t)| (Eq. 4), with shared weights;
- TCL path: Conv(128,3,1)-ReLU-Pool(3,3) -> T-P operator (vectorise the x*y positions, permute the
  channels with a learned f x f' matrix P, transpose to a (time, channel) image with the positions as
  input channels) -> two parallel 2D convolutions over (time, channel) (3x3 and 5x5, 32 maps each,
  ReLU, dropout 0.5, concatenated, no pooling) -> FC 4096 -> FC 2048;
- SCL path: the RGB frame's lower-SCL features -> CNN-M conv5 (512,3,1)-ReLU-Pool(3,2) -> FC 4096
  -> FC 2048;
- fusion: concat -> FC 2048 -> classifier (``logits``).

Input (the model contract's ``video [N, T, H, W, 3]``, normalised): ``T = 2 l_t`` frames from the
``clip_pair`` sampler, the clip frames V(t_j) followed by their partners V(t_j + d_t), all with one
crop and flip. The model forms Eq. 4 itself; as the pipeline normalises per channel by
(x - mean) / std, |x_a - x_b| here equals the raw |V_a - V_b| / std (the mean cancels). The SCL
path's frame is a uniformly random clip frame in training (drawn from the ``dropout`` rng) and the
middle one at test (Sec. 2.2). Readings and deviations: docs/models/fstcn.md.
"""
from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from vidrec import losses
from vidrec.models import MODELS, dtype_of
from vidrec.models.layers import Conv, local_response_norm, max_pool_ceil

Dtype = Any
PATHS = ("both", "scl", "tcl")


class LowerSCLs(nn.Module):
  """Conv(96,7,2)-ReLU-LRN-Pool(3,2)-Conv(256,5,2)-ReLU-LRN-Pool(3,2)-Conv(512,3,1)-ReLU-Conv(512,3,1)-
  ReLU on frames [B, H, W, 3] (Sec. 2.5; CNN-M-2048 padding 0/1/1/1, Caffe ceil-mode pooling)."""
  widths: Sequence[int] = (96, 256, 512, 512)
  lrn: Sequence[float] = (2.0, 5, 5e-4, 0.75)   # k, n, alpha, beta
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    k, n, alpha, beta = self.lrn
    specs = ((7, 2, 0), (5, 2, 1), (3, 1, 1), (3, 1, 1))   # kernel, stride, pad
    for i, (width, (kernel, stride, pad)) in enumerate(zip(self.widths, specs)):
      x = nn.relu(Conv(width, (kernel, kernel), stride, ((pad, pad), (pad, pad)), dtype=self.dtype,
                       param_dtype=self.param_dtype, kernel_init=nn.initializers.he_normal(),
                       name=f"conv{i + 1}")(x))
      if i < 2:
        x = max_pool_ceil(local_response_norm(x, k, int(n), alpha, beta), 3, 2)
    return x


def tp_operator(x: jnp.ndarray, p: jnp.ndarray) -> jnp.ndarray:
  """The T-P operator (Sec. 2.1): x [N, T, h, w, f] -> [N, T, f', h*w]. Vectorises each h x w map,
  recombines the f channels into f' = P.shape[1] maps (``y[..., q, d] = sum_c x[..., q, c] P[c, d]``)
  and transposes so the result is an image of height T, width f' with the h*w positions as channels."""
  n, t, h, w, f = x.shape
  if p.shape[0] != f:
    raise ValueError(f"T-P operator: P has {p.shape[0]} rows but the features have {f} channels")
  y = jnp.einsum("ntqc,cd->ntqd", x.reshape(n, t, h * w, f), p.astype(x.dtype))
  return y.transpose(0, 1, 3, 2)


class TemporalConvLayer(nn.Module):
  """The TCL: parallel 2D convolutions over (time, channel) of the T-P output [N, T, f', h*w], one per
  kernel size (SAME padding, ReLU, dropout), concatenated on the feature axis; no pooling (Sec. 2.5)."""
  features: int = 32
  kernels: Sequence[int] = (3, 5)
  dropout: float = 0.5
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    branches = []
    for k in self.kernels:
      y = nn.relu(Conv(self.features, (k, k), 1, None, dtype=self.dtype, param_dtype=self.param_dtype,
                       kernel_init=nn.initializers.he_normal(), name=f"tcl_{k}x{k}")(x))
      branches.append(nn.Dropout(self.dropout, deterministic=not train)(y))
    return jnp.concatenate(branches, axis=-1)


class FstCN(nn.Module):
  """FstCN; returns ``logits`` (fusion classifier), ``logits_aux`` (= ``logits_scl``: the auxiliary
  CNN-M classifier on the SCL path, Sec. 2.3), ``logits_tcl`` (TCL-path classifier) and
  ``features_st`` (the fused FC). ``paths="scl"|"tcl"`` builds one path only and makes its classifier
  ``logits`` (Table 2's "only SCL/TCL path")."""
  num_classes: int
  paths: str = "both"
  scl_widths: Sequence[int] = (96, 256, 512, 512)
  lrn: Sequence[float] = (2.0, 5, 5e-4, 0.75)
  tcl_scl_width: int = 128          # Conv(128,3,1) before the T-P operator; P is f x f'
  permuted_channels: int = 128      # f'
  p_init_std: float = -1.0          # <0: 1/sqrt(f) (variance-preserving)
  tcl_features: int = 32
  tcl_kernels: Sequence[int] = (3, 5)
  tcl_dropout: float = 0.5
  conv5_width: int = 512            # SCL path (CNN-M conv5)
  fc: Sequence[int] = (4096, 2048)  # per path
  fusion_fc: int = 2048
  dropout: float = 0.5              # after every hidden FC
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  def _fc(self, x: jnp.ndarray, widths: Sequence[int], names: Sequence[str], train: bool) -> jnp.ndarray:
    for width, name in zip(widths, names, strict=True):
      x = nn.relu(nn.Dense(width, dtype=self.dtype, param_dtype=self.param_dtype,
                           kernel_init=nn.initializers.he_normal(), name=name)(x))
      x = nn.Dropout(self.dropout, deterministic=not train)(x)
    return x

  def _head(self, x: jnp.ndarray, name: str) -> jnp.ndarray:
    return nn.Dense(self.num_classes, dtype=self.dtype, param_dtype=self.param_dtype, name=name)(x)

  def _conv_pool(self, x: jnp.ndarray, width: int, pool: tuple[int, int], name: str) -> jnp.ndarray:
    x = nn.relu(Conv(width, (3, 3), 1, ((1, 1), (1, 1)), dtype=self.dtype, param_dtype=self.param_dtype,
                     kernel_init=nn.initializers.he_normal(), name=name)(x))
    return max_pool_ceil(x, *pool)

  @nn.compact
  def __call__(self, video: jnp.ndarray, train: bool = False, labels: jnp.ndarray | None = None) -> dict:
    del labels
    if self.paths not in PATHS:
      raise ValueError(f"model.paths must be one of {PATHS}, got {self.paths!r}")
    n, t2, h, w, _ = video.shape
    if t2 % 2 or t2 < 2:
      raise ValueError(f"fstcn needs the clip_pair sampler's 2*l_t frames (clip, then partners); got "
                       f"T={t2}: set --config.input.sampler=clip_pair")
    lt = t2 // 2
    video = video.astype(self.dtype)
    clip, partner = video[:, :lt], video[:, lt:]
    use_scl, use_tcl = self.paths in ("both", "scl"), self.paths in ("both", "tcl")
    frames = []
    if use_scl:
      if train:
        pick = jax.random.randint(self.make_rng("dropout"), (n,), 0, lt)
      else:
        pick = jnp.full((n,), lt // 2)
      frames.append(jnp.take_along_axis(clip, pick[:, None, None, None, None], axis=1))
    if use_tcl:
      frames.append(jnp.abs(clip - partner))                      # Eq. 4
    x = jnp.concatenate(frames, axis=1)
    per_sample = x.shape[1]
    feats = LowerSCLs(self.scl_widths, self.lrn, self.dtype, self.param_dtype, name="lower_scls")(
        x.reshape((n * per_sample, h, w, 3)))
    feats = feats.reshape((n, per_sample) + feats.shape[1:])
    out, fused = {}, []
    if use_scl:
      s = self._conv_pool(feats[:, 0], self.conv5_width, (3, 2), "conv5")
      s = self._fc(s.reshape(n, -1), self.fc, ("scl_fc6", "scl_fc7"), train)
      out["logits_aux"] = out["logits_scl"] = self._head(s, "classifier_aux")
      fused.append(s)
    if use_tcl:
      d = feats[:, int(use_scl):]
      d = self._conv_pool(d.reshape((n * lt,) + d.shape[2:]), self.tcl_scl_width, (3, 3), "tcl_conv")
      d = d.reshape((n, lt) + d.shape[1:])
      std = self.p_init_std if self.p_init_std > 0 else d.shape[-1] ** -0.5
      p = self.param("permutation", nn.initializers.normal(std), (d.shape[-1], self.permuted_channels),
                     self.param_dtype)
      d = TemporalConvLayer(self.tcl_features, self.tcl_kernels, self.tcl_dropout, self.dtype,
                            self.param_dtype, name="tcl")(tp_operator(d, p), train)
      d = self._fc(d.reshape(n, -1), self.fc, ("tcl_fc6", "tcl_fc7"), train)
      out["logits_tcl"] = self._head(d, "classifier_tcl")
      fused.append(d)
    if self.paths == "both":
      out["features_st"] = self._fc(jnp.concatenate(fused, -1), (self.fusion_fc,), ("fusion_fc",), train)
      out["logits"] = self._head(out["features_st"], "classifier")
    else:
      out["logits"] = out[f"logits_{self.paths}"]
    return out


@MODELS.register("fstcn")
def build(cfg: ml_collections.ConfigDict, num_classes: int) -> FstCN:
  """Every ``config.model`` key except name/dtype/param_dtype is a field of ``FstCN`` (unknown keys are
  an error naming them)."""
  fields = {k: tuple(v) if isinstance(v, (list, tuple)) else v for k, v in cfg.items()
            if k not in ("name", "dtype", "param_dtype")}
  if unknown := set(fields) - set(FstCN.__dataclass_fields__) - {"num_classes"}:
    raise ValueError(f"Unknown fstcn model keys {sorted(unknown)}; known: "
                     f"{sorted(set(FstCN.__dataclass_fields__) - {'num_classes', 'parent', 'name'})}")
  return FstCN(num_classes=num_classes, dtype=dtype_of(cfg.get("dtype", "float32")),
               param_dtype=dtype_of(cfg.get("param_dtype", "float32")), **fields)


@losses.LOSSES.register("fstcn")
def fstcn_loss(outputs: dict, labels: jnp.ndarray, cfg: ml_collections.ConfigDict,
               params: Any) -> dict[str, jnp.ndarray]:
  """Cross-entropy on ``logits`` plus ``aux_weight`` x CE on the auxiliary classifier (Sec. 2.3, the
  GoogLeNet-style auxiliary loss [28]) and ``tcl_weight`` x CE on the TCL-path classifier."""
  del params
  smoothing = cfg.get("label_smoothing", 0.0)
  terms = {"ce": losses.cross_entropy(outputs["logits"], labels, smoothing)}
  for term, head, weight in (("aux", "logits_aux", cfg.get("aux_weight", 0.0)),
                             ("tcl", "logits_tcl", cfg.get("tcl_weight", 0.0))):
    if weight:
      if head not in outputs:
        raise ValueError(f"loss.{term}_weight={weight} but the model has no {head!r} (model.paths): "
                         f"set --config.loss.{term}_weight=0")
      terms[term] = weight * losses.cross_entropy(outputs[head], labels, smoothing)
  return terms
