"""Input modalities (``config.input.modality``): what a sampled index reads and how it becomes channels.

- ``rgb``: frame t -> [H, W, 3]; ImageNet mean/std normalisation; a flip mirrors the frame.
- ``flow`` / ``warped_flow``: the stored uint8 TV-L1 fields of the dataset (``prepare --flow tvl1
  [--warped_flow]``). The sampler's ``frames_per_segment`` = L consecutive fields from the sampled index
  form one snippet [H, W, 2L], channels x_t, y_t, x_{t+1}, y_{t+1}, ... (tsn-pytorch's order);
  normalised as (v - 128) / 128; a flip mirrors the fields and inverts x (255 - v, tsn-pytorch's
  ``GroupRandomHorizontalFlip(is_flow=True)``: exactly -dx of the quantised field). Field t is the
  flow from frame t to t+1, so a video of T frames has T - 1 indices to sample from.

The pipeline ships uint8 (0-255) batches; flips act on them (in training and in the test views) and
the normalisation runs inside the jitted step: ``model_input`` (mean/std of the modality).
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import jax.numpy as jnp
import ml_collections
import tensorflow as tf

from vidrec.registry import Registry

FLOW_CENTER = 128.0   # (v - 128) / 128: MMAction2's TSN flow normalisation (mean 128, std 128)


def decode_frames(encoded: tf.Tensor) -> tf.Tensor:
  """JPEG string[L] -> uint8[L, H, W, 3]."""
  return tf.map_fn(lambda s: tf.io.decode_jpeg(s, channels=3), encoded,
                   fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8))


def decode_grey(encoded: tf.Tensor) -> tf.Tensor:
  """JPEG string[L] -> uint8[L, H, W, 1]."""
  return tf.map_fn(lambda s: tf.io.decode_jpeg(s, channels=1), encoded,
                   fn_output_signature=tf.TensorSpec([None, None, 1], tf.uint8))


@dataclasses.dataclass(frozen=True)
class Modality:
  """``features``: the record's streams it reads (the first one's length is the number of sampleable
  indices); ``decode(jpegs, cfg)``: those streams at the sampled indices (string[K*stack] each) ->
  uint8 [K, H, W, C]; ``assemble(streams, cfg)``: the same from the streams already decoded (uint8
  [K*stack, H, W, c] each; ``vidrec.tools.predict`` computes them from a video file); ``channels(cfg)`` = C;
  ``flip`` (of uint8 frames); ``mean_std(cfg)``: the (mean, std) the model's input is normalised with
  (0-255 range, per channel or one for all)."""
  decode: Callable[[dict, ml_collections.ConfigDict], tf.Tensor]
  assemble: Callable[[dict, ml_collections.ConfigDict], tf.Tensor]
  channels: Callable[[ml_collections.ConfigDict], int]
  stack: Callable[[ml_collections.ConfigDict], int]
  flip: Callable[[tf.Tensor], tf.Tensor]
  mean_std: Callable[[ml_collections.ConfigDict], tuple]
  features: tuple[str, ...]


MODALITIES: Registry[Modality] = Registry("input.modality")


MODALITIES.add("rgb", Modality(
    channels=lambda cfg: 3, stack=lambda cfg: 1, decode=lambda jpegs, cfg: decode_frames(jpegs["video"]),
    assemble=lambda streams, cfg: streams["video"],
    flip=lambda frames: tf.reverse(frames, [-2]), mean_std=lambda cfg: (cfg.mean, cfg.std),
    features=("video",)))


def stack_flow(x: tf.Tensor, y: tf.Tensor, length: int) -> tf.Tensor:
  """x, y planes [K*L, H, W, 1] -> [K, H, W, 2L] with channels x_0, y_0, x_1, y_1, ..."""
  xy = tf.concat([x, y], axis=-1)                                     # [K*L, H, W, 2]
  h, w = tf.shape(xy)[1], tf.shape(xy)[2]
  xy = tf.reshape(xy, [-1, length, h, w, 2])
  return tf.reshape(tf.transpose(xy, [0, 2, 3, 1, 4]), [-1, h, w, 2 * length])


def flip_flow(frames: tf.Tensor) -> tf.Tensor:
  """Mirror [..., W, 2L] uint8 flow stacks and invert x (even channels): v -> 255 - v."""
  frames = tf.reverse(frames, [-2])
  is_x = tf.range(tf.shape(frames)[-1]) % 2 == 0
  return tf.where(is_x, tf.constant(255, frames.dtype) - frames, frames)


def _flow(stream: str) -> Modality:
  def assemble(planes: dict, cfg: ml_collections.ConfigDict) -> tf.Tensor:
    return stack_flow(planes[f"{stream}_x"], planes[f"{stream}_y"], cfg.frames_per_segment)

  def decode(jpegs: dict, cfg: ml_collections.ConfigDict) -> tf.Tensor:
    return assemble({k: decode_grey(v) for k, v in jpegs.items()}, cfg)

  return Modality(decode=decode, assemble=assemble,
                  channels=lambda cfg: 2 * cfg.frames_per_segment, stack=lambda cfg: cfg.frames_per_segment,
                  flip=flip_flow,
                  mean_std=lambda cfg: (FLOW_CENTER, FLOW_CENTER), features=(f"{stream}_x", f"{stream}_y"))


MODALITIES.add("flow", _flow("flow"))
MODALITIES.add("warped_flow", _flow("warped_flow"))


def get(cfg: ml_collections.ConfigDict, features=None) -> Modality:
  """The modality ``cfg.modality`` (default rgb), checked against the config and the dataset's features."""
  name = cfg.get("modality", "rgb")
  modality = MODALITIES.get(name)
  if name != "rgb" and cfg.sampler != "segments":
    raise ValueError(f"input.modality={name!r} stacks frames_per_segment flow fields per snippet: "
                     f"use input.sampler='segments' (got {cfg.sampler!r}).")
  if features is not None and not set(modality.features) <= set(features):
    raise ValueError(f"input.modality={name!r} but the dataset has no {name} stream: prepare it with "
                     f"`python -m vidrec.data.prepare ... --flow tvl1{' --warped_flow' if 'warped' in name else ''}`"
                     f" (synthetic: --config.dataset.name=synthetic_actions/flow).")
  return modality


def input_shape(cfg: ml_collections.ConfigDict, batch: int, frames: int) -> tuple[int, ...]:
  """Shape of a batch of videos made of ``frames`` sampled indices per video."""
  modality = get(cfg)
  return (batch, frames // modality.stack(cfg), cfg.crop, cfg.crop, modality.channels(cfg))


def model_input(video: jnp.ndarray, cfg: ml_collections.ConfigDict) -> jnp.ndarray:
  """The model's input from a batch of videos as the pipeline ships them (uint8, 0-255):
  float32 (v - mean) / std of the modality (rgb: ``input.mean``/``input.std``; flow: 128, 128). Runs
  inside the jitted train/eval steps, so the host sends 1 byte per value instead of 4. A floating
  ``video`` is taken to be a model input already (e.g. ``vidrec.tools.bench``'s random batches) and
  passes unchanged."""
  if jnp.issubdtype(video.dtype, jnp.floating):
    return video
  mean, std = get(cfg).mean_std(cfg)
  return (video.astype(jnp.float32) - jnp.asarray(mean, jnp.float32)) / jnp.asarray(std, jnp.float32)
