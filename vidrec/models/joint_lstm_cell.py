"""The recurrent part of JointLSTM (paper 001, Sec. 3.3-3.4): soft attention driven by the previous
hidden state (J6), attention pooling over a spatial pyramid (J7, Sec. 3.4), the joint LSTM layer with
early (J4a) or late (J4b) fusion (J2-J5), and standard LSTM layers (J1) stacked on top.

Equation labels J1-J10 follow ``docs/models/joint_lstm.md`` (the paper has no numbers). One step of
:class:`AttentionLSTMStack` is the body of the ``nn.RNN`` scan in :mod:`vidrec.models.joint_lstm`.
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

Dtype = Any
Carry = tuple[tuple[jnp.ndarray, jnp.ndarray], ...]   # ((c, h) of layer 1, ..., (c, h) of the top layer)
FUSIONS = ("early", "late")


def pyramid_masks(side: int, pyramid: bool = True) -> np.ndarray:
  """Region masks over a ``side x side`` grid, float32 [R, side**2] (Sec. 3.4).

  Row 0 is the full map; with ``pyramid`` rows 1-4 are the quadrants top-left, top-right,
  bottom-left, bottom-right, split at ``ceil(side / 2)`` (rows 0-5 | 6-10 on the paper's 11x11)."""
  full = np.ones((1, side * side), np.float32)
  if not pyramid:
    return full
  if side < 2:
    raise ValueError(f"the spatial pyramid needs a feature map of at least 2x2, got {side}x{side}: "
                     "set model.pyramid=False or use a larger input.")
  cut = -(-side // 2)
  rows = np.arange(side)[:, None].repeat(side, 1)
  cols = rows.T
  quads = [(rows < cut) & (cols < cut), (rows < cut) & (cols >= cut),
           (rows >= cut) & (cols < cut), (rows >= cut) & (cols >= cut)]
  return np.concatenate([full, np.stack([q.reshape(-1) for q in quads]).astype(np.float32)])


def pyramid_pool(features: jnp.ndarray, att: jnp.ndarray, masks: np.ndarray,
                 eps: float = 1e-6) -> jnp.ndarray:
  """(J7) + Sec. 3.4: attention-weighted averages of ``features`` [B, n, K2, C] over each region.

  Inside region r the weights are ``att_i / (sum_{j in r} att_j + eps)``, so every part is a weighted
  average on the same scale as the full map (whose weights already sum to 1). Returns [B, n, R * C]
  in the order [x_full, x_region1, ..., x_region4]."""
  masks = jnp.asarray(masks, jnp.float32)
  w = masks[None] * att[:, None, :]                                   # [B, R, K2]
  w = w / (w.sum(-1, keepdims=True) + eps) if masks.shape[0] > 1 else w
  pooled = jnp.einsum("brk,bnkc->bnrc", w.astype(features.dtype), features)
  return pooled.reshape(pooled.shape[:2] + (-1,))


class JointLSTMCell(nn.Module):
  """The joint LSTM layer (J2-J5) over ``n`` inputs ``x^k`` [B, D] (stacked as [B, n, D]).

  (J2) sub-gates ``g_t^k = tanh(W_xgk x^k + W_hgk h + b_gk)`` for g in (i, f, o);
  (J3) gates ``g_t = sigmoid(sum_k W_ggk g_t^k)`` (no bias, as printed; ``final_gate_bias`` adds one);
  (J4a) early: ``c~ = tanh(sum_k W_xck x^k + W_hc h + b_c)``;
  (J4b) late: ``c~ = tanh(sum_k W_xck (x^k * i_t^k) + W_hc h + b_c)``;
  (J5) ``c = f * c_prev + i * c~``, ``h = o * tanh(c)``.

  Parameters: ``sub_x_<k>`` (Dense 3H with the b_*k biases; columns i | f | o), ``sub_h`` (Dense
  n*3H, no bias; block k = W_h*k), ``gate_i/f/o`` (Dense H over the concatenated sub-gates, i.e. the
  stacked W_ggk), ``cand_x`` (Dense H over the concatenated x^k or x^k * i^k, no bias), ``cand_h``
  (Dense H with b_c)."""
  features: int
  fusion: str = "late"
  final_gate_bias: bool = False
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, carry: tuple[jnp.ndarray, jnp.ndarray],
               x: jnp.ndarray) -> tuple[tuple[jnp.ndarray, jnp.ndarray], jnp.ndarray]:
    if self.fusion not in FUSIONS:
      raise ValueError(f"model.fusion must be one of {FUSIONS}, got {self.fusion!r}")
    c, h = carry
    n, hid = x.shape[1], self.features
    if self.fusion == "late" and x.shape[-1] != hid:
      raise ValueError(f"late fusion multiplies x^k by i^k, so the input units ({x.shape[-1]}) must "
                       f"equal the hidden size ({hid}): set model.input_units = model.hidden.")
    dense = lambda f, name, bias: nn.Dense(f, use_bias=bias, dtype=self.dtype, param_dtype=self.param_dtype,
                                           name=name)
    rec = dense(n * 3 * hid, "sub_h", False)(h).reshape(h.shape[0], n, 3 * hid)
    sub = jnp.tanh(jnp.stack([dense(3 * hid, f"sub_x_{k}", True)(x[:, k]) for k in range(n)], 1) + rec)
    i_k, f_k, o_k = jnp.split(sub, 3, axis=-1)                          # each [B, n, H]
    flat = lambda a: a.reshape(a.shape[0], -1)
    i = nn.sigmoid(dense(hid, "gate_i", self.final_gate_bias)(flat(i_k)))
    f = nn.sigmoid(dense(hid, "gate_f", self.final_gate_bias)(flat(f_k)))
    o = nn.sigmoid(dense(hid, "gate_o", self.final_gate_bias)(flat(o_k)))
    cand_in = x if self.fusion == "early" else x * i_k
    cand = jnp.tanh(dense(hid, "cand_x", False)(flat(cand_in)) + dense(hid, "cand_h", True)(h))
    c = f * c + i * cand
    h = o * jnp.tanh(c)
    return (c, h), h


class AttentionLSTMStack(nn.RNNCellBase):
  """One time step: attention from the top layer's h_{t-1} (J6), pyramid pooling of every branch's
  maps (J7, Sec. 3.4), per-branch linear input units, then the joint LSTM layer (several branches) or
  a standard LSTM (one branch: Sharma et al.'s attention LSTM, Table 2), then ``num_layers - 1``
  standard LSTM layers (J1).

  Step input ``X_t`` [B, n, K2, C] (branches stacked); carry ``((c, h), ...)`` per layer; output
  ``{"h": top h_t [B, H], "attention": att_t [B, K2]}``."""
  hidden: int = 1024
  input_units: int = 1024
  num_layers: int = 3
  fusion: str = "late"
  pyramid: bool = True
  final_gate_bias: bool = False
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, carry: Carry, x: jnp.ndarray) -> tuple[Carry, dict[str, jnp.ndarray]]:
    n, k2 = x.shape[1], x.shape[2]
    side = int(round(k2 ** 0.5))
    # (J6) softmax over the K2 positions of W_att h_{t-1} (top layer; no bias, as printed), in float32.
    logits = nn.Dense(k2, use_bias=False, dtype=self.dtype, param_dtype=self.param_dtype,
                      name="att")(carry[-1][1])
    att = jax.nn.softmax(logits.astype(jnp.float32), axis=-1)
    pooled = pyramid_pool(x, att, pyramid_masks(side, self.pyramid))    # [B, n, R*C]
    units = jnp.stack([nn.Dense(self.input_units, dtype=self.dtype, param_dtype=self.param_dtype,
                                name=f"input_{k}")(pooled[:, k]) for k in range(n)], 1)
    new_carry = []
    if n > 1:
      state, h = JointLSTMCell(self.hidden, self.fusion, self.final_gate_bias, self.dtype,
                               self.param_dtype, name="joint")(carry[0], units)
    else:
      state, h = self._lstm("lstm_1")(carry[0], units[:, 0])
    new_carry.append(state)
    for layer in range(1, self.num_layers):
      state, h = self._lstm(f"lstm_{layer + 1}")(carry[layer], h)
      new_carry.append(state)
    return tuple(new_carry), {"h": h, "attention": att}

  def _lstm(self, name: str) -> nn.Module:
    return nn.OptimizedLSTMCell(self.hidden, dtype=self.dtype, param_dtype=self.param_dtype, name=name)

  @nn.nowrap
  def initialize_carry(self, rng: jax.Array, input_shape: tuple[int, ...]) -> Carry:
    """Zero (c, h) for every layer (the paper is silent on the initial state)."""
    del rng
    zeros = jnp.zeros(input_shape[:-3] + (self.hidden,), self.dtype)
    return tuple((zeros, zeros) for _ in range(self.num_layers))

  @property
  def num_feature_axes(self) -> int:
    return 3
