"""Sampler properties: indices in range, determinism, segment coverage, short videos, crop views."""
import numpy as np
import pytest

from vidrec.data import samplers


@pytest.mark.parametrize("num_frames", [1, 3, 15, 16, 17, 60, 301])
@pytest.mark.parametrize("short_video", ["loop", "pad"])
def test_dense_clips_in_range_and_strided(num_frames, short_video):
  rng = np.random.default_rng(0)
  for _ in range(20):
    idx = samplers.random_dense_clip(num_frames, 8, 2, rng, short_video)
    assert idx.shape == (8,) and idx.dtype == np.int32
    assert idx.min() >= 0 and idx.max() < num_frames
    if num_frames >= samplers.clip_span(8, 2):
      np.testing.assert_array_equal(np.diff(idx), 2)
  test = samplers.test_dense_clips(num_frames, 8, 2, 5, short_video)
  assert test.shape == (5, 8) and test.min() >= 0 and test.max() < num_frames


def test_short_video_modes():
  np.testing.assert_array_equal(samplers.dense_clip(3, 5, 1, 0, "loop"), [0, 1, 2, 0, 1])
  np.testing.assert_array_equal(samplers.dense_clip(3, 5, 1, 0, "pad"), [0, 1, 2, 2, 2])
  with pytest.raises(ValueError, match="short_video"):
    samplers.dense_clip(3, 5, 1, 0, "wrap")
  with pytest.raises(ValueError, match="at least one frame"):
    samplers.dense_clip(0, 5, 1, 0)


def test_random_clip_deterministic_per_seed_and_covers_starts():
  a = [samplers.random_dense_clip(40, 4, 2, np.random.default_rng([3, i]))[0] for i in range(200)]
  b = [samplers.random_dense_clip(40, 4, 2, np.random.default_rng([3, i]))[0] for i in range(200)]
  assert a == b
  assert set(a) == set(range(0, 40 - 7 + 1))  # every valid start is reachable


def test_test_clips_evenly_spaced():
  # 100 frames, span 16: starts are the centres of 4 equal bins over the 85 valid starts.
  clips = samplers.test_dense_clips(100, 16, 1, 4)
  np.testing.assert_array_equal(clips[:, 0], np.floor((np.arange(4) + 0.5) * 85 / 4).astype(int))
  np.testing.assert_array_equal(samplers.test_dense_clips(100, 16, 1, 1)[0, 0], 42)


def test_non_overlapping_clips():
  clips = samplers.non_overlapping_clips(50, 16)
  np.testing.assert_array_equal(clips[:, 0], [0, 16, 32])
  assert len(np.unique(clips)) == clips.size  # no frame in two clips
  assert samplers.non_overlapping_clips(10, 16).shape == (1, 16)


@pytest.mark.parametrize("num_frames", [1, 5, 8, 9, 33, 250])
def test_segments_cover_video(num_frames):
  n = 8
  test = samplers.segments(num_frames, n)
  assert test.shape == (n,) and test.min() >= 0 and test.max() < num_frames
  assert np.all(np.diff(test) >= 0)
  rng = np.random.default_rng(0)
  for _ in range(50):
    idx = samplers.segments(num_frames, n, rng)
    if num_frames >= n:  # one index inside each of the n equal segments [k*T/n, (k+1)*T/n)
      k = np.arange(n)
      assert np.all(idx >= np.floor(k * num_frames / n)) and np.all(idx < (k + 1) * num_frames / n)
  if num_frames >= n:
    centres = (np.arange(n) + 0.5) * num_frames / n
    assert np.all(np.abs(test - centres) <= 1.0)


def test_segments_shared_offset_keeps_the_spacing():
  rng = np.random.default_rng(1)
  starts = set()
  for _ in range(30):
    idx = samplers.segments(80, 8, rng, shared_offset=True)
    np.testing.assert_array_equal(np.diff(idx), 10)            # equal parts of 10 frames, same position
    starts.add(int(idx[0]))
  assert len(starts) > 3 and min(starts) >= 0 and max(starts) < 10
  s = samplers.TEMPORAL_SAMPLERS.get("segments_shared")(num_segments=8)
  np.testing.assert_array_equal(s.test(80), samplers.segments(80, 8)[None])


def test_segments_with_snippets():
  idx = samplers.segments(40, 4, None, frames_per_segment=5)
  assert idx.shape == (20,)
  np.testing.assert_array_equal(np.diff(idx.reshape(4, 5), axis=1), 1)
  np.testing.assert_array_equal(samplers.segments(3, 2, None, frames_per_segment=5, short_video="pad"),
                                [0, 1, 2, 2, 2] * 2)   # shorter than a snippet: TSN repeats the last frame


def test_segment_snippets_follow_tsn_tick_without_wrap():
  # F = 10 frames, N = 4 snippets of L = 5: tick = (10 - 5 + 1) / 4 = 1.5, starts floor(0.75 + 1.5 k).
  np.testing.assert_array_equal(samplers.segments(10, 4, None, frames_per_segment=5).reshape(4, 5)[:, 0],
                                [0, 2, 3, 5])
  for f in range(5, 60):       # tsn-pytorch's _get_test_indices (1-based there): int(tick / 2 + tick * k)
    for n, length in [(3, 1), (4, 5), (7, 5), (25, 1)]:
      tick = (f - length + 1) / n
      want = np.array([int(tick / 2 + tick * k) for k in range(n)])
      got = samplers.segments(f, n, None, frames_per_segment=length).reshape(n, length)
      np.testing.assert_array_equal(got[:, 0], want)
      assert got.max() <= f - 1 and np.all(np.diff(got, axis=1) == 1)      # no wrap to frame 0
      rng = np.random.default_rng(f)
      starts = samplers.segments(f, n, rng, frames_per_segment=length).reshape(n, length)[:, 0]
      k = np.arange(n)
      assert np.all(starts >= np.floor(k * tick)) and np.all(starts < (k + 1) * tick)


def test_registry_and_spatial_views():
  s = samplers.TEMPORAL_SAMPLERS.get("segments")(num_segments=3, clip_len=99)
  assert s.test(30).shape == (1, 3)
  with pytest.raises(KeyError, match="Known input.samplers"):
    samplers.TEMPORAL_SAMPLERS.get("nope")
  np.testing.assert_array_equal(samplers.spatial_views(10, 20, 8, "center"), [[1, 6, 0]])
  np.testing.assert_array_equal(samplers.spatial_views(10, 20, 8, "three")[:, 1], [0, 6, 12])
  np.testing.assert_array_equal(samplers.spatial_views(20, 10, 8, "three")[:, 0], [0, 6, 12])
  ten = samplers.spatial_views(10, 10, 8, "five", flip=True)
  assert ten.shape == (10, 3) and ten[:, 2].sum() == 5
  assert samplers.spatial_views(10, 10, 8, "nine", flip=True).shape == (18, 3)
  with pytest.raises(ValueError, match="larger than the frame"):
    samplers.spatial_views(10, 10, 12)


@pytest.mark.parametrize("name", samplers.TEMPORAL_SAMPLERS.names())
def test_sampler_says_its_view_length(name):
  """``num_frames`` is the length of every train and test view, and the trainer's input length."""
  from vidrec import trainer
  from vidrec.config import base_config
  from vidrec.data import pipeline
  config = base_config()
  config.input.update(sampler=name, clip_len=5, stride=2, num_test_clips=3, num_segments=3,
                      frames_per_segment=2, crop=16)
  s = pipeline.make_sampler(config.input)
  for num_frames in (1, 7, 40):
    assert s.train(num_frames, np.random.default_rng(0)).shape == (s.num_frames,)
    assert s.test(num_frames).shape[1] == s.num_frames
  assert s.num_frames == {"dense": 5, "segments": 6}.get(name, s.num_frames)
  assert trainer.input_shape(config, 4) == (4, s.num_frames, 16, 16, 3)
