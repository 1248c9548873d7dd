"""The harder ``synthetic_actions/hard`` scenes (issue 16): 24 classes under a moving camera.

Built on the primitives of ``vidrec.data.synthetic`` (objects, motions, drawing). Compared with the
default scenes:

* **camera motion**: a procedural texture (a sum of random plane waves) and every object live in
  world coordinates; a camera pans along a random direction, zooms in or out and shakes per
  frame, so every background pixel moves (what warped flow and attention have to remove);
* **a small actor among distractors**: the actor (radius 7-11% of the frame, opaque, dark outline)
  shares the frame with distractors of the same size and colours that perform the motions of
  random classes (each time-reversed and mirrored with probability 1/2), static clutter, and
  static opaque blocks drawn in front of everything (partial occlusion);
* **late and speed-only differences**: turns that differ only after 55-75% of the video,
  drops that differ only after the impact (rest / break / roll left / roll right), quick vs slow
  moves between the same end points, slow vs fast shaking;
* 24 classes; the knobs are ``synthetic.Difficulty`` (a field of the builder config).

The invariants of the default scenes hold here too (``tests/test_synthetic_hard.py``): rendering
is deterministic per seed, exactly mirror-equivariant (``FLIP_LABEL_MAP``) and exactly
time-reversible (``TIME_REVERSAL_PARTNERS``); every class-independent part of the scene
(camera, texture, distractors) has a distribution invariant under mirroring and time reversal.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from vidrec.data import synthetic as base

_F32 = np.float32

CLASS_NAMES: tuple[str, ...] = base.CLASS_NAMES + (
    "Moving something from left to right and then up",      # 12
    "Moving something from left to right and then down",    # 13
    "Moving something from right to left and then up",      # 14
    "Moving something from right to left and then down",    # 15
    "Quickly moving something from left to right",          # 16
    "Quickly moving something from right to left",          # 17
    "Quickly moving something up",                          # 18
    "Quickly moving something down",                        # 19
    "Shaking something slowly",                             # 20
    "Shaking something quickly",                            # 21
    "Dropping something so that it rolls to the right",     # 22
    "Dropping something so that it rolls to the left",      # 23
)
NUM_CLASSES = len(CLASS_NAMES)

CLASS_GROUPS: dict[str, tuple[int, ...]] = {
    **base.CLASS_GROUPS,
    "late_turn": (12, 13, 14, 15),
    "late_outcome": (6, 7, 22, 23),
    "speed": (0, 16, 1, 17, 2, 18, 3, 19, 20, 21),
}

TIME_REVERSAL_PARTNERS: dict[int, int] = {**base.TIME_REVERSAL_PARTNERS,
                                          16: 17, 17: 16, 18: 19, 19: 18}

FLIP_LABEL_MAP: tuple[int, ...] = base.FLIP_LABEL_MAP + (14, 15, 12, 13, 17, 16, 18, 19, 20, 21,
                                                         23, 22)

# class -> (motion kind, time-reversed, mirrored, variant), as synthetic._CLASS_SPECS.
CLASS_SPECS: tuple[tuple[str, bool, bool, str], ...] = base._CLASS_SPECS + (
    ("turn", False, False, "up"),
    ("turn", False, False, "down"),
    ("turn", False, True, "up"),       # right to left = left to right mirrored
    ("turn", False, True, "down"),
    ("quick_h", False, False, ""),
    ("quick_h", True, False, ""),
    ("quick_v", True, False, ""),      # up = down reversed
    ("quick_v", False, False, ""),
    ("shake", False, False, "slow"),
    ("shake", False, False, "fast"),
    ("drop", False, False, "rolls"),
    ("drop", False, True, "rolls"),    # rolls left = rolls right mirrored
)

# Shaking period in frames (not in video time: a fast shake is fast in any video length).
SHAKE_PERIODS: dict[str, tuple[float, float]] = {"slow": (18.0, 28.0), "fast": (6.0, 9.0)}


def _smoothstep(a: np.ndarray) -> np.ndarray:
  return a * a * (3 - 2 * a)


_Path = tuple[np.ndarray, np.ndarray]  # per-frame (cx, cy)


def _turn(variant: str, rng: np.random.Generator, res: int, t: np.ndarray, r: float) -> _Path:
  """Left to right, then (at 55-75% of the video) up or down; identical until the turn."""
  m = res / 2 - 0.75 * r
  x0, x1 = rng.uniform(-m, -m + 0.2 * res), rng.uniform(0.05 * res, 0.3 * res)
  y0, t_turn = rng.uniform(-0.15, 0.15) * res, rng.uniform(0.55, 0.75)
  dy = rng.uniform(0.2, 0.32) * res * (-1.0 if variant == "up" else 1.0)
  cx = x0 + (x1 - x0) * np.clip(t / t_turn, 0, 1) + base._wobble(rng, t, 0.02 * res)
  cy = y0 + dy * np.clip((t - t_turn) / (1 - t_turn), 0, 1) + base._wobble(rng, t, 0.02 * res)
  return cx, cy


def _quick(axis: str) -> Callable[[str, np.random.Generator, int, np.ndarray, float], _Path]:
  """The end points of ``shift_h`` / ``shift_v``, covered in 15-30% of the video at a random time
  (still before and after); the window's distribution is symmetric under time reversal."""
  def motion(variant: str, rng: np.random.Generator, res: int, t: np.ndarray, r: float) -> _Path:
    del variant
    m = res / 2 - 0.75 * r
    a0, a1 = rng.uniform(-m, -m + 0.22 * res), rng.uniform(m - 0.22 * res, m)
    d = rng.uniform(0.15, 0.3)
    t0 = rng.uniform(0.05, 0.95 - d)
    along = a0 + (a1 - a0) * _smoothstep(np.clip((t - t0) / d, 0, 1))
    across = rng.uniform(-0.3, 0.3) * res + base._wobble(rng, t, 0.02 * res)
    return (along, across) if axis == "h" else (across, along)
  return motion


def _shake(variant: str, rng: np.random.Generator, res: int, t: np.ndarray, r: float) -> _Path:
  """Horizontal oscillation around a random point; slow and fast share every draw but the
  period's range (``SHAKE_PERIODS``)."""
  m = res / 2 - 0.75 * r - 0.1 * res
  x0, y0 = rng.uniform(-m, m, 2)
  amp, phase, u = rng.uniform(0.06, 0.1) * res, rng.uniform(0, 2 * np.pi), rng.uniform()
  lo, hi = SHAKE_PERIODS[variant]
  frames = t * (t.shape[0] - 1)
  cx = x0 + amp * np.sin(2 * np.pi * frames / (lo + u * (hi - lo)) + phase)
  return cx, np.full_like(t, y0)


_POSITION_MOTIONS = {"turn": _turn, "quick_h": _quick("h"), "quick_v": _quick("v"),
                     "shake": _shake}


def motion(kind: str, variant: str, rng: np.random.Generator, res: int, t: np.ndarray, r: float):
  """Per-frame (cx, cy, radius, alpha, pieces) for any kind of ``CLASS_SPECS``."""
  if kind not in _POSITION_MOTIONS:
    return base._actor_motion(kind, variant, rng, res, t, r)
  n = t.shape[0]
  cx, cy = _POSITION_MOTIONS[kind](variant, rng, res, t, r)
  as32 = lambda x: np.asarray(x, _F32)
  return as32(cx), as32(cy), np.full(n, r, _F32), np.ones(n, _F32), None


# ----------------------------------------------------------------------------- camera, texture


@dataclasses.dataclass
class Camera:
  """Per-frame [T] centre (world pixels) and zoom (image pixels per world pixel)."""
  x: np.ndarray
  y: np.ndarray
  zoom: np.ndarray

  def reversed(self) -> "Camera":
    return Camera(self.x[::-1], self.y[::-1], self.zoom[::-1])

  def mirrored(self) -> "Camera":
    return Camera(-self.x, self.y, self.zoom)

  def project(self, obj: base.SceneObject) -> base.SceneObject:
    """``obj`` (world coordinates) in image coordinates."""
    z = self.zoom
    pieces = None if obj.pieces is None else obj.pieces * z[:, None, None, None]
    return dataclasses.replace(obj, cx=(obj.cx - self.x) * z, cy=(obj.cy - self.y) * z,
                               radius=obj.radius * z, pieces=pieces)


@dataclasses.dataclass
class Texture:
  """``base + sum_k amp[k] * wave(kx[k] x + ky[k] y + phase[k])`` in world pixels, where ``wave``
  is a smoothed triangle wave of period 1 (``_wave``)."""
  base: np.ndarray    # [3]
  kx: np.ndarray      # [K] cycles per pixel
  ky: np.ndarray      # [K]
  phase: np.ndarray   # [K] cycles
  amp: np.ndarray     # [K, 3]

  def mirrored(self) -> "Texture":
    return dataclasses.replace(self, kx=-self.kx)

  def render(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """[T, H, W, 3] for pixel-centre world coordinates ``x`` [T, W] and ``y`` [T, H]."""
    img = np.broadcast_to(self.base, (x.shape[0], y.shape[1], x.shape[1], 3)).copy()
    for kx, ky, ph, amp in zip(self.kx, self.ky, self.phase, self.amp):
      img += _wave(kx * x[:, None, :] + ky * y[:, :, None] + ph)[..., None] * amp
    return img


def _wave(cycles: np.ndarray) -> np.ndarray:
  """``2 smoothstep(triangle) - 1``, within 0.02 of ``cos(2 pi cycles)``. Only correctly rounded
  operations: numpy's SIMD ``cos`` can differ in the last bit with the memory alignment, which
  would break determinism and the exact mirror symmetry."""
  tri = np.abs(2 * (cycles - np.floor(cycles)) - 1)
  return 2 * _smoothstep(tri) - 1


def _sample_texture(rng: np.random.Generator, contrast: float, k: int = 8) -> Texture:
  """Plane waves with wavelengths 5-40 px in random directions, amplitudes falling with frequency."""
  col = base._hsv_to_rgb(rng.uniform(), rng.uniform(0.0, 0.4), rng.uniform(0.3, 0.55))
  wavelength = np.exp(rng.uniform(np.log(5.0), np.log(40.0), k))
  ang, phase = rng.uniform(0, 2 * np.pi, k), rng.uniform(0, 2 * np.pi, k)
  freq = 1.0 / wavelength
  lum = contrast * rng.uniform(0.5, 1.0, k) * np.sqrt(wavelength / 40.0) / np.sqrt(k / 4)
  tint = 1.0 + rng.normal(0.0, 0.5, (k, 3))
  return Texture(base=col, kx=(freq * np.cos(ang)).astype(_F32), ky=(freq * np.sin(ang)).astype(_F32),
                 phase=(phase / (2 * np.pi)).astype(_F32), amp=(lum[:, None] * tint).astype(_F32))


def _sample_camera(rng: np.random.Generator, res: int, t: np.ndarray,
                   d: base.Difficulty) -> Camera:
  """Pan (monotone, random direction), exponential zoom and white per-frame shake."""
  ang = rng.uniform(0, 2 * np.pi)
  travel = rng.uniform(0.3, 1.0) * d.pan * res * (base._profile(rng, t) - 0.5)
  zoom = np.exp(rng.uniform(0.0, 0.2) + rng.uniform(-d.zoom, d.zoom) * (t - 0.5))
  shake = rng.normal(0.0, 1.0, (2, t.shape[0])) * d.shake * res / zoom
  return Camera(x=(travel * np.cos(ang) + shake[0]).astype(_F32),
                y=(travel * np.sin(ang) + shake[1]).astype(_F32), zoom=zoom.astype(_F32))


# ----------------------------------------------------------------------------- scene


@dataclasses.dataclass
class HardScene:
  """A world (texture + objects in world coordinates) filmed by a moving camera."""
  resolution: int
  texture: Texture
  camera: Camera
  noise: np.ndarray                  # [T, H, W, 3]
  objects: list[base.SceneObject]    # drawn in order
  actor_index: int

  @property
  def actor(self) -> base.SceneObject:
    return self.objects[self.actor_index]

  def reversed(self) -> "HardScene":
    return dataclasses.replace(self, camera=self.camera.reversed(), noise=self.noise[::-1],
                               objects=[o.reversed() for o in self.objects])

  def mirrored(self) -> "HardScene":
    return dataclasses.replace(self, texture=self.texture.mirrored(), camera=self.camera.mirrored(),
                               noise=self.noise[:, :, ::-1],
                               objects=[o.mirrored() for o in self.objects])


def _count(rng: np.random.Generator, lo_hi: tuple[int, int]) -> int:
  return int(rng.integers(lo_hi[0], lo_hi[1] + 1))


def _look(rng: np.random.Generator, t: np.ndarray, size: tuple[float, float], res: int,
          alpha: tuple[float, float], colourful: bool, max_turns: float) -> dict:
  """Shape, colour, rotation, opacity and radius of one object (its position comes later)."""
  r = rng.uniform(*size) * res
  shape = int(rng.integers(len(base.SHAPES)))
  sat, val = ((0.55, 1.0), (0.8, 1.0)) if colourful else ((0.0, 0.4), (0.2, 0.7))
  color = base._hsv_to_rgb(rng.uniform(), rng.uniform(*sat), rng.uniform(*val))
  cos, sin = base._rotation(rng, t, max_turns)
  return dict(shape=shape, color=color, cos=cos, sin=sin, r=r, alpha=rng.uniform(*alpha))


def _static(rng: np.random.Generator, res: int, t: np.ndarray, size: tuple[float, float],
            alpha: tuple[float, float]) -> base.SceneObject:
  """A dull, still object anywhere in the part of the world the camera may see."""
  look = _look(rng, t, size, res, alpha, colourful=False, max_turns=0.0)
  n = t.shape[0]
  cx, cy = (np.full(n, v, _F32) for v in rng.uniform(-0.65, 0.65, 2) * res)
  return base.SceneObject(shape=look["shape"], color=look["color"], cx=cx, cy=cy,
                          radius=np.full(n, look["r"], _F32), alpha=np.full(n, look["alpha"], _F32),
                          cos=look["cos"], sin=look["sin"])


def _perform(look: dict, kind: str, variant: str, rng: np.random.Generator, res: int,
             t: np.ndarray, outline: float = 0.0) -> base.SceneObject:
  """An object of appearance ``look`` doing a random draw of motion ``kind`` (not yet reversed
  or mirrored as its class's spec says)."""
  cx, cy, radius, alpha, pieces = motion(kind, variant, rng, res, t, look["r"])
  return base.SceneObject(shape=look["shape"], color=look["color"], cx=cx, cy=cy, radius=radius,
                          alpha=alpha * _F32(look["alpha"]), cos=look["cos"], sin=look["sin"],
                          outline=outline, pieces=pieces)


def sample_scene(class_id: int, rng: np.random.Generator, resolution: int, num_frames: int,
                 difficulty: base.Difficulty) -> HardScene:
  """Draws a random hard scene of class ``class_id`` (consumes ``rng``)."""
  if not 0 <= class_id < NUM_CLASSES:
    raise ValueError(f"class_id must be in [0, {NUM_CLASSES}), got {class_id}")
  if num_frames < 1 or resolution < 8:
    raise ValueError(f"need num_frames >= 1 and resolution >= 8, got {num_frames}, {resolution}")
  d, res = difficulty, resolution
  t = (np.arange(num_frames) / max(num_frames - 1, 1)).astype(np.float64)
  # Class-independent part first (partners consume it identically).
  texture = _sample_texture(rng, d.texture_contrast)
  camera = _sample_camera(rng, res, t, d)
  clutter = [_static(rng, res, t, (0.04, 0.1), (0.4, 0.8)) for _ in range(_count(rng, d.num_clutter))]
  distractors = []
  for _ in range(_count(rng, d.num_distractors)):  # any class, either direction in time and space
    look = _look(rng, t, d.distractor_size, res, d.distractor_opacity, True, 0.15)
    kind, _, _, variant = CLASS_SPECS[int(rng.integers(NUM_CLASSES))]
    obj = _perform(look, kind, variant, rng, res, t)
    obj = obj.reversed() if rng.uniform() < 0.5 else obj
    distractors.append(obj.mirrored() if rng.uniform() < 0.5 else obj)
  occluders = [_static(rng, res, t, d.occluder_size, (1.0, 1.0))
               for _ in range(_count(rng, d.num_occluders))]
  n_below = int(rng.integers(len(distractors) + 1))
  actor_look = _look(rng, t, d.actor_size, res, (1.0, 1.0), True, 0.15)
  noise = (rng.standard_normal((num_frames, res, res, 3), dtype=_F32)
           * _F32(rng.uniform(0.01, 0.025)))
  # Class-dependent motion last; reversed / mirrored classes reverse / mirror the whole scene.
  kind, reverse, mirror, variant = CLASS_SPECS[class_id]
  actor = _perform(actor_look, kind, variant, rng, res, t, outline=max(1.0, 0.035 * res))
  objects = clutter + distractors[:n_below] + [actor] + distractors[n_below:] + occluders
  scene = HardScene(resolution=res, texture=texture, camera=camera, noise=noise, objects=objects,
                    actor_index=len(clutter) + n_below)
  scene = scene.reversed() if reverse else scene
  return scene.mirrored() if mirror else scene


def render_scene(scene: HardScene) -> np.ndarray:
  """Renders a hard scene to uint8 [T, H, W, 3] (exactly mirror-symmetric pixel grid)."""
  res, cam = scene.resolution, scene.camera
  u = np.arange(res, dtype=_F32) + _F32(0.5 - res / 2)  # pixel centres, u[-1 - j] == -u[j]
  x = cam.x[:, None] + u[None, :] / cam.zoom[:, None]
  y = cam.y[:, None] + u[None, :] / cam.zoom[:, None]
  background = np.clip(scene.texture.render(x, y), 0.0, 1.0)
  return base.composite(background, [cam.project(o) for o in scene.objects], scene.noise)


def render_video(class_id: int, rng: np.random.Generator, resolution: int, num_frames: int,
                 difficulty: base.Difficulty) -> np.ndarray:
  """Renders one random hard video of class ``class_id``: uint8 [num_frames, res, res, 3]."""
  return render_scene(sample_scene(class_id, rng, resolution, num_frames, difficulty))
