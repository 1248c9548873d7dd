"""Samplers: small pure functions from a video's frame count to frame indices (and crop positions).

Temporal samplers return int32 arrays of frame indices in ``[0, num_frames)``. Training samplers take a
``numpy.random.Generator`` (the pipeline seeds one per example from (seed, position), so every run and
every resumed run sees the same indices); test samplers are deterministic. A sampler is chosen by name
(``config.input.sampler``) from ``TEMPORAL_SAMPLERS``; spatial test views from ``spatial_views``.

Short videos (fewer frames than a clip spans) are handled by ``short_video``: ``"loop"`` wraps the
indices around (frame i -> i mod T), ``"pad"`` repeats the last frame.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from vidrec.registry import Registry
from vidrec.errors import UserError

SHORT_VIDEO_MODES = ("loop", "pad")


def _fit(indices: np.ndarray, num_frames: int, short_video: str) -> np.ndarray:
  """Maps indices past the end of the video back into range (loop or pad)."""
  if short_video == "loop":
    return (indices % num_frames).astype(np.int32)
  if short_video == "pad":
    return np.minimum(indices, num_frames - 1).astype(np.int32)
  raise UserError(f"short_video must be one of {SHORT_VIDEO_MODES}, got {short_video!r}")


def _check(num_frames: int) -> None:
  if num_frames < 1:
    raise ValueError(f"a video needs at least one frame, got num_frames={num_frames}")


def clip_span(clip_len: int, stride: int) -> int:
  """Number of frames a clip of ``clip_len`` frames with ``stride`` covers."""
  return (clip_len - 1) * stride + 1


def dense_clip(num_frames: int, clip_len: int, stride: int, start: int,
               short_video: str = "loop") -> np.ndarray:
  """``clip_len`` frames ``stride`` apart from ``start``: int32[clip_len]."""
  _check(num_frames)
  return _fit(start + stride * np.arange(clip_len), num_frames, short_video)


def random_dense_clip(num_frames: int, clip_len: int, stride: int, rng: np.random.Generator,
                      short_video: str = "loop") -> np.ndarray:
  """Training: one clip at a uniformly random start. int32[clip_len]."""
  max_start = max(num_frames - clip_span(clip_len, stride), 0)
  return dense_clip(num_frames, clip_len, stride, int(rng.integers(0, max_start + 1)), short_video)


def test_dense_clips(num_frames: int, clip_len: int, stride: int, num_clips: int,
                     short_video: str = "loop") -> np.ndarray:
  """Test: ``num_clips`` clips whose starts are the centres of equal bins over the valid starts
  (MMAction2's rule; one clip is the centre clip). int32[num_clips, clip_len]."""
  starts = bin_centre_starts(max(num_frames - clip_span(clip_len, stride), 0), num_clips)
  return np.stack([dense_clip(num_frames, clip_len, stride, s, short_video) for s in starts])


def bin_centre_starts(max_start: int, num_clips: int) -> np.ndarray:
  """The centres of ``num_clips`` equal bins over the starts ``0 .. max_start``."""
  return np.floor((np.arange(num_clips) + 0.5) * (max_start + 1) / num_clips).astype(int)


def non_overlapping_clips(num_frames: int, clip_len: int, stride: int = 1,
                          short_video: str = "loop") -> np.ndarray:
  """Test: every non-overlapping clip of the video (SGN Sec. IV-B); at least one.
  int32[max(1, T // span), clip_len]."""
  span = clip_len * stride
  count = max(1, num_frames // span)
  return np.stack([dense_clip(num_frames, clip_len, stride, k * span, short_video) for k in range(count)])


def sliding_clips(num_frames: int, clip_len: int, stride: int, clip_stride: int,
                  short_video: str = "pad") -> np.ndarray:
  """Test: a clip starting at every ``clip_stride``-th frame from the first, as long as the clip fits
  (JointLSTM, paper 001 Sec. 3.5); a video shorter than one clip gives one clip from frame 0, completed
  by ``short_video``. int32[1 + (T - span) // clip_stride, clip_len]."""
  if clip_stride < 1:
    raise ValueError(f"clip_stride must be >= 1, got {clip_stride}")
  max_start = max(num_frames - clip_span(clip_len, stride), 0)
  return np.stack([dense_clip(num_frames, clip_len, stride, s, short_video)
                   for s in range(0, max_start + 1, clip_stride)])


def segments(num_frames: int, num_segments: int, rng: np.random.Generator | None = None,
             frames_per_segment: int = 1, short_video: str = "loop", shared_offset: bool = False) -> np.ndarray:
  """TSN sampling (tsn-pytorch ``dataset.py``): the ``F - L + 1`` start positions of an ``L``-frame
  snippet (``L = frames_per_segment``) are split into ``num_segments`` equal parts of length
  ``tick = (F - L + 1) / N``; snippet k starts at ``floor(k * tick + offset)``, with a random offset in
  ``[0, tick)`` in training (``rng`` given) and ``tick / 2`` at test (TSN's ``_get_test_indices``). So a
  snippet never runs past the last frame when ``F >= L``; shorter videos start every snippet at frame 0
  and ``short_video`` fills the rest (TSN repeats the last frame: ``"pad"``). ``shared_offset``: one
  random offset for every segment (U2S, paper 003 Sec. IV-B: "the frames are sampled at the same
  position in each subsection"), so the snippets are evenly spaced. int32[num_segments * L]."""
  _check(num_frames)
  tick = max(num_frames - frames_per_segment + 1, 1) / num_segments
  offset = rng.random(1 if shared_offset else num_segments) * tick if rng is not None else tick / 2
  first = np.floor(np.arange(num_segments) * tick + offset).astype(int)
  indices = (first[:, None] + np.arange(frames_per_segment)[None]).reshape(-1)
  return _fit(indices, num_frames, short_video)


@dataclasses.dataclass(frozen=True)
class TemporalSampler:
  """``train(num_frames, rng) -> int32[L]``, ``test(num_frames) -> int32[K, L]`` and ``num_frames`` = L,
  the frames of one view (the model's input length; the trainer reads it, so a new sampler needs no
  trainer edit).

  ``train_clips(num_frames) -> int32[K, L]``, when set, is a fixed set of training clips per video:
  the pipeline then makes every clip of every video one example of an epoch (``pipeline.clip_items``)
  and gives the sampler ``at_position(num_frames, position) -> int32[L]``, the clip of the example at
  that stream position; ``train`` (one of the clips at random) serves callers without a position."""
  train: Callable[[int, np.random.Generator], np.ndarray]
  test: Callable[[int], np.ndarray]
  num_frames: int
  train_clips: Callable[[int], np.ndarray] | None = None
  at_position: Callable[[int, int], np.ndarray] | None = None


TEMPORAL_SAMPLERS: Registry[Callable[..., TemporalSampler]] = Registry("input.sampler")


def _dense_test(clip_len: int, stride: int, num_test_clips: int, short_video: str) -> Callable[[int], np.ndarray]:
  """``num_test_clips`` evenly spaced clips (0: every non-overlapping clip)."""
  if num_test_clips == 0:
    return lambda n: non_overlapping_clips(n, clip_len, stride, short_video)
  return lambda n: test_dense_clips(n, clip_len, stride, num_test_clips, short_video)


@TEMPORAL_SAMPLERS.register("dense")
def _dense(clip_len: int, stride: int = 1, num_test_clips: int = 10, short_video: str = "loop",
           **unused) -> TemporalSampler:
  """Dense clips: random clip in training, ``num_test_clips`` evenly spaced clips at test
  (``num_test_clips=0`` means every non-overlapping clip)."""
  del unused
  return TemporalSampler(lambda n, rng: random_dense_clip(n, clip_len, stride, rng, short_video),
                         _dense_test(clip_len, stride, num_test_clips, short_video), num_frames=clip_len)


@TEMPORAL_SAMPLERS.register("non_overlapping")
def _non_overlapping(clip_len: int, stride: int = 1, num_test_clips: int = 10, short_video: str = "loop",
                     **unused) -> TemporalSampler:
  """SGN's training clips (paper 000, Sec. IV-B: "Each video is split into 16-frame length video clips
  without overlapping"; Sec. IV-I: the splits "augment the dataset from 2,326 videos into 9,127
  clips"): the fixed set ``non_overlapping_clips`` of every video, each clip one example per epoch.
  Test as ``dense``."""
  del unused
  clips = lambda n: non_overlapping_clips(n, clip_len, stride, short_video)

  def train(n: int, rng: np.random.Generator) -> np.ndarray:
    options = clips(n)
    return options[rng.integers(len(options))]

  return TemporalSampler(train, _dense_test(clip_len, stride, num_test_clips, short_video),
                         num_frames=clip_len, train_clips=clips)


@TEMPORAL_SAMPLERS.register("sliding")
def _sliding(clip_len: int, stride: int = 1, test_clip_stride: int = 8, short_video: str = "pad",
             **unused) -> TemporalSampler:
  """JointLSTM (paper 001, Sec. 3.5): a random clip in training, a clip at every
  ``test_clip_stride``-th start at test (``sliding_clips``)."""
  del unused
  return TemporalSampler(lambda n, rng: random_dense_clip(n, clip_len, stride, rng, short_video),
                         lambda n: sliding_clips(n, clip_len, stride, test_clip_stride, short_video),
                         num_frames=clip_len)


@TEMPORAL_SAMPLERS.register("segments")
def _segments(num_segments: int, frames_per_segment: int = 1, short_video: str = "loop",
              num_test_segments: int = 0, **unused) -> TemporalSampler:
  """TSN segments: random offset per segment in training, the centres of ``num_test_segments``
  segments at test (one view; 0 = ``num_segments``; ATW tests on 80 uniformly sampled snippets)."""
  del unused
  test_segments = num_test_segments or num_segments
  return TemporalSampler(
      lambda n, rng: segments(n, num_segments, rng, frames_per_segment, short_video),
      lambda n: segments(n, test_segments, None, frames_per_segment, short_video)[None],
      num_frames=num_segments * frames_per_segment)


@TEMPORAL_SAMPLERS.register("segments_shared")
def _segments_shared(num_segments: int, frames_per_segment: int = 1, short_video: str = "loop",
                     **unused) -> TemporalSampler:
  """U2S's segments (paper 003 Sec. IV-B): the same random position in every segment in training (the
  frame spacing, i.e. "the movement rate between adjacent frames", is kept), the centres at test."""
  del unused
  return TemporalSampler(
      lambda n, rng: segments(n, num_segments, rng, frames_per_segment, short_video, shared_offset=True),
      lambda n: segments(n, num_segments, None, frames_per_segment, short_video)[None],
      num_frames=num_segments * frames_per_segment)


def clip_pair(num_frames: int, clip_len: int, stride: int, offset: int, start: int,
              short_video: str = "loop") -> np.ndarray:
  """FstCN's clip pair (Sec. 2.2): the clip frames ``start + j * stride`` (j < clip_len) followed by
  their difference partners ``start + j * stride + offset`` (V^diff = |V(t) - V(t + d_t)|, Eq. 4, with
  the same index set). int32[2 * clip_len]."""
  _check(num_frames)
  clip = start + stride * np.arange(clip_len)
  return _fit(np.concatenate([clip, clip + offset]), num_frames, short_video)


def clip_pair_span(clip_len: int, stride: int, offset: int) -> int:
  """Frames a clip pair covers: (l_t - 1) s_t + d_t + 1 (30 for FstCN's l_t = 5, s_t = 5, d_t = 9)."""
  return clip_span(clip_len, stride) + offset


@TEMPORAL_SAMPLERS.register("clip_pair")
def _clip_pair(clip_len: int, stride: int = 5, diff_offset: int = 9, num_test_clips: int = 5,
               short_video: str = "loop", **unused) -> TemporalSampler:
  """FstCN clip pairs: a uniformly random start in training; ``num_test_clips`` pairs at test, their
  starts at the centres of equal bins over the valid starts (the ``dense`` test rule)."""
  del unused
  if diff_offset < 1 or num_test_clips < 1:
    raise ValueError(f"clip_pair needs diff_offset >= 1 and num_test_clips >= 1, got {diff_offset}, "
                     f"{num_test_clips}")
  span = clip_pair_span(clip_len, stride, diff_offset)

  def train(n: int, rng: np.random.Generator) -> np.ndarray:
    return clip_pair(n, clip_len, stride, diff_offset, int(rng.integers(0, max(n - span, 0) + 1)),
                     short_video)

  def test(n: int) -> np.ndarray:
    starts = bin_centre_starts(max(n - span, 0), num_test_clips)
    return np.stack([clip_pair(n, clip_len, stride, diff_offset, s, short_video) for s in starts])

  return TemporalSampler(train, test, num_frames=2 * clip_len)


# ---------------------------------------------------------------------------------------------------
# Spatial test views: (y, x, flip) crop positions.

SPATIAL_SCHEMES = ("center", "three", "five", "nine")


def spatial_views(height: int, width: int, crop: int, scheme: str = "center",
                  flip: bool = False) -> np.ndarray:
  """Crop positions for test views: int32[V, 3] rows (y, x, flip).

  ``center``: one centre crop; ``three``: three crops along the long side (start, centre, end;
  PySlowFast's 3-crop); ``five``: four corners + centre; ``nine``: a 3x3 grid (FstCN). ``flip`` adds
  the mirrored copy of each (``five`` + flip = TSN's 10 crops).
  """
  if crop > min(height, width):
    raise UserError(f"crop {crop} is larger than the frame {height}x{width}: raise input.resize")
  ys, xs = (0, (height - crop) // 2, height - crop), (0, (width - crop) // 2, width - crop)
  if scheme == "center":
    pos = [(ys[1], xs[1])]
  elif scheme == "three":
    pos = [(y, xs[1]) for y in ys] if height > width else [(ys[1], x) for x in xs]
  elif scheme == "five":
    pos = [(ys[0], xs[0]), (ys[0], xs[2]), (ys[2], xs[0]), (ys[2], xs[2]), (ys[1], xs[1])]
  elif scheme == "nine":
    pos = [(y, x) for y in ys for x in xs]
  else:
    raise UserError(f"Unknown spatial scheme {scheme!r}; use one of {SPATIAL_SCHEMES}")
  flips = (0, 1) if flip else (0,)
  return np.array([(y, x, f) for f in flips for (y, x) in pos], np.int32)
