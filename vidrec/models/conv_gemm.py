"""Convolution as GEMMs (the CPU path): im2col patches + one ``dot`` per group of kernel taps, with a
custom VJP whose input and kernel gradients are GEMMs too.

For x [N, *S, C] (explicitly padded to xp) and kernel w [*k, C, O], the output is
``y[n, o] = sum_{taps a} xp[n, s*o + a] @ w[a]``. The taps are grouped by their first ``split``
coordinates: ``split = 0`` is one GEMM over all ``prod(k) C`` columns (whole-kernel im2col),
``split = 1`` one GEMM per temporal tap (``kh kw C`` columns each, summed), ``split = nd`` one GEMM per
tap (``C`` columns). For each group, with P its patch matrix [N prod(out), |group| C]:

- forward  ``y  += P @ w_g``                      (w_g: the group's kernel rows [|group| C, O])
- kernel   ``dw_g = P^T @ dy``                     (P recomputed from x, not stored)
- input    ``dx  += col2im(dy @ w_g^T)``           (each tap's columns added back at its strided place)

The batch may be split into ``chunks`` (a ``lax.map``) to bound the patch buffers' memory. Which
``split``/``chunks`` runs fastest for a shape is measured (``vidrec.tools.conv_bench``) and the rule it
gave is ``plan`` (docs/performance.md). Results equal ``lax.conv_general_dilated`` up to float rounding
(tests/test_conv_gemm.py). Accumulation is float32 whatever the input dtype.
"""
from __future__ import annotations

import functools
import itertools
import math
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
from jax import lax

Padding = Sequence[tuple[int, int]]


class Plan(NamedTuple):
  split: int     # kernel axes looped over (0: whole-kernel GEMM, 1: per temporal tap, nd: per tap)
  chunks: int    # batch chunks (a divisor of N), 1 = no chunking


# Patch buffer size above which the batch is chunked (measured: ``conv_bench``; docs/performance.md).
PATCH_BUDGET_BYTES = 256 * 2**20
# Whole-kernel im2col (split 0) when it has at most this many columns, else one GEMM per temporal tap.
FULL_IM2COL_MAX_COLUMNS = 2048


def plan(x_shape: Sequence[int], kernel_shape: Sequence[int], strides: Sequence[int], itemsize: int) -> Plan:
  """The formulation for this shape (rule and the measurements behind it: docs/performance.md): the
  whole-kernel GEMM when it has at most ``FULL_IM2COL_MAX_COLUMNS`` columns, else one GEMM per temporal
  tap; more kernel axes looped over while one clip's patches exceed ``PATCH_BUDGET_BYTES``; then the
  fewest batch chunks that keep the patch buffer within it."""
  nd = len(kernel_shape) - 2
  rows = math.prod(-(-d // s) for d, s in zip(x_shape[1:-1], strides))
  cols = lambda split: math.prod(kernel_shape[split:nd]) * kernel_shape[-2]
  first = 0 if cols(0) <= FULL_IM2COL_MAX_COLUMNS else min(1, nd)
  split = next((k for k in range(first, nd + 1) if rows * cols(k) * itemsize <= PATCH_BUDGET_BYTES), nd)
  n = x_shape[0]
  chunks = next(k for k in range(1, n + 1)
                if n % k == 0 and (k == n or n // k * rows * cols(split) * itemsize <= PATCH_BUDGET_BYTES))
  return Plan(split, chunks)


def _out_shape(xp_shape: Sequence[int], k: Sequence[int], strides: Sequence[int]) -> tuple[int, ...]:
  return tuple((d - kk) // s + 1 for d, kk, s in zip(xp_shape[1:-1], k, strides))


def _groups(k: Sequence[int], split: int) -> list[tuple[tuple[int, ...], list[tuple[int, ...]]]]:
  """(prefix, its taps in row-major order) for each group of taps sharing the first ``split`` offsets."""
  return [(pre, [pre + rest for rest in itertools.product(*map(range, k[split:]))])
          for pre in itertools.product(*map(range, k[:split]))]


def _patches(xp: jnp.ndarray, taps: list[tuple[int, ...]], out: Sequence[int], strides: Sequence[int]):
  """[N, *out, len(taps) C]: for each tap a, the strided window xp[:, a + s o] (tap-major, then C)."""
  cols = [lax.slice(xp, (0,) + a + (0,),
                    (xp.shape[0],) + tuple(o + s * (m - 1) + 1 for o, s, m in zip(a, strides, out))
                    + (xp.shape[-1],), (1,) + tuple(strides) + (1,))
          for a in taps]
  return cols[0] if len(cols) == 1 else jnp.concatenate(cols, axis=-1)


def _col2im(dp: jnp.ndarray, taps: list[tuple[int, ...]], xp_shape: Sequence[int], strides: Sequence[int]):
  """Adjoint of ``_patches``: each tap's C columns of dp [N, *out, len(taps) C] added (float32) at its
  strided place in a zero array of shape xp_shape."""
  c, out = xp_shape[-1], dp.shape[1:-1]
  total = None
  for i, a in enumerate(taps):
    cfg = [(0, 0, 0)] + [(o, d - (o + s * (m - 1) + 1), s - 1)
                         for o, d, s, m in zip(a, xp_shape[1:-1], strides, out)] + [(0, 0, 0)]
    part = lax.pad(dp[..., i * c:(i + 1) * c].astype(jnp.float32), jnp.float32(0), cfg)
    total = part if total is None else total + part
  return total


def _contract_last(a: jnp.ndarray, b: jnp.ndarray, out_dtype) -> jnp.ndarray:
  """a [..., K] @ b [K, O] with float32 accumulation."""
  return lax.dot_general(a, b, (((a.ndim - 1,), (0,)), ((), ())), preferred_element_type=jnp.float32
                         ).astype(out_dtype)


def _forward(xp: jnp.ndarray, w: jnp.ndarray, strides, split: int) -> jnp.ndarray:
  nd, o = w.ndim - 2, w.shape[-1]
  out = _out_shape(xp.shape, w.shape[:nd], strides)
  groups = _groups(w.shape[:nd], split)
  acc = xp.dtype if len(groups) == 1 else jnp.float32
  y = sum(_contract_last(_patches(xp, taps, out, strides), w[pre].reshape(-1, o), acc) for pre, taps in groups)
  return y.astype(xp.dtype)


def _backward(xp: jnp.ndarray, w: jnp.ndarray, dy: jnp.ndarray, strides, split: int):
  """(d xp in float32, dw in float32) of ``_forward``."""
  nd, o = w.ndim - 2, w.shape[-1]
  out = dy.shape[1:-1]
  dxp, dws = None, []
  batch_axes = tuple(range(nd + 1))
  for pre, taps in _groups(w.shape[:nd], split):
    wg = w[pre].reshape(-1, o)
    p = _patches(xp, taps, out, strides)
    dws.append(lax.dot_general(p, dy, ((batch_axes, batch_axes), ((), ())),
                               preferred_element_type=jnp.float32).reshape(w[pre].shape))
    part = _col2im(_contract_last(dy, wg.T, xp.dtype), taps, xp.shape, strides)
    dxp = part if dxp is None else dxp + part
  dw = jnp.stack(dws).reshape(w.shape) if split else dws[0]
  return dxp, dw


def _chunked(fn, chunks: int, *arrays):
  """fn over ``chunks`` equal batch slices of the arrays (lax.map), outputs re-joined along the batch."""
  if chunks == 1:
    return fn(*arrays)
  split = [a.reshape((chunks, a.shape[0] // chunks) + a.shape[1:]) for a in arrays]
  return lax.map(lambda args: fn(*args), tuple(split))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _conv(xp: jnp.ndarray, w: jnp.ndarray, strides: tuple[int, ...], split: int, chunks: int) -> jnp.ndarray:
  y = _chunked(lambda a: _forward(a, w, strides, split), chunks, xp)
  return y if chunks == 1 else y.reshape((-1,) + y.shape[2:])


def _conv_fwd(xp, w, strides, split, chunks):
  return _conv(xp, w, strides, split, chunks), (xp, w)


def _conv_bwd(strides, split, chunks, res, dy):
  xp, w = res
  dxp, dw = _chunked(lambda a, g: _backward(a, w, g, strides, split), chunks, xp, dy)
  if chunks > 1:
    dxp, dw = dxp.reshape(xp.shape), dw.sum(0)
  return dxp.astype(xp.dtype), dw.astype(w.dtype)


_conv.defvjp(_conv_fwd, _conv_bwd)


def conv_gemm(x: jnp.ndarray, kernel: jnp.ndarray, strides: Sequence[int], padding: Padding,
              formulation: Plan | None = None) -> jnp.ndarray:
  """Channels-last convolution of x [N, *spatial, C] with kernel [*k, C, O] as GEMMs (any number of
  spatial dims; explicit padding). ``formulation`` defaults to ``plan(...)``."""
  nd = kernel.ndim - 2
  if x.ndim != nd + 2 or x.shape[-1] != kernel.shape[-2] or len(strides) != nd or len(padding) != nd:
    raise ValueError(f"conv_gemm: x {x.shape}, kernel {kernel.shape}, strides {strides} and padding "
                     f"{padding} disagree (want x [N, *spatial, C], kernel [*k, C, O], one stride and "
                     f"one (lo, hi) pad per spatial axis)")
  strides = tuple(int(s) for s in strides)
  p = formulation or plan(x.shape, kernel.shape, strides, x.dtype.itemsize)
  if x.shape[0] % p.chunks:
    raise ValueError(f"conv_gemm: chunks={p.chunks} must divide the batch {x.shape[0]}")
  xp = jnp.pad(x, [(0, 0)] + [tuple(pd) for pd in padding] + [(0, 0)])
  return _conv(xp, kernel.astype(x.dtype), strides, p.split, p.chunks)
