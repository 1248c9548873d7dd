"""TV-L1 optical flow in JAX: OpenCV's ``DualTVL1OpticalFlow``, jit-compiled and batched over pairs.

The model (Zach, Pock & Bischof 2007; Sánchez, Meinhardt-Llopis & Facciolo, IPOL 2013, whose code
OpenCV's ``optflow/src/tvl1flow.cpp`` is) minimises, per pyramid level and warp around u0,

  E(u, v) = sum |grad u1| + |grad u2| + 1/(2 theta) |u - v|^2 + lambda |rho(v)|,   (docs/flow.md eq. 3)
  rho(v) = I1(x + u0) + grad I1(x + u0) . (v - u0) - I0(x)                           (eq. 2)

by alternating the pointwise threshold step for v (eq. 4, ``estimateV``), u = v + theta div p
(eq. 5, ``estimateU``) and the dual step p <- (p + tau/theta grad u) / (1 + tau/theta |grad u|)
(eq. 6, ``estimateDualVariables``). Every choice follows OpenCV's CPU code (``docs/flow.md``):
images in 0..255 (float input is taken as 0..1 and scaled by 255, as ``calc`` does), a pyramid of
bilinear ``resize`` by ``scaleStep`` (no pre-smoothing) that stops before a side under 16 px, p reset
per level, bicubic ``remap`` (A = -0.75, zero outside) of I1 and its
centred gradient, a 5x5 median of u before every outer iteration, and the epsilon stopping test.
The iteration loops are ``lax.while_loop``s with OpenCV's test (mean squared update under epsilon^2
ends the outer and inner loops of the warp); under ``vmap`` a converged pair is frozen by a select
and the loop ends when every pair of the batch has converged. ``epsilon=0`` runs every iteration.
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from vidrec.data.tvl1_params import MIN_SIDE, TVL1_PARAMS

MIN_LEVEL_SIDE = 16    # OpenCV stops the pyramid before a level with a side under 16 px
_CUBIC_A = -0.75       # OpenCV's bicubic kernel
_HIGHEST = jax.lax.Precision.HIGHEST
_P = TVL1_PARAMS


@dataclasses.dataclass(frozen=True)
class Params:
  """OpenCV's ``DualTVL1OpticalFlow`` parameters (its defaults; ``tvl1_params.TVL1_PARAMS``)."""
  tau: float = _P["tau"]
  lambda_: float = _P["lambda_"]
  theta: float = _P["theta"]
  nscales: int = _P["nscales"]
  warps: int = _P["warps"]
  epsilon: float = _P["epsilon"]
  inner_iterations: int = _P["innnerIterations"]
  outer_iterations: int = _P["outerIterations"]
  scale_step: float = _P["scaleStep"]
  median: int = _P["medianFiltering"]

  def __post_init__(self):
    if self.median not in (0, 1, 5):
      raise ValueError(f"median filtering {self.median} not supported; use 5 (OpenCV's default) or 0")


def pyramid_shapes(h: int, w: int, params: Params = Params()) -> list[tuple[int, int]]:
  """The level shapes OpenCV's ``calc`` uses: each ``round(0.8 x)`` of the previous, stopping before a
  level with a side under 16 px (so a frame under 20 px gets one level)."""
  shapes = [(h, w)]
  for _ in range(1, params.nscales):
    nxt = tuple(int(np.rint(n * params.scale_step)) for n in shapes[-1])
    if min(nxt) < MIN_LEVEL_SIDE:
      break
    shapes.append(nxt)
  return shapes


def resize_matrix(n_in: int, n_out: int, scale: float) -> np.ndarray:
  """[n_out, n_in] weights of OpenCV's INTER_LINEAR ``resize`` along one axis (half-pixel centres,
  source coordinate ``(d + 0.5) scale - 0.5``, clamped at both ends)."""
  f = ((np.arange(n_out) + 0.5) * scale - 0.5).astype(np.float32)
  s = np.floor(f).astype(int)
  frac = f - s
  frac[s < 0], s[s < 0] = 0.0, 0
  last = s >= n_in - 1
  frac[last], s[last] = 0.0, n_in - 1
  m = np.zeros((n_out, n_in), np.float32)
  np.add.at(m, (np.arange(n_out), s), 1.0 - frac)
  np.add.at(m, (np.arange(n_out), np.minimum(s + 1, n_in - 1)), frac)
  return m


def _resize(img: jax.Array, shape: tuple[int, int], scale: tuple[float, float]) -> jax.Array:
  my = resize_matrix(img.shape[0], shape[0], scale[0])
  mx = resize_matrix(img.shape[1], shape[1], scale[1])
  return jnp.matmul(jnp.matmul(my, img, precision=_HIGHEST), mx.T, precision=_HIGHEST)


def centered_gradient(img: jax.Array) -> tuple[jax.Array, jax.Array]:
  """OpenCV's ``centeredGradient``: (I[x+1] - I[x-1]) / 2 inside, half the one-sided difference on
  the border."""
  pad = jnp.pad(img, 1, mode="edge")
  return 0.5 * (pad[1:-1, 2:] - pad[1:-1, :-2]), 0.5 * (pad[2:, 1:-1] - pad[:-2, 1:-1])


def forward_gradient(u: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Forward differences, zero on the last column (x) / row (y) (``forwardGradient``)."""
  return (jnp.pad(u[:, 1:] - u[:, :-1], ((0, 0), (0, 1))),
          jnp.pad(u[1:] - u[:-1], ((0, 1), (0, 0))))


def divergence(p1: jax.Array, p2: jax.Array) -> jax.Array:
  """Backward differences with p = 0 before the first row / column: minus the adjoint of
  ``forward_gradient`` (``divergence``)."""
  return jnp.diff(p1, axis=1, prepend=0.0) + jnp.diff(p2, axis=0, prepend=0.0)


def threshold(u1, u2, i1wx, i1wy, grad, rho_c, l_t: float):
  """The thresholding step v = u + TH(rho) (docs/flow.md eq. 4, ``estimateV``); ``l_t`` = lambda theta."""
  rho = rho_c + i1wx * u1 + i1wy * u2
  safe = jnp.where(grad > np.finfo(np.float32).eps, grad, 1.0)
  step = jnp.where(rho < -l_t * grad, l_t,
                   jnp.where(rho > l_t * grad, -l_t,
                             jnp.where(grad > np.finfo(np.float32).eps, -rho / safe, 0.0)))
  return u1 + step * i1wx, u2 + step * i1wy


def _cubic_weights(t: jax.Array) -> list[jax.Array]:
  a = _CUBIC_A
  w0 = ((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a
  w1 = ((a + 2) * t - (a + 3)) * t * t + 1
  w2 = ((a + 2) * (1 - t) - (a + 3)) * (1 - t) * (1 - t) + 1
  return [w0, w1, w2, 1 - w0 - w1 - w2]


def remap_cubic(images: jax.Array, map_x: jax.Array, map_y: jax.Array) -> jax.Array:
  """``cv2.remap(INTER_CUBIC, BORDER_CONSTANT 0)`` of [C, H, W] images at (map_x, map_y) [H, W]: taps
  outside the image read 0."""
  _, h, w = images.shape
  fx, fy = jnp.floor(map_x), jnp.floor(map_y)
  x0, y0 = fx.astype(jnp.int32) - 1, fy.astype(jnp.int32) - 1          # the first of 4 taps
  wx, wy = _cubic_weights(map_x - fx), _cubic_weights(map_y - fy)
  pad = jnp.pad(images, ((0, 0), (1, 1), (1, 1))).reshape(len(images), -1)  # zero ring: outside taps
  taps = jnp.arange(4)
  rows = jnp.clip(y0[..., None] + taps + 1, 0, h + 1)                 # [H, W, 4]
  cols = jnp.clip(x0[..., None] + taps + 1, 0, w + 1)
  values = jnp.take(pad, rows[..., :, None] * (w + 2) + cols[..., None, :], axis=1)  # [C, H, W, 4, 4]
  weights = jnp.stack(wy, -1)[..., :, None] * jnp.stack(wx, -1)[..., None, :]
  return jnp.sum(values * weights, axis=(-2, -1))


def _batcher_pairs(n: int) -> list[tuple[int, int]]:
  """The compare-exchange pairs of Batcher's odd-even merge sort of 2^k >= n keys, restricted to the
  first n (the missing keys count as +inf, so their exchanges never swap)."""
  size = 1 << (n - 1).bit_length()
  pairs, p = [], 1
  while p < size:
    k = p
    while k >= 1:
      for j in range(k % p, size - k, 2 * k):
        for i in range(min(k, size - j - k)):
          if (i + j) // (2 * p) == (i + j + k) // (2 * p) and i + j + k < n:
            pairs.append((i + j, i + j + k))
      k //= 2
    p *= 2
  return pairs


def median5(u: jax.Array) -> jax.Array:
  """5x5 median with replicated borders (``cv2.medianBlur(u, 5)`` on float32), by a min/max sorting
  network (as OpenCV's ``medianBlur_SortNet``); XLA drops the exchanges the middle key does not need."""
  h, w = u.shape
  pad = jnp.pad(u, 2, mode="edge")
  keys = [pad[i:i + h, j:j + w] for i in range(5) for j in range(5)]
  for a, b in _batcher_pairs(25):
    keys[a], keys[b] = jnp.minimum(keys[a], keys[b]), jnp.maximum(keys[a], keys[b])
  return keys[12]


def _one_level(i0, i1, u1, u2, params: Params):
  """``procOneScale``: ``warps`` warps x ``outer`` x ``inner`` iterations at one pyramid level."""
  h, w = i0.shape
  l_t, taut, theta = params.lambda_ * params.theta, params.tau / params.theta, params.theta
  eps = np.float32(params.epsilon ** 2 * h * w)
  i1x, i1y = centered_gradient(i1)
  grid_y, grid_x = jnp.mgrid[:h, :w].astype(jnp.float32)

  def warp(_, state):
    u1, u2, p = state
    i1w, i1wx, i1wy = remap_cubic(jnp.stack([i1, i1x, i1y]), grid_x + u1, grid_y + u2)
    grad = i1wx * i1wx + i1wy * i1wy
    rho_c = i1w - i1wx * u1 - i1wy * u2 - i0

    def inner(state):
      n, u1, u2, p, _ = state
      v1, v2 = threshold(u1, u2, i1wx, i1wy, grad, rho_c, l_t)
      n1 = v1 + theta * divergence(p[0], p[1])
      n2 = v2 + theta * divergence(p[2], p[3])
      g = forward_gradient(n1) + forward_gradient(n2)
      norm1, norm2 = jnp.sqrt(g[0] ** 2 + g[1] ** 2), jnp.sqrt(g[2] ** 2 + g[3] ** 2)
      p = jnp.stack([(p[k] + taut * g[k]) / (1 + taut * (norm1 if k < 2 else norm2)) for k in range(4)])
      return n + 1, n1, n2, p, jnp.sum(jnp.square(n1 - u1) + jnp.square(n2 - u2))

    def outer(state):
      n, u1, u2, p, err = state
      if params.median > 1:
        u1, u2 = median5(u1), median5(u2)
      _, u1, u2, p, err = jax.lax.while_loop(
          lambda s: (s[0] < params.inner_iterations) & (s[4] > eps), inner, (0, u1, u2, p, err))
      return n + 1, u1, u2, p, err

    _, u1, u2, p, _ = jax.lax.while_loop(lambda s: (s[0] < params.outer_iterations) & (s[4] > eps),
                                         outer, (0, u1, u2, p, jnp.float32(np.inf)))
    return u1, u2, p

  u1, u2, _ = jax.lax.fori_loop(0, params.warps, warp, (u1, u2, jnp.zeros((4, h, w), jnp.float32)))
  return u1, u2


def _one_pair(i0: jax.Array, i1: jax.Array, params: Params) -> jax.Array:
  shapes = pyramid_shapes(*i0.shape, params)
  down = (1 / params.scale_step,) * 2
  pyramid = [(i0, i1)]
  for shape in shapes[1:]:
    pyramid.append(tuple(_resize(im, shape, down) for im in pyramid[-1]))
  u1 = u2 = jnp.zeros(shapes[-1], jnp.float32)
  for level in range(len(shapes) - 1, -1, -1):
    u1, u2 = _one_level(*pyramid[level], u1, u2, params)
    if level:
      (h, w), (fh, fw) = shapes[level], shapes[level - 1]
      up = (h / fh, w / fw)
      u1, u2 = (_resize(u, (fh, fw), up) / params.scale_step for u in (u1, u2))
  return jnp.stack([u1, u2], -1)


@functools.partial(jax.jit, static_argnames=("params",))
def tvl1(prev: jax.Array, nxt: jax.Array, params: Params = Params()) -> jax.Array:
  """TV-L1 flow of each pair: grey [B, H, W] (uint8, or float in 0..1 as OpenCV takes it) -> float32
  [B, H, W, 2] = (dx, dy), ``next(y + dy, x + dx) ~ prev(y, x)`` (``flow.tvl1``'s convention)."""
  if prev.shape != nxt.shape or prev.ndim != 3 or min(prev.shape[1:]) < MIN_SIDE:
    raise ValueError(f"TV-L1 needs prev and next of one shape [B, H, W], H, W >= {MIN_SIDE}; "
                     f"got {prev.shape} and {nxt.shape}")
  scale = 1.0 if prev.dtype == jnp.uint8 else 255.0
  prev, nxt = (jnp.asarray(x, jnp.float32) * scale for x in (prev, nxt))
  return jax.vmap(functools.partial(_one_pair, params=params))(prev, nxt)
