"""Segmental consensus functions of ATW (paper 002, Sec. 3.2 and Table 1): snippet scores a [B, T, C]
-> (video score A [B, C], snippet weights w [B, T]).

``config.model.consensus`` picks one by name from ``CONSENSUS``:

- ``attention`` (Eq. 2-4): e_i = act(w_att . a_i + b), w_i = softmax_i(e_i), A = sum_i w_i a_i. Content
  based, so it runs on any number of snippets (8 in training, 80 at test) with the same parameters.
- ``avg``: A = mean_i a_i (w_i = 1/T).
- ``max``: A = max_i a_i per class (w_i = share of the classes whose maximum snippet i holds).
- ``positional``: the reading in which the attention layer's weights are per-position snippet weights
  (Table 2's "weight = 1/N is equivalent to average consensus" holds exactly only here):
  A = act(sum_k v_k abar_k + b), v in R^N, abar_k the mean of the snippets of the k-th of N equal
  groups (one snippet per group in training; T = 80 at test gives groups of 10). w_i = v_k / group size.
"""
from __future__ import annotations

from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from vidrec.losses import METRICS
from vidrec.registry import Registry

ACTIVATIONS: Registry[Callable[[jnp.ndarray], jnp.ndarray]] = Registry("model.attention_activation")
ACTIVATIONS.add("relu", nn.relu)
ACTIVATIONS.add("tanh", jnp.tanh)
ACTIVATIONS.add("sigmoid", nn.sigmoid)
ACTIVATIONS.add("none", lambda x: x)

GAUSSIAN_STD = 0.001   # TSN's FC initialisation std, for the "random Gaussian" row of Table 2


def attention_init(name: str, num_segments: int) -> Callable:
  """Table 2's initialisations of the attention weights: ``gaussian`` N(0, 0.001^2), ``one`` (1),
  ``one_over_n`` (1/N with N the training segments); the bias is always 0."""
  inits = {"gaussian": nn.initializers.normal(GAUSSIAN_STD),
           "one": nn.initializers.ones,
           "one_over_n": nn.initializers.constant(1.0 / num_segments)}
  if name not in inits:
    raise ValueError(f"model.attention_init={name!r}: use one of {sorted(inits)}")
  return inits[name]


class Consensus(nn.Module):
  """Base of every consensus: a [B, T, C] -> (A [B, C], w [B, T]); the fields come from config.model."""
  num_segments: int
  activation: str = "relu"
  init_scheme: str = "gaussian"

  def weighted(self, x: jnp.ndarray, equation: str, size: int) -> jnp.ndarray:
    """The attention layer: act(einsum(equation, x, v) + b), v in R^size initialised by ``init_scheme``
    (Table 2), b = 0 at init. Call from a compact ``__call__`` (parameters ``kernel``, ``bias``)."""
    v = self.param("kernel", attention_init(self.init_scheme, self.num_segments), (size,), jnp.float32)
    b = self.param("bias", nn.initializers.zeros, (), jnp.float32)
    return ACTIVATIONS.get(self.activation)(jnp.einsum(equation, x, v) + b)


class Attention(Consensus):
  """Eq. 2-4 (content attention over snippets)."""

  @nn.compact
  def __call__(self, a: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    e = self.weighted(a, "btc,c->bt", a.shape[-1])           # Eq. 2 (+ the rectifier of Sec. 3.2)
    w = jax.nn.softmax(e, axis=1)                             # Eq. 3
    if not self.is_initializing():
      for name, value in attention_health(e, w).items():
        self.sow(METRICS, name, value)                        # logged in training (vidrec.losses)
    return jnp.einsum("bt,btc->bc", w, a), w                  # Eq. 4


def attention_health(e: jnp.ndarray, w: jnp.ndarray) -> dict[str, jnp.ndarray]:
  """Training diagnostics of Eq. 2-3 from energies ``e`` and weights ``w`` [B, T]: ``zero_energy``, the
  fraction of e_i == 0 (a rectifier's dead units); ``entropy``, H(w) / ln T averaged over videos (1 =
  uniform weights); ``dead``, the fraction of videos whose energies are all 0, for which the softmax is
  uniform and the attention is exactly average consensus."""
  entropy = -jnp.sum(w * jnp.log(jnp.maximum(w, 1e-30)), axis=1) / jnp.log(max(w.shape[1], 2))
  return {"zero_energy": jnp.mean(e == 0), "entropy": jnp.mean(entropy),
          "dead": jnp.mean(jnp.all(e == 0, axis=1))}


class Average(Consensus):

  def __call__(self, a: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    return a.mean(axis=1), jnp.full(a.shape[:2], 1.0 / a.shape[1], a.dtype)


class Max(Consensus):

  def __call__(self, a: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    winners = jax.nn.one_hot(a.argmax(axis=1), a.shape[1], axis=1, dtype=a.dtype)   # [B, T, C]
    return a.max(axis=1), winners.mean(axis=2)


class Positional(Consensus):
  """The positional reading (v in R^N over N groups of snippets, activation on the weighted sum)."""

  @nn.compact
  def __call__(self, a: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    n, (bsz, t, c) = self.num_segments, a.shape
    if t % n:
      raise ValueError(f"positional consensus over {t} snippets needs a multiple of model.num_segments={n}: "
                       f"set input.num_test_segments to a multiple of {n}.")
    score = self.weighted(a.reshape(bsz, n, t // n, c).mean(axis=2), "bnc,n->bc", n)
    v = self.get_variable("params", "kernel")
    return score, jnp.broadcast_to(jnp.repeat(v, t // n) / (t // n), (bsz, t))


CONSENSUS: Registry[type[Consensus]] = Registry("model.consensus")
CONSENSUS.add("attention", Attention)
CONSENSUS.add("avg", Average)
CONSENSUS.add("max", Max)
CONSENSUS.add("positional", Positional)
