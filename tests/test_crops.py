"""Crops computed from the uint8 frames (vidrec.data.crops) against whole-frame resizes, and the
on-device normalisation (modalities.model_input)."""
import chex
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow as tf

from vidrec.config import base_config
from vidrec.data import crops, modalities, pipeline

FRAMES = np.random.default_rng(0).integers(0, 256, (3, 30, 40, 3)).astype(np.uint8)


@pytest.mark.parametrize("size", [(30,), (36,), (45,), (24,), (17,), (30, 40), (26, 52)])
def test_crop_of_resized_equals_resize_then_crop(size):
  """Up- and downscales (antialiased), scale 1, fixed sizes; every crop position along a diagonal
  and the corners: the crop of the whole resized frames, rounded to uint8."""
  full = pipeline.resize(tf.constant(FRAMES), size).numpy()
  th, tw = full.shape[1:3]
  assert tuple(int(v) for v in crops.resized_size(30, 40, size)) == (th, tw)
  crop = 16
  for y, x in [(0, 0), (th - crop, tw - crop), (0, tw - crop), ((th - crop) // 2, (tw - crop) // 3)]:
    got = crops.crop_of_resized(tf.constant(FRAMES), (tf.constant(th), tf.constant(tw)),
                                tf.constant(y), tf.constant(x), crop).numpy()
    assert got.dtype == np.uint8
    chex.assert_shape(got, (3, crop, crop, 3))
    np.testing.assert_allclose(got, full[:, y:y + crop, x:x + crop], atol=0.501)


@pytest.mark.parametrize("scale,translation", [((0.4, 0.3), (-3.0, -2.5)), ((1.7, 2.2), (-20.0, -31.0)),
                                               ((0.9, 1.1), (-1.25, -6.0)), ((1.0, 1.0), (-7.0, -9.0))])
def test_resample_reads_only_its_window_without_changing_the_result(scale, translation):
  """The window ``resample`` slices (kernel support included) gives exactly the resampling of the
  whole frame."""
  whole = tf.raw_ops.ScaleAndTranslate(images=tf.constant(FRAMES), size=[12, 14], scale=scale,
                                       translation=translation, kernel_type="triangle", antialias=True)
  got = crops.resample(tf.constant(FRAMES), (12, 14), tf.constant(scale), tf.constant(translation))
  np.testing.assert_allclose(got.numpy(), whole.numpy(), atol=1e-3)


def test_box_of_resized():
  """The whole frame as the box: the frame resized to out x out. A 40 x 40 box at (10, 20) of the
  frames upscaled 2x, resized to 20 x 20: the two scales cancel (20 / 40 * 2 = 1), so it is exactly
  the source pixels [5:25, 10:30] (the composition of the two resizes is one resampling)."""
  f = tf.constant(FRAMES)
  whole = crops.box_of_resized(f, (tf.constant(30), tf.constant(40)), tf.constant([0, 0, 30, 40]), 20)
  np.testing.assert_allclose(whole.numpy(), tf.image.resize(tf.cast(f, tf.float32), (20, 20), antialias=True),
                             atol=0.501)
  box = crops.box_of_resized(f, (tf.constant(60), tf.constant(80)), tf.constant([10, 20, 40, 40]), 20)
  np.testing.assert_array_equal(box.numpy(), FRAMES[:, 5:25, 10:30])


def test_model_input_normalises_uint8_and_passes_floats():
  cfg = base_config().input
  video = np.random.default_rng(1).integers(0, 256, (2, 3, 4, 4, 3)).astype(np.uint8)
  want = (video.astype(np.float32) - np.array(cfg.mean)) / np.array(cfg.std)
  got = modalities.model_input(jnp.asarray(video), cfg)
  assert got.dtype == jnp.float32
  np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
  floats = jnp.ones((1, 2, 2, 2, 3), jnp.float32)
  assert modalities.model_input(floats, cfg) is floats
  cfg.update(sampler="segments", modality="flow")
  np.testing.assert_allclose(modalities.model_input(jnp.asarray(video[..., :2]), cfg),
                             (video[..., :2].astype(np.float32) - 128) / 128, atol=1e-6)
