"""JointLSTM: multi-level VGG16 features, a deep-supervised 3D convnet with attention regularisation and
the soft-attention joint LSTM (paper 001, Sec. 3). Equations J1-J10 as labelled in
``docs/models/joint_lstm.md`` (the paper numbers none).

Per clip of T frames (L1 = 30 in the paper):

1. Pre-conv net (Sec. 3.1): :class:`vidrec.models.vgg.VGG16` per frame, taps ``branches`` (default
   ``pool4`` and ``conv5_3``, both 24x24x512 at 384x384), under ``stop_gradient`` unless
   ``finetune_vgg``.
2. Per branch, a two-layer convnet (Sec. 3.2, 4.2): 3x3x3 convs of ``conv_channels`` (256) with ReLU;
   the first reduces 24x24 to 11x11 (``reduce``), giving X_t [K2 = 121, 256]. A deep-supervision head
   (``ds_<branch>``: temporal mean, flatten, FC ``ds_hidden`` + ReLU + dropout, FC C = W_3d) gives
   ``logits_3d_<branch>``; ``energy_<branch>`` [N, T, K2] is the normalised channel-summed response
   of J10.
3. :class:`vidrec.models.joint_lstm_cell.AttentionLSTMStack` scanned over time by ``nn.RNN`` (one
   compiled step): attention (J6), pyramid pooling (J7, Sec. 3.4), joint LSTM (J2-J5) + standard LSTMs.
4. Per step ``probs`` = softmax(W_prob dropout(h_t)) (J8); ``logits`` = log of the mean of ``probs``
   over the last ``last_steps`` (L2) steps: the clip score of J9, whose argmax is the clip's label
   and whose softmax is that mean, so ``majority_vote`` / ``mean_softmax`` over clips work unchanged.

Config keys (``config.model``; defaults = the paper's readings): ``branches`` [("pool4", "conv5_3")],
``vgg_width`` [64], ``finetune_vgg`` [False], ``tap_scale`` [1.0: multiplies the taps; a frozen
random-init stand-in's taps are ~2^-5 of unit scale, since lecun init halves the variance per ReLU],
``conv_type`` ["3d" | "2d" | "none"], ``conv_channels``
[256], ``reduce`` ["stride2" | "conv_pool" | "same"], ``ds_hidden`` [1024], ``ds_pool`` ["flatten" |
"gap"], ``input_units`` [1024], ``hidden`` [1024], ``num_layers`` [3], ``fusion`` ["late" | "early"],
``pyramid`` [True], ``final_gate_bias`` [False], ``detach_3d_from_lstm`` [False], ``dropout`` [0.5],
``last_steps`` [16], ``dtype`` / ``param_dtype``.

Outputs: ``logits`` [N, C], ``step_logits`` / ``probs`` [N, T, C], ``attention`` [N, T, K2] and, with a
convnet, ``logits_3d_<b>`` [N, C] and ``energy_<b>`` [N, T, K2] per branch. Loss ``joint_lstm`` below.
"""
from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from vidrec.losses import LOSSES, cross_entropy
from vidrec.models import MODELS, dtype_of
from vidrec.models.joint_lstm_cell import AttentionLSTMStack
from vidrec.models.layers import Conv
from vidrec.models.vgg import VGG16

Dtype = Any
CONV_TYPES = ("3d", "2d", "none")
# First conv layer's spatial (stride, padding) and 2x2 max-pool flag: 24 -> 11 for the first two.
REDUCTIONS = {"stride2": (2, 0, False), "conv_pool": (1, 0, True), "same": (1, 1, False)}
DS_POOLS = ("flatten", "gap")


def channel_energy(x: jnp.ndarray, eps: float = 1e-6) -> jnp.ndarray:
  """J10's map: ``sum_k x_{t,i,k} / sum_j sum_k x_{t,j,k}`` for x [N, T, h, w, C] >= 0 -> [N, T, h*w]."""
  e = x.astype(jnp.float32).sum(-1).reshape(x.shape[:2] + (-1,))
  return e / (e.sum(-1, keepdims=True) + eps)


class ShortTermConvNet(nn.Module):
  """Two 3x3x3 (``2d``: 1x3x3) conv layers with ReLU on [N, T, H, W, C] (Sec. 4.2); the first one
  reduces the map by ``reduce`` (REDUCTIONS). Time is padded by 1: one output map per frame."""
  channels: int = 256
  conv_type: str = "3d"
  reduce: str = "stride2"
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    kt = 3 if self.conv_type == "3d" else 1
    stride, pad, pool = REDUCTIONS[self.reduce]
    conv = lambda name, s, p: Conv(self.channels, (kt, 3, 3), strides=(1, s, s),
                                   padding=((kt // 2, kt // 2), (p, p), (p, p)), dtype=self.dtype,
                                   param_dtype=self.param_dtype, name=name)
    x = nn.relu(conv("conv1", stride, pad)(x))
    if pool:
      x = nn.max_pool(x, (1, 2, 2), (1, 2, 2))
    return nn.relu(conv("conv2", 1, 1)(x))


class DeepSupervisionHead(nn.Module):
  """Sec. 3.2 "2 FC layers" on the convnet output: temporal mean, flatten (or global average),
  FC ``hidden`` + ReLU + dropout, FC classes (W_3d of J10)."""
  num_classes: int
  hidden: int = 1024
  pool: str = "flatten"
  dropout: float = 0.5
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    x = x.mean(1)
    x = x.reshape(x.shape[0], -1) if self.pool == "flatten" else x.mean((1, 2))
    x = nn.relu(nn.Dense(self.hidden, dtype=self.dtype, param_dtype=self.param_dtype, name="fc1")(x))
    x = nn.Dropout(self.dropout, deterministic=not train)(x)
    return nn.Dense(self.num_classes, dtype=self.dtype, param_dtype=self.param_dtype,
                    name="fc2")(x).astype(jnp.float32)


class JointLSTM(nn.Module):
  """Video [N, T, H, W, 3] -> outputs of the module docstring."""
  num_classes: int
  branches: Sequence[str] = ("pool4", "conv5_3")
  vgg_width: int = 64
  finetune_vgg: bool = False
  tap_scale: float = 1.0
  conv_type: str = "3d"
  conv_channels: int = 256
  reduce: str = "stride2"
  ds_hidden: int = 1024
  ds_pool: str = "flatten"
  input_units: int = 1024
  hidden: int = 1024
  num_layers: int = 3
  fusion: str = "late"
  pyramid: bool = True
  final_gate_bias: bool = False
  detach_3d_from_lstm: bool = False
  dropout: float = 0.5
  last_steps: int = 16
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  def check(self, video_shape: tuple[int, ...]) -> None:
    """Clear errors for bad settings, before anything is traced."""
    for key, value, allowed in (("conv_type", self.conv_type, CONV_TYPES), ("reduce", self.reduce, REDUCTIONS),
                                ("ds_pool", self.ds_pool, DS_POOLS)):
      if value not in allowed:
        raise ValueError(f"model.{key} must be one of {tuple(allowed)}, got {value!r}")
    if len(video_shape) != 5:
      raise ValueError(f"JointLSTM expects video [N, T, H, W, 3], got shape {video_shape}")
    if not self.branches:
      raise ValueError("model.branches is empty: name VGG16 taps, e.g. ('pool4', 'conv5_3').")
    if not 1 <= self.last_steps <= video_shape[1]:
      raise ValueError(f"model.last_steps (L2 = {self.last_steps}) must be in [1, clip length "
                       f"{video_shape[1]}]: lower it or raise input.clip_len.")
    if self.num_layers < 1:
      raise ValueError(f"model.num_layers must be >= 1, got {self.num_layers}")

  @nn.compact
  def __call__(self, video: jnp.ndarray, *, train: bool = False,
               labels: jnp.ndarray | None = None) -> dict[str, jnp.ndarray]:
    del labels
    self.check(video.shape)
    n, t = video.shape[:2]
    taps = VGG16(num_classes=None, width=self.vgg_width, dtype=self.dtype, param_dtype=self.param_dtype,
                 name="vgg")(video.reshape((n * t,) + video.shape[2:]), train=train)
    if unknown := [b for b in self.branches if b not in taps]:
      raise ValueError(f"model.branches {unknown} are not VGG16 taps; use any of {sorted(taps)}.")
    out: dict[str, jnp.ndarray] = {}
    maps = []
    for b in self.branches:
      f = taps[b] if self.finetune_vgg else jax.lax.stop_gradient(taps[b])
      f = f * self.tap_scale if self.tap_scale != 1.0 else f
      x = f.reshape((n, t) + f.shape[1:])
      if self.conv_type != "none":
        x = ShortTermConvNet(self.conv_channels, self.conv_type, self.reduce, self.dtype, self.param_dtype,
                             name=f"conv_{b}")(x)
        out[f"logits_3d_{b}"] = DeepSupervisionHead(self.num_classes, self.ds_hidden, self.ds_pool,
                                                    self.dropout, self.dtype, self.param_dtype,
                                                    name=f"ds_{b}")(x, train)
        out[f"energy_{b}"] = channel_energy(x)
      maps.append(x)
    if len({m.shape[2:-1] for m in maps}) > 1:
      raise ValueError(f"branches {tuple(self.branches)} give maps of different sizes "
                       f"{[m.shape[2:-1] for m in maps]}; attention is over shared positions, so pick taps "
                       f"of one resolution (pool4 and conv5_x are both 1/16 of the input).")
    if len({m.shape[-1] for m in maps}) > 1:
      raise ValueError(f"branches {tuple(self.branches)} give {[m.shape[-1] for m in maps]} channels; with "
                       f"model.conv_type='none' the joint cell reads the taps themselves, so they need equal "
                       f"channels (pool4 and conv5_3 do): use one branch or conv_type '3d' / '2d'.")
    x = jnp.stack([m.reshape(m.shape[:2] + (-1, m.shape[-1])) for m in maps], 2)   # [N, T, n, K2, C]
    if self.detach_3d_from_lstm:
      x = jax.lax.stop_gradient(x)
    cell = AttentionLSTMStack(self.hidden, self.input_units, self.num_layers, self.fusion, self.pyramid,
                              self.final_gate_bias, self.dtype, self.param_dtype, parent=None, name="cell")
    steps = nn.RNN(cell, name="rnn")(x)
    h = nn.Dropout(self.dropout, deterministic=not train)(steps["h"])
    step_logits = nn.Dense(self.num_classes, dtype=self.dtype, param_dtype=self.param_dtype,
                           name="classifier")(h).astype(jnp.float32)             # W_prob (J8)
    probs = jax.nn.softmax(step_logits, axis=-1)
    out.update(step_logits=step_logits, probs=probs, attention=steps["attention"],
               logits=clip_logits(step_logits, self.last_steps))
    return out


def clip_logits(step_logits: jnp.ndarray, last_steps: int) -> jnp.ndarray:
  """(J9) log of the mean softmax of the last ``last_steps`` steps, [N, T, C] -> [N, C] (log-sum-exp
  form: exact and finite even where a probability underflows)."""
  logp = jax.nn.log_softmax(step_logits[:, -last_steps:], axis=-1)
  return jax.nn.logsumexp(logp, axis=1) - jnp.log(float(last_steps))


_KEYS = ("branches", "vgg_width", "finetune_vgg", "tap_scale", "conv_type", "conv_channels", "reduce", "ds_hidden",
         "ds_pool", "input_units", "hidden", "num_layers", "fusion", "pyramid", "final_gate_bias",
         "detach_3d_from_lstm", "dropout", "last_steps")


@MODELS.register("joint_lstm")
def build(cfg: ml_collections.ConfigDict, num_classes: int) -> JointLSTM:
  """Builds :class:`JointLSTM` from ``config.model`` (missing keys take the defaults)."""
  kwargs = {k: cfg[k] for k in _KEYS if k in cfg}
  if "branches" in kwargs:
    kwargs["branches"] = tuple(kwargs["branches"])
  return JointLSTM(num_classes=num_classes, dtype=dtype_of(cfg.get("dtype", "float32")),
                   param_dtype=dtype_of(cfg.get("param_dtype", "float32")), **kwargs)


def attention_regulariser(energy: jnp.ndarray, attention: jnp.ndarray) -> jnp.ndarray:
  """J10's middle term without lambda: ``sum_t sum_i (energy_{t,i} - att_{t,i})^2``, mean over the
  batch. energy, attention: [N, T, K2]."""
  return ((energy - attention) ** 2).sum((1, 2)).mean()


@LOSSES.register("joint_lstm")
def joint_lstm_loss(outputs: dict, labels: jnp.ndarray, cfg: ml_collections.ConfigDict,
                    params: Any) -> dict[str, jnp.ndarray]:
  """Sec. 3.2-3.3: ``lstm`` (cross-entropy of J8 at every step, mean over steps; ``lstm_steps="last"``:
  only the last ``last_steps``), and per convnet branch b ``deep_sup_<b>`` (cross-entropy of W_3d,
  J10's first term) and ``att_reg_<b>`` (``lambda_att`` x J10's regulariser, the attention a
  stop-gradient target unless ``att_reg_grad_to_attention``). zeta's L2 term is the optimiser's
  weight decay. Keys: ``lambda_att`` [1000], ``lstm_steps`` ["all" | "last"], ``last_steps`` [16],
  ``att_reg_grad_to_attention`` [False], ``label_smoothing`` [0]."""
  del params
  ls = cfg.get("label_smoothing", 0.0)
  step_logits = outputs["step_logits"]
  mode = cfg.get("lstm_steps", "all")
  if mode not in ("all", "last"):
    raise ValueError(f"loss.lstm_steps must be 'all' or 'last', got {mode!r}")
  if mode == "last":
    step_logits = step_logits[:, -cfg.get("last_steps", 16):]
  onehot = optax.smooth_labels(jax.nn.one_hot(labels, step_logits.shape[-1]), ls)
  terms = {"lstm": optax.softmax_cross_entropy(step_logits, onehot[:, None]).mean()}
  att = outputs["attention"]
  if not cfg.get("att_reg_grad_to_attention", False):
    att = jax.lax.stop_gradient(att)
  lam = cfg.get("lambda_att", 1000.0)
  for name in sorted(k[len("logits_3d_"):] for k in outputs if k.startswith("logits_3d_")):
    terms[f"deep_sup_{name}"] = cross_entropy(outputs[f"logits_3d_{name}"], labels, ls)
    if lam:
      terms[f"att_reg_{name}"] = lam * attention_regulariser(outputs[f"energy_{name}"], att)
  return terms
