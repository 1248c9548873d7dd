"""The built-in ``synthetic_actions`` TFDS dataset: a small procedural stand-in for SSv2.

Every video shows one clearly visible *actor* object (random shape, colour, size, rotation)
doing one of 12 actions over a cluttered static background, with smaller, fainter
distractor objects that move on their own (independently of the class). Like
Something-Something v2, the classes come in confusable groups that can only be told
apart by the order and the motion of the frames, never by one frame:

* direction pairs: left->right vs right->left, up vs down;
* completion pairs: moving vs pretending to move (it moves and comes back);
* outcome pair: dropping vs dropping so that it breaks (it splits into pieces at the bottom);
* scale pair: towards the camera (grows) vs away from the camera (shrinks);
* appear vs disappear (fades in vs fades out).

Invariants (tested in ``tests/test_synthetic.py``):

* **time reversal**: for the direction pairs, towards/away and appear/disappear, the video
  of one class reversed in time *is* the video of its partner class for the same random
  draws: ``render_video(partner, rng(s))[::-1] == render_video(c, rng(s))``
  (see ``TIME_REVERSAL_PARTNERS``); partners therefore have identical sets of frames.
* **horizontal flip**: the renderer is exactly mirror-equivariant: rendering the mirrored
  scene equals ``np.flip(video, axis=2)``. A flipped video of class ``c`` is a valid video
  of class ``FLIP_LABEL_MAP[c]`` (left/right swapped, every other class unchanged).

The renderer is pure numpy (no TF), vectorised over frames, and deterministic: example ``i``
of split ``s`` is drawn from ``SeedSequence([config.seed, crc32(s), i])``.

The builder configs ``hard`` / ``hard_flow`` / ``hard_tiny`` render the 24-class scenes of
``vidrec.data.synthetic_hard`` (moving camera, small actor among distractors) from these
primitives; their knobs are ``Difficulty``.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib
import os
import zlib
from typing import Iterator

import numpy as np
import tensorflow_datasets as tfds

from vidrec.data import features as features_lib
from vidrec.data import flow as flow_lib
from vidrec.data.builders.pool import ordered_parallel_map

FPS = 12.0

CLASS_NAMES: tuple[str, ...] = (
    "Moving something from left to right",               # 0
    "Moving something from right to left",               # 1
    "Moving something up",                               # 2
    "Moving something down",                             # 3
    "Pretending to move something from left to right",   # 4
    "Pretending to move something from right to left",   # 5
    "Dropping something",                                # 6
    "Dropping something so that it breaks",              # 7
    "Moving something towards the camera",               # 8
    "Moving something away from the camera",             # 9
    "Making something appear",                           # 10
    "Making something disappear",                        # 11
)
NUM_CLASSES = len(CLASS_NAMES)

# Confusable groups (documentation / analysis; indices into CLASS_NAMES).
CLASS_GROUPS: dict[str, tuple[int, ...]] = {
    "direction": (0, 1, 2, 3),
    "completion": (0, 4, 1, 5),
    "outcome": (6, 7),
    "scale": (8, 9),
    "appearance": (10, 11),
}

# A video of class c reversed in time is a video of class TIME_REVERSAL_PARTNERS[c].
TIME_REVERSAL_PARTNERS: dict[int, int] = {0: 1, 1: 0, 2: 3, 3: 2, 8: 9, 9: 8, 10: 11, 11: 10}

# A horizontally flipped video of class c is a video of class FLIP_LABEL_MAP[c].
FLIP_LABEL_MAP: tuple[int, ...] = (1, 0, 2, 3, 5, 4, 6, 7, 8, 9, 10, 11)

# class -> (motion kind, time-reversed, mirrored, variant). Partners share the motion kind so
# they consume the random stream identically.
_CLASS_SPECS: tuple[tuple[str, bool, bool, str], ...] = (
    ("shift_h", False, False, ""),
    ("shift_h", True, False, ""),
    ("shift_v", True, False, ""),   # up = down reversed
    ("shift_v", False, False, ""),
    ("pretend_h", False, False, ""),
    ("pretend_h", False, True, ""),  # pretend right->left = pretend left->right mirrored
    ("drop", False, False, ""),
    ("drop", False, False, "breaks"),
    ("scale", False, False, ""),
    ("scale", True, False, ""),     # away = towards reversed
    ("fade", False, False, ""),
    ("fade", True, False, ""),      # disappear = appear reversed
)

SHAPES: tuple[str, ...] = ("disc", "square", "triangle", "diamond", "cross", "ring", "bar")

_F32 = np.float32


# ----------------------------------------------------------------------------- scene state


@dataclasses.dataclass
class SceneObject:
  """One object; per-frame arrays have shape [T], positions are pixels from the image centre."""
  shape: int                 # index into SHAPES
  color: np.ndarray          # [3] float32 RGB in [0, 1]
  cx: np.ndarray             # [T] x of the centre (right is positive)
  cy: np.ndarray             # [T] y of the centre (down is positive)
  radius: np.ndarray         # [T] size in pixels
  alpha: np.ndarray          # [T] opacity in [0, 1]
  cos: np.ndarray            # [T] rotation cosine
  sin: np.ndarray            # [T] rotation sine
  outline: float = 0.0       # dark outline width in pixels (0: none)
  pieces: np.ndarray | None = None  # [T, 2(sy), 2(sx), 2(xy)] offsets of the 4 quadrant pieces

  def reversed(self) -> "SceneObject":
    """The same object with time reversed."""
    return dataclasses.replace(
        self, cx=self.cx[::-1], cy=self.cy[::-1], radius=self.radius[::-1],
        alpha=self.alpha[::-1], cos=self.cos[::-1], sin=self.sin[::-1],
        pieces=None if self.pieces is None else self.pieces[::-1])

  def mirrored(self) -> "SceneObject":
    """The object mirrored left<->right (x -> -x, rotation -> -rotation, pieces swapped)."""
    pieces = None
    if self.pieces is not None:
      pieces = self.pieces[:, :, ::-1].copy()
      pieces[..., 0] = -pieces[..., 0]
    return dataclasses.replace(self, cx=-self.cx, sin=-self.sin, pieces=pieces)


@dataclasses.dataclass
class Scene:
  """Everything needed to render one video; ``objects`` are drawn in order."""
  resolution: int
  background: np.ndarray     # [H, W, 3] float32 static clutter
  noise: np.ndarray          # [T, H, W, 3] float32 per-frame sensor noise
  objects: list[SceneObject]
  actor_index: int           # which object is the actor

  @property
  def num_frames(self) -> int:
    return self.noise.shape[0]

  @property
  def actor(self) -> SceneObject:
    return self.objects[self.actor_index]

  def reversed(self) -> "Scene":
    """The scene played backwards (rendering it gives the reversed video)."""
    return dataclasses.replace(self, noise=self.noise[::-1],
                               objects=[o.reversed() for o in self.objects])

  def mirrored(self) -> "Scene":
    """The scene mirrored left<->right (rendering it gives ``np.flip(video, axis=2)``)."""
    return dataclasses.replace(self, background=self.background[:, ::-1],
                               noise=self.noise[:, :, ::-1],
                               objects=[o.mirrored() for o in self.objects])


# ----------------------------------------------------------------------------- sampling


def _hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
  i = int(h * 6.0) % 6
  f = h * 6.0 - int(h * 6.0)
  p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
  rgb = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
  return np.asarray(rgb, _F32)


def _upsample_matrix(n_out: int, n_in: int) -> np.ndarray:
  """[n_out, n_in] linear-interpolation matrix (grid points span the whole image)."""
  pos = (np.arange(n_out) + 0.5) / n_out * (n_in - 1)
  lo = np.clip(np.floor(pos).astype(int), 0, n_in - 2)
  w = pos - lo
  m = np.zeros((n_out, n_in), _F32)
  m[np.arange(n_out), lo] = 1 - w
  m[np.arange(n_out), lo + 1] = w
  return m


def _smooth_noise(rng: np.random.Generator, res: int, grid: int, channels: int) -> np.ndarray:
  m = _upsample_matrix(res, grid)
  g = rng.standard_normal((channels, grid, grid)).astype(_F32)
  return np.einsum("hi,cij,wj->hwc", m, g, m)


def _sample_background(rng: np.random.Generator, res: int) -> np.ndarray:
  """Static clutter: tinted base colour, smooth noise, soft blobs and fine grain."""
  base = _hsv_to_rgb(rng.uniform(), rng.uniform(0.0, 0.35), rng.uniform(0.25, 0.55))
  lum = (_smooth_noise(rng, res, 4, 1) * rng.uniform(0.04, 0.09)
         + _smooth_noise(rng, res, 9, 1) * rng.uniform(0.02, 0.05))
  tint = _smooth_noise(rng, res, 5, 3) * 0.025
  img = base[None, None, :] + lum + tint
  coords = np.arange(res, dtype=_F32) + 0.5 - res / 2
  yy, xx = coords[:, None], coords[None, :]
  for _ in range(rng.integers(3, 9)):
    bx, by = rng.uniform(-0.5, 0.5, 2) * res
    rx, ry = rng.uniform(0.05, 0.2, 2) * res
    d = np.sqrt(((xx - bx) / rx) ** 2 + ((yy - by) / ry) ** 2)
    a = np.clip((1.0 - d) * 3.0, 0.0, 1.0) * rng.uniform(0.2, 0.5)
    col = np.clip(base + rng.normal(0.0, 0.12, 3), 0.0, 1.0).astype(_F32)
    img = img * (1 - a[..., None]) + a[..., None] * col
  img = img + rng.normal(0.0, 0.02, (res, res, 3)).astype(_F32)
  return np.clip(img, 0.0, 1.0).astype(_F32)


def _rotation(rng: np.random.Generator, t: np.ndarray, max_turns: float):
  theta = rng.uniform(0, 2 * np.pi) + rng.uniform(-max_turns, max_turns) * 2 * np.pi * t
  return np.cos(theta).astype(_F32), np.sin(theta).astype(_F32)


def _bounce(p: np.ndarray, lo: float, hi: float) -> np.ndarray:
  """Reflects positions into [lo, hi] (triangle wave)."""
  span = hi - lo
  q = np.mod(p - lo, 2 * span)
  return lo + np.where(q > span, 2 * span - q, q)


def _sample_distractor(rng: np.random.Generator, res: int, t: np.ndarray) -> SceneObject:
  """A small, faint object with its own class-independent motion."""
  n = t.shape[0]
  r = rng.uniform(0.035, 0.075) * res
  lim = res / 2 - r
  x0, y0 = rng.uniform(-lim, lim, 2)
  motion = rng.integers(3)
  if motion == 0:    # straight line, bouncing off the borders
    vx, vy = rng.normal(0.0, 0.6, 2) * res
    cx, cy = _bounce(x0 + vx * t, -lim, lim), _bounce(y0 + vy * t, -lim, lim)
  elif motion == 1:  # oscillation along a random direction
    ang, ph = rng.uniform(0, 2 * np.pi, 2)
    amp, freq = rng.uniform(0.05, 0.25) * res, rng.uniform(0.5, 2.5)
    osc = amp * np.sin(2 * np.pi * freq * t + ph)
    cx = _bounce(x0 + np.cos(ang) * osc, -lim, lim)
    cy = _bounce(y0 + np.sin(ang) * osc, -lim, lim)
  else:              # slow random drift
    steps = rng.normal(0.0, 0.02 * res, (2, n))
    cx = _bounce(x0 + np.cumsum(steps[0]), -lim, lim)
    cy = _bounce(y0 + np.cumsum(steps[1]), -lim, lim)
  cos, sin = _rotation(rng, t, 1.0)
  color = _hsv_to_rgb(rng.uniform(), rng.uniform(0.15, 0.7), rng.uniform(0.35, 0.9))
  return SceneObject(
      shape=int(rng.integers(len(SHAPES))), color=color,
      cx=cx.astype(_F32), cy=cy.astype(_F32), radius=np.full(n, r, _F32),
      alpha=np.full(n, rng.uniform(0.3, 0.65), _F32), cos=cos, sin=sin)


def _profile(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
  """Monotone 0->1 progress; the family is symmetric under time reversal."""
  w = rng.uniform()
  return (1 - w) * t + w * t * t * (3 - 2 * t)


def _wobble(rng: np.random.Generator, t: np.ndarray, amp: float) -> np.ndarray:
  return rng.uniform(0, amp) * np.sin(2 * np.pi * rng.uniform(0.3, 1.5) * t
                                      + rng.uniform(0, 2 * np.pi))


def _actor_motion(kind: str, variant: str, rng: np.random.Generator, res: int,
                  t: np.ndarray, r: float):
  """Per-frame (cx, cy, radius, alpha, pieces) of the actor for one motion kind.

  ``variant`` only matters for "drop": "" bounces and rests, "breaks" splits into pieces,
  "rolls" rolls to the right after the impact (the fall is the same random draws for all three).
  """
  n = t.shape[0]
  half = res / 2
  radius = np.full(n, r)
  alpha = np.ones(n)
  pieces = None
  m = half - 0.75 * r  # centre range that keeps the actor (mostly) in view
  if kind in ("shift_h", "shift_v"):  # base direction: left->right / top->bottom
    a0 = rng.uniform(-m, -m + 0.22 * res)
    a1 = rng.uniform(m - 0.22 * res, m)
    along = a0 + (a1 - a0) * _profile(rng, t)
    across = rng.uniform(-0.3, 0.3) * res + rng.uniform(-0.06, 0.06) * res * (t - 0.5)
    across = across + _wobble(rng, t, 0.025 * res)
    cx, cy = (along, across) if kind == "shift_h" else (across, along)
  elif kind == "pretend_h":  # moves right, then comes back to where it started
    x0 = rng.uniform(-m, -m + 0.25 * res)
    d = min(rng.uniform(0.25, 0.5) * res, m - x0)
    tp = rng.uniform(0.4, 0.6)
    bump = np.where(t < tp, 0.5 - 0.5 * np.cos(np.pi * t / tp),
                    0.5 - 0.5 * np.cos(np.pi * (1 - t) / (1 - tp)))
    cx = x0 + d * bump
    cy = rng.uniform(-0.3, 0.3) * res + _wobble(rng, t, 0.025 * res)
  elif kind == "drop":  # held still, falls (accelerating), lands; optionally breaks
    cx = np.full(n, rng.uniform(-1, 1) * (half - 1.9 * r))
    y_top = rng.uniform(-half + 1.05 * r, -0.1 * res)
    floor = half - r * rng.uniform(0.9, 1.2)
    t_hold = rng.uniform(0.1, 0.4)
    t_hit = t_hold + rng.uniform(0.2, 0.35)
    fall = np.clip((t - t_hold) / (t_hit - t_hold), 0, 1) ** 2
    cy = y_top + (floor - y_top) * fall
    bounce_h, bounce_d = rng.uniform(0.1, 0.35) * r, rng.uniform(0.08, 0.15)
    after = t - t_hit
    split_d = rng.uniform(0.1, 0.25)
    g = 1 - (1 - np.clip(after / split_d, 0, 1)) ** 2  # ease-out separation, 0 before impact
    spread = np.stack([rng.uniform(0.3, 0.6, 2), rng.uniform(0.55, 1.0, 2)]) * r  # [sy, sx]
    sink = rng.uniform(0.3, 0.5, 2) * r  # upper pieces fall to the floor
    if variant == "breaks":
      sign = np.array([-1.0, 1.0])
      pieces = np.zeros((n, 2, 2, 2))
      pieces[..., 0] = g[:, None, None] * spread[None] * sign[None, None, :]
      pieces[:, 0, :, 1] = g[:, None] * sink[None, :]
    elif variant == "rolls":  # no bounce: rolls right (ease-out), at most to the border
      dist = min(rng.uniform(0.2, 0.35) * res, max(half - 0.75 * r - cx[0], 0.0))
      cx = cx + dist * (1 - (1 - np.clip(after / rng.uniform(0.2, 0.35), 0, 1)) ** 2)
    else:
      cy = cy - bounce_h * np.where((after > 0) & (after < bounce_d),
                                    np.sin(np.pi * after / bounce_d), 0.0)
  elif kind == "scale":  # base: towards the camera (grows)
    r0, r1 = r * rng.uniform(0.35, 0.55), r * rng.uniform(1.35, 1.65)
    radius = r0 * (r1 / r0) ** _profile(rng, t)
    mm = half - 0.8 * r1
    cx = rng.uniform(-mm, mm) + rng.uniform(-0.05, 0.05) * res * t
    cy = rng.uniform(-mm, mm) + rng.uniform(-0.05, 0.05) * res * t
  elif kind == "fade":  # base: appears (fades in) somewhere
    cx = rng.uniform(-m, m) + _wobble(rng, t, 0.02 * res)
    cy = rng.uniform(-m, m) + _wobble(rng, t, 0.02 * res)
    t0, dur = rng.uniform(0.1, 0.45), rng.uniform(0.25, 0.5)
    a = np.clip((t - t0) / dur, 0, 1)
    alpha = a * a * (3 - 2 * a)
  else:
    raise ValueError(f"unknown motion kind {kind!r}")
  as32 = lambda x: np.asarray(x, _F32)
  return (as32(cx), as32(cy), as32(radius), as32(alpha),
          None if pieces is None else as32(pieces))


def sample_scene(class_id: int, rng: np.random.Generator, resolution: int,
                 num_frames: int) -> Scene:
  """Draws a random scene of class ``class_id`` (consumes ``rng``)."""
  if not 0 <= class_id < NUM_CLASSES:
    raise ValueError(f"class_id must be in [0, {NUM_CLASSES}), got {class_id}")
  if num_frames < 1 or resolution < 8:
    raise ValueError(f"need num_frames >= 1 and resolution >= 8, got {num_frames}, {resolution}")
  kind, reverse, mirror, variant = _CLASS_SPECS[class_id]
  res = resolution
  t = (np.arange(num_frames) / max(num_frames - 1, 1)).astype(np.float64)
  # Class-independent part first: background, distractors, actor appearance, noise.
  background = _sample_background(rng, res)
  distractors = [_sample_distractor(rng, res, t) for _ in range(rng.integers(1, 4))]
  n_below = int(rng.integers(len(distractors) + 1))  # distractors drawn under the actor
  shape = int(rng.integers(len(SHAPES)))
  color = _hsv_to_rgb(rng.uniform(), rng.uniform(0.55, 1.0), rng.uniform(0.8, 1.0))
  r = rng.uniform(0.10, 0.17) * res
  cos, sin = _rotation(rng, t, 0.15)
  noise = (rng.standard_normal((num_frames, res, res, 3), dtype=_F32)
           * _F32(rng.uniform(0.005, 0.02)))
  # Class-dependent motion.
  cx, cy, radius, alpha, pieces = _actor_motion(kind, variant, rng, res, t, r)
  actor = SceneObject(shape=shape, color=color, cx=cx, cy=cy, radius=radius, alpha=alpha,
                      cos=cos, sin=sin, outline=max(1.0, 0.035 * res), pieces=pieces)
  objects = distractors[:n_below] + [actor] + distractors[n_below:]
  scene = Scene(resolution=res, background=background, noise=noise, objects=objects,
                actor_index=n_below)
  if reverse:
    scene = scene.reversed()
  if mirror:
    scene = scene.mirrored()
  return scene


# ----------------------------------------------------------------------------- rendering


def _sdf(shape: int, rx: np.ndarray, ry: np.ndarray, r: np.ndarray) -> np.ndarray:
  """Signed distance (pixels, negative inside); every shape is even in ``rx``."""
  ax, ay = np.abs(rx), np.abs(ry)
  name = SHAPES[shape]
  if name == "disc":
    return np.sqrt(rx * rx + ry * ry) - r
  if name == "square":
    return np.maximum(ax, ay) - 0.85 * r
  if name == "triangle":
    r = 1.2 * r
    return np.maximum(ax * _F32(0.866) + ry * _F32(0.5), -ry) - 0.5 * r
  if name == "diamond":
    return (ax + ay) * _F32(0.7071) - 0.85 * r
  if name == "cross":
    return np.minimum(np.maximum(ax - r, ay - 0.38 * r), np.maximum(ax - 0.38 * r, ay - r))
  if name == "ring":
    return np.abs(np.sqrt(rx * rx + ry * ry) - 0.7 * r) - 0.3 * r
  if name == "bar":
    return np.maximum(ax - r, ay - 0.5 * r)
  raise ValueError(f"unknown shape {shape}")


def _support(obj: SceneObject) -> np.ndarray:
  """[T] radius (pixels) outside which the object covers nothing (every shape, all pieces)."""
  ext = 1.25 * obj.radius + 2.0
  if obj.pieces is not None:
    ext = ext + np.sqrt((obj.pieces ** 2).sum(-1)).max(axis=(1, 2))
  return ext


def _draw(img: np.ndarray, obj: SceneObject, res: int, pad: int) -> None:
  """Alpha-composites ``obj`` onto ``img`` [T, res + 2 pad, res + 2 pad, 3] in place.

  Only a per-frame window around the object is computed; outside its support the
  coverage is exactly zero, so the result does not depend on the window placement.
  """
  n = obj.cx.shape[0]
  size = 2 * int(np.ceil(_support(obj).max())) + 4
  if size > res + pad:
    size = res + pad
  start = lambda p: np.clip(np.floor(p + res / 2 - size / 2).astype(np.int64), -pad,
                            res + pad - size)
  x0, y0 = start(obj.cx), start(obj.cy)  # [T] window origin in image pixels
  k = np.arange(size)
  tt = np.arange(n)[:, None, None]
  yy = (y0[:, None, None] + pad + k[None, :, None])
  xx = (x0[:, None, None] + pad + k[None, None, :])
  half = _F32(res / 2)
  cx_pix = (x0[:, None] + k[None, :]).astype(_F32) + _F32(0.5) - half  # [T, S]
  cy_pix = (y0[:, None] + k[None, :]).astype(_F32) + _F32(0.5) - half
  patch = img[tt, yy, xx]  # [T, S, S, 3]
  r = obj.radius[:, None, None]
  c, s = obj.cos[:, None, None], obj.sin[:, None, None]
  offsets = [(None, None, _F32(0.0), _F32(0.0))]
  if obj.pieces is not None:  # four quadrant pieces, each displaced by its own offset
    offsets = [(sy, sx, obj.pieces[:, iy, ix, 0][:, None, None],
                obj.pieces[:, iy, ix, 1][:, None, None])
               for iy, sy in enumerate((-1, 1)) for ix, sx in enumerate((-1, 1))]
  cover = fill = shade = _F32(0.0)
  for sy, sx, ox, oy in offsets:
    dx = cx_pix[:, None, :] - (obj.cx[:, None, None] + ox)  # [T, 1, S]
    dy = cy_pix[:, :, None] - (obj.cy[:, None, None] + oy)  # [T, S, 1]
    rx = c * dx + s * dy
    ry = c * dy - s * dx
    sd = _sdf(obj.shape, rx, ry, r)
    cov = np.clip(0.5 - sd, 0, 1)
    fil = np.clip(0.5 - (sd + obj.outline), 0, 1) if obj.outline else cov
    if sx is not None:  # soft (1 px) quadrant masks; they sum to one when pieces touch
      mask = np.clip(0.5 + sx * dx, 0, 1) * np.clip(0.5 + sy * dy, 0, 1)
      cov, fil = cov * mask, fil * mask
    cover, fill = cover + cov, fill + fil
    shade = shade + fil * (1.0 - 0.25 * np.clip(ry / r, -1, 1))  # lit from above
  a = obj.alpha[:, None, None]
  cover = np.minimum(cover, 1.0) * a
  shade = shade / np.maximum(fill, _F32(1e-6))
  fill = np.minimum(fill, 1.0) * a
  if obj.outline:
    patch *= (1.0 - cover)[..., None]
    patch += (cover * _F32(0.06))[..., None]
  colour = np.clip(obj.color[None, None, None, :] * shade[..., None], 0, 1)
  patch *= (1.0 - fill)[..., None]
  patch += fill[..., None] * colour
  img[tt, yy, xx] = patch


def composite(background: np.ndarray, objects: list[SceneObject], noise: np.ndarray) -> np.ndarray:
  """Draws ``objects`` in order over ``background`` ([H, W, 3] static or [T, H, W, 3]), adds
  ``noise`` [T, H, W, 3] and quantises: uint8 [T, H, W, 3]."""
  n, res = noise.shape[:2]
  pad = res  # objects may leave the frame; windows are clipped to the padded canvas
  img = np.zeros((n, res + 2 * pad, res + 2 * pad, 3), _F32)
  img[:, pad:pad + res, pad:pad + res] = background
  for obj in objects:
    _draw(img, obj, res, pad)
  img = img[:, pad:pad + res, pad:pad + res] + noise
  return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def render_scene(scene: Scene) -> np.ndarray:
  """Renders a scene to uint8 [T, H, W, 3]."""
  return composite(scene.background, scene.objects, scene.noise)


def render_video(class_id: int, rng: np.random.Generator, resolution: int,
                 num_frames: int) -> np.ndarray:
  """Renders one random video of class ``class_id``: uint8 [num_frames, res, res, 3]."""
  return render_scene(sample_scene(class_id, rng, resolution, num_frames))


def example_rng(seed: int, split: str, index: int) -> np.random.Generator:
  """The generator for example ``index`` of ``split`` (independent per example)."""
  return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(split.encode()), index]))


# ----------------------------------------------------------------------------- TFDS builder


@dataclasses.dataclass(frozen=True)
class Difficulty:
  """Knobs of the harder scenes (``vidrec/data/synthetic_hard.py``); ranges are (low, high),
  sizes are fractions of the frame side, counts are inclusive ranges."""
  actor_size: tuple[float, float] = (0.07, 0.11)       # actor radius
  num_distractors: tuple[int, int] = (2, 4)            # objects doing other classes' motions
  distractor_size: tuple[float, float] = (0.05, 0.10)
  distractor_opacity: tuple[float, float] = (0.6, 0.9)  # the actor is opaque and outlined
  num_clutter: tuple[int, int] = (4, 8)                # static objects on the background
  num_occluders: tuple[int, int] = (1, 2)              # static opaque blocks drawn in front
  occluder_size: tuple[float, float] = (0.08, 0.14)
  texture_contrast: float = 0.12                       # amplitude of the background texture
  pan: float = 0.3                                     # max camera travel over the video
  zoom: float = 0.3                                    # max |log zoom| change over the video
  shake: float = 0.012                                 # camera shake std per frame


@dataclasses.dataclass(eq=False)
class SyntheticActionsConfig(tfds.core.BuilderConfig):
  """Resolution (square frames), video length range, split sizes, seed, optical flow (``flow``
  algorithm, "" = none, and ``warped_flow``; ``vidrec.data.flow``) and ``hard``: None renders the
  12-class scenes of this module, a ``Difficulty`` the 24-class scenes of ``synthetic_hard``;
  ``flow_backend``: the TV-L1 (``flow.BACKENDS``; OpenCV in the workers, others in the parent)."""
  resolution: int = 64
  min_frames: int = 20
  max_frames: int = 60
  num_train: int = 1200
  num_test: int = 240
  seed: int = 0
  flow: str = ""
  warped_flow: bool = False
  flow_backend: str = "opencv"
  hard: Difficulty | None = None


class SyntheticActions(tfds.core.GeneratorBasedBuilder):
  """``synthetic_actions``: 12 SSv2-like confusable actions, rendered procedurally."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  BUILDER_CONFIGS = [
      SyntheticActionsConfig(name="default", description="64px, 20-60 frames, 1200/240 videos.",
                             resolution=64, min_frames=20, max_frames=60,
                             num_train=1200, num_test=240, seed=0),
      SyntheticActionsConfig(name="tiny", description="32px, 12-24 frames, 48/24 videos (tests).",
                             resolution=32, min_frames=12, max_frames=24,
                             num_train=48, num_test=24, seed=0),
      SyntheticActionsConfig(name="flow", description="32px, 16-20 frames, 240/72 videos, TV-L1 flow and "
                             "warped flow (ATW's three streams on a CPU).", resolution=32, min_frames=16,
                             max_frames=20, num_train=240, num_test=72, seed=0, flow="tvl1", warped_flow=True),
      SyntheticActionsConfig(name="flow_jax", description="flow with the TV-L1 of the jax backend "
                             "(vidrec.data.flow_jax).", resolution=32, min_frames=16, max_frames=20,
                             num_train=240, num_test=72, seed=0, flow="tvl1", warped_flow=True,
                             flow_backend="jax"),
      SyntheticActionsConfig(name="hard", description="48px, 20-48 frames, 1680/480 videos, 24 "
                             "classes, camera motion, small actor among "
                             "distractors doing other classes' motions, occluders (synthetic_hard).",
                             resolution=48, min_frames=20, max_frames=48, num_train=1680, num_test=480,
                             seed=0, hard=Difficulty()),
      SyntheticActionsConfig(name="hard_flow", description="The hard scenes at 32px, 20-32 frames, "
                             "720/240 videos, TV-L1 flow and warped flow (ATW's streams under camera "
                             "motion on a CPU).", resolution=32, min_frames=20, max_frames=32,
                             num_train=720, num_test=240, seed=0, flow="tvl1", warped_flow=True,
                             hard=Difficulty()),
      SyntheticActionsConfig(name="hard_tiny", description="The hard scenes at 32px, 12-24 frames, "
                             "48/24 videos (tests).", resolution=32, min_frames=12, max_frames=24,
                             num_train=48, num_test=24, seed=0, hard=Difficulty()),
  ]
  DEFAULT_CONFIG_NAME = "default"

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        description=__doc__.split("\n\n")[0],
        features=features_lib.video_features(class_names(self.builder_config),
                                             features_lib.flow_streams(
            self.builder_config.flow, self.builder_config.warped_flow)),
        supervised_keys=("video", "label"),
        metadata=(tfds.core.MetadataDict(flow=flow_lib.metadata(
            self.builder_config.flow, self.builder_config.warped_flow, self.builder_config.flow_backend))
                  if self.builder_config.flow else None),
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    del dl_manager  # nothing to download
    cfg = self.builder_config
    return {"train": self._generate_examples("train", cfg.num_train),
            "test": self._generate_examples("test", cfg.num_test)}

  def _generate_examples(self, split: str, num_videos: int) -> Iterator[tuple[str, dict]]:
    cfg = self.builder_config
    if not 1 <= cfg.min_frames <= cfg.max_frames:
      raise ValueError(f"bad frame range [{cfg.min_frames}, {cfg.max_frames}]")
    if cfg.flow:
      flow_lib.require_cv2()
    # Rendering (and TV-L1) dominates the build: one process per core.
    make = functools.partial(generate_example, cfg, split)
    for i, example in ordered_parallel_map(make, range(num_videos), os.cpu_count() or 1, _died):
      yield f"{split}_{i:06d}", _parent_flow(cfg, example)

  def flip_label_map(self) -> list[int]:
    """Entry c: the class of a horizontally flipped video of class c (left<->right swap)."""
    return list(_classes(self.builder_config).FLIP_LABEL_MAP)


def _died(index: int) -> dict:
  raise RuntimeError(f"the process rendering video {index} died (out of memory?)")


def _classes(cfg: SyntheticActionsConfig):
  """The module that defines ``cfg``'s classes and renderer: this one, or ``synthetic_hard``
  (imported lazily: it builds on this module's primitives)."""
  return importlib.import_module(__name__ if cfg.hard is None else "vidrec.data.synthetic_hard")


def class_names(cfg: SyntheticActionsConfig) -> tuple[str, ...]:
  """The class names of builder config ``cfg``."""
  return _classes(cfg).CLASS_NAMES


def render_class(cfg: SyntheticActionsConfig, class_id: int, rng: np.random.Generator,
                 num_frames: int) -> np.ndarray:
  """One random video of ``class_id`` as builder config ``cfg`` renders it (its resolution and
  scenes): uint8 [num_frames, res, res, 3]."""
  if cfg.hard is None:
    return render_video(class_id, rng, cfg.resolution, num_frames)
  return _classes(cfg).render_video(class_id, rng, cfg.resolution, num_frames, cfg.hard)


def generate_example(cfg: SyntheticActionsConfig, split: str, index: int) -> dict:
  """Example ``index`` of ``split`` as a ``make_example`` dict (balanced labels: index % classes)."""
  rng = example_rng(cfg.seed, split, index)
  label = index % len(class_names(cfg))
  num_frames = int(rng.integers(cfg.min_frames, cfg.max_frames + 1))
  video = render_class(cfg, label, rng, num_frames)
  flow = (flow_lib.extract(video, cfg.flow, cfg.warped_flow, "opencv", f"{split}_{index:06d}")
          if cfg.flow and cfg.flow_backend == "opencv" else None)
  return features_lib.make_example(video, label, f"{split}_{index:06d}", FPS, flow)


def _parent_flow(cfg: SyntheticActionsConfig, example: dict) -> dict:
  """``example`` with the flow of a backend other than OpenCV, computed here in the parent (JAX
  stays out of the forked workers)."""
  if not cfg.flow or cfg.flow_backend == "opencv":
    return example
  fields = flow_lib.extract(example["video"], cfg.flow, cfg.warped_flow, cfg.flow_backend,
                            example["video_id"])
  return features_lib.make_example(example["video"], example["label"], example["video_id"], FPS, fields)
