"""Crops of resized frames, computed from the uint8 frames without ever resizing whole frames.

Every spatial transform of the pipeline is "resize the frames, then take a box of the result (and,
for TSN's multi-scale crop, resize the box)". One resampling of the source frames does it:
output pixel ``i`` samples source position ``(i + 0.5 - t) / s - 0.5`` (scale ``s``, translation
``t``; ``tf.image.resize``'s half-pixel grid), with the triangle kernel widened by ``1/s`` when
downscaling (antialiasing), exactly as ``tf.image.resize(antialias=True)`` computes it, since that
op is ``scale_and_translate`` with ``t = 0``. Only the source window the output needs (plus the
kernel's support) is read, and the result is rounded back to uint8: the pipeline ships uint8
batches and the model's input is normalised inside the jitted step (``modalities.model_input``).
"""
from __future__ import annotations

import tensorflow as tf


def resized_size(h: tf.Tensor, w: tf.Tensor, size) -> tuple[tf.Tensor, tf.Tensor]:
  """The (height, width) ``pipeline.resize`` gives [.., h, w, ..] frames: ``size`` = (h, w) is a
  fixed size; (s,), a scalar or a scalar tensor s makes the short side s (rounded, at least s)."""
  if isinstance(size, (tuple, list)) and len(size) == 2:
    return tf.constant(size[0], tf.int32), tf.constant(size[1], tf.int32)
  size = size[0] if isinstance(size, (tuple, list)) else size
  size = tf.cast(size, tf.float32)
  hf, wf = tf.cast(h, tf.float32), tf.cast(w, tf.float32)
  scale = size / tf.minimum(hf, wf)
  th = tf.maximum(tf.round(hf * scale), size)
  tw = tf.maximum(tf.round(wf * scale), size)
  return tf.cast(th, tf.int32), tf.cast(tw, tf.int32)


def to_uint8(frames: tf.Tensor) -> tf.Tensor:
  """Rounds 0-255 float frames to uint8 (saturating)."""
  return tf.saturate_cast(tf.round(frames), tf.uint8)


def _window(lo: tf.Tensor, hi: tf.Tensor, scale: tf.Tensor, n: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
  """Rows [r0, r1) of a source axis of length ``n`` that output samples at source positions
  ``lo .. hi`` read: the positions plus the kernel's support (max(1, 1/scale) pixels) and a pixel of
  slack, clipped to the frame (where ``scale_and_translate`` renormalises, as on the whole frame)."""
  radius = tf.maximum(1.0, 1.0 / scale) + 1.0
  r0 = tf.clip_by_value(tf.cast(tf.floor(lo - radius), tf.int32), 0, n - 1)
  r1 = tf.clip_by_value(tf.cast(tf.math.ceil(hi + radius), tf.int32) + 1, r0 + 1, n)
  return r0, r1


def resample(frames: tf.Tensor, out_hw: tuple[int, int], scale: tf.Tensor,
             translation: tf.Tensor) -> tf.Tensor:
  """[L, h, w, C] (any real dtype) -> float32 [L, out_h, out_w, C]: output pixel i along each axis
  samples source position (i + 0.5 - t) / s - 0.5 (``scale`` s and ``translation`` t are [2]: y, x)
  with the antialiased triangle kernel; reads only the window of the source it needs. Upscaling on
  both axes (the kernel is plain bilinear there) takes ``tf.image.crop_and_resize`` on the window
  with its edge pixels repeated once (TF's faster bilinear sampler, same values)."""
  shape = tf.shape(frames)
  scale, translation = tf.cast(scale, tf.float32), tf.cast(translation, tf.float32)
  out = tf.constant(out_hw, tf.float32)
  lo = (0.5 - translation) / scale - 0.5
  hi = (out - 0.5 - translation) / scale - 0.5
  y0, y1 = _window(lo[0], hi[0], scale[0], shape[1])
  x0, x1 = _window(lo[1], hi[1], scale[1], shape[2])
  window = frames[:, y0:y1, x0:x1]
  origin = tf.cast(tf.stack([y0, x0]), tf.float32)

  def antialiased() -> tf.Tensor:
    return tf.raw_ops.ScaleAndTranslate(images=window, size=tf.constant(out_hw, tf.int32), scale=scale,
                                        translation=translation + origin * scale, kernel_type="triangle",
                                        antialias=True)

  def bilinear() -> tf.Tensor:
    padded = tf.concat([window[:, :1], window, window[:, -1:]], 1)       # the border, as resize clamps
    padded = tf.concat([padded[:, :, :1], padded, padded[:, :, -1:]], 2)
    last = tf.cast(tf.shape(padded)[1:3] - 1, tf.float32)
    first, end = (lo - origin + 1) / last, (hi - origin + 1) / last      # [y, x] in padded coordinates
    box = tf.stack([first[0], first[1], end[0], end[1]])[None]
    return tf.image.crop_and_resize(padded, tf.tile(box, [shape[0], 1]), tf.range(shape[0]), out_hw)

  return tf.cond(tf.reduce_all(scale >= 1.0), bilinear, antialiased)


def crop_of_resized(frames: tf.Tensor, target_hw: tuple[tf.Tensor, tf.Tensor], y: tf.Tensor,
                    x: tf.Tensor, crop: int) -> tf.Tensor:
  """uint8 [L, h, w, C] -> uint8 [L, crop, crop, C]: the crop at (y, x) of the frames resized to
  ``target_hw`` (``tf.image.resize(antialias=True)``, rounded); a plain slice when the frames already
  have the target size (e.g. frames stored at 128x171, resize 128x171)."""
  shape = tf.shape(frames)
  th, tw = target_hw

  def same_size() -> tf.Tensor:
    return frames[:, y:y + crop, x:x + crop]

  def resized() -> tf.Tensor:
    scale = tf.cast(tf.stack([th, tw]), tf.float32) / tf.cast(shape[1:3], tf.float32)
    return to_uint8(resample(frames, (crop, crop), scale, -tf.cast(tf.stack([y, x]), tf.float32)))

  same = tf.logical_and(tf.equal(th, shape[1]), tf.equal(tw, shape[2]))
  return tf.ensure_shape(tf.cond(same, same_size, resized), [None, crop, crop, frames.shape[-1]])


def box_of_resized(frames: tf.Tensor, target_hw: tuple[tf.Tensor, tf.Tensor], box: tf.Tensor,
                   out: int) -> tf.Tensor:
  """uint8 [L, h, w, C] -> uint8 [L, out, out, C]: the box (y, x, bh, bw) of the frames resized to
  ``target_hw``, itself resized to out x out, in one resampling of the source (the two resizes'
  scales multiplied: s = out / b * target / source, t = -y * out / b)."""
  shape = tf.shape(frames)
  target = tf.cast(tf.stack(target_hw), tf.float32)
  box = tf.cast(box, tf.float32)
  zoom = out / box[2:]
  scale = zoom * target / tf.cast(shape[1:3], tf.float32)
  return to_uint8(resample(frames, (out, out), scale, -box[:2] * zoom))
