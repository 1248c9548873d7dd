"""Tests for the harder ``synthetic_actions/hard`` scenes (vidrec/data/synthetic_hard.py)."""
from __future__ import annotations

import dataclasses
import zlib

import numpy as np
import pytest

from vidrec.data import synthetic as S
from vidrec.data import synthetic_hard as H

RES = 32
T = 16
D = S.Difficulty()


def _rng(seed: int) -> np.random.Generator:
  return np.random.default_rng(seed)


def _swap_left_right(name: str) -> str:
  return name.replace("left", "#").replace("right", "left").replace("#", "right")


def test_class_tables():
  assert H.NUM_CLASSES == len(set(H.CLASS_NAMES)) == len(H.CLASS_SPECS) >= 24
  assert H.CLASS_NAMES[:S.NUM_CLASSES] == S.CLASS_NAMES  # the default classes keep their ids
  fm = H.FLIP_LABEL_MAP
  assert sorted(fm) == list(range(H.NUM_CLASSES))
  for c, name in enumerate(H.CLASS_NAMES):  # flip swaps exactly left and right in the name
    assert H.CLASS_NAMES[fm[c]] == _swap_left_right(name)
  for c, p in H.TIME_REVERSAL_PARTNERS.items():
    assert H.TIME_REVERSAL_PARTNERS[p] == c != p
    assert H.CLASS_SPECS[c][0] == H.CLASS_SPECS[p][0]  # same motion kind: same random draws
  for group in H.CLASS_GROUPS.values():
    assert all(0 <= c < H.NUM_CLASSES for c in group)


@pytest.mark.parametrize("class_id", range(H.NUM_CLASSES))
def test_deterministic_per_seed_and_mirror_equivariant(class_id):
  scene = H.sample_scene(class_id, _rng(class_id), RES, T, D)
  video = H.render_scene(scene)
  assert video.shape == (T, RES, RES, 3) and video.dtype == np.uint8
  np.testing.assert_array_equal(video, H.render_video(class_id, _rng(class_id), RES, T, D))
  assert not np.array_equal(video, H.render_video(class_id, _rng(class_id + 100), RES, T, D))
  # A flipped video of class c is the mirrored scene, which is how class flip[c] is drawn.
  np.testing.assert_array_equal(np.flip(video, axis=2), H.render_scene(scene.mirrored()))


def test_flipped_video_is_a_video_of_the_flipped_class():
  """Classes defined as mirrored specs render as the exact flip of their partner's draws."""
  for c, (kind, reverse, mirror, variant) in enumerate(H.CLASS_SPECS):
    if mirror:
      partner = H.FLIP_LABEL_MAP[c]
      assert H.CLASS_SPECS[partner] == (kind, reverse, False, variant)
      np.testing.assert_array_equal(np.flip(H.render_video(partner, _rng(7), RES, T, D), axis=2),
                                    H.render_video(c, _rng(7), RES, T, D))


@pytest.mark.parametrize("class_id,partner", sorted(H.TIME_REVERSAL_PARTNERS.items()))
def test_time_reversal_partner(class_id, partner):
  for seed in range(2):
    np.testing.assert_array_equal(H.render_video(class_id, _rng(seed), RES, T, D)[::-1],
                                  H.render_video(partner, _rng(seed), RES, T, D))


def _phase_shift(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """(dy, dx) with ``b[y, x] ~ a[y + dy, x + dx]``: the content moved by (-dy, -dx), i.e. a camera
  moved by (dy, dx) (Hann-windowed phase correlation, integer pixels)."""
  win = np.outer(np.hanning(a.shape[0]), np.hanning(a.shape[1]))
  fa, fb = np.fft.fft2((a - a.mean()) * win), np.fft.fft2((b - b.mean()) * win)
  r = np.fft.ifft2(fa * np.conj(fb) / (np.abs(fa * np.conj(fb)) + 1e-9)).real
  peak = np.array(np.unravel_index(np.argmax(r), r.shape))
  return np.where(peak > np.array(r.shape) // 2, peak - np.array(r.shape), peak)


def _background(scene: H.HardScene) -> np.ndarray:
  empty = dataclasses.replace(scene, objects=[], noise=np.zeros_like(scene.noise))
  return H.render_scene(empty).astype(np.float64).mean(-1)


def test_camera_moves_the_background():
  """Phase correlation between consecutive background frames finds the camera's pan."""
  res, n = 64, 12
  moving = dataclasses.replace(D, zoom=0.0, shake=0.0, pan=0.5)
  shifts = []
  for seed in range(3):
    scene = H.sample_scene(0, _rng(seed), res, n, moving)
    bg = _background(scene)
    step = [_phase_shift(bg[i], bg[i + 1]) for i in range(n - 1)]
    shifts += [np.hypot(*s) for s in step]
    # The summed frame-to-frame shifts match the camera's travel (in image pixels).
    cam = scene.camera
    travel = np.array([cam.y[-1] - cam.y[0], cam.x[-1] - cam.x[0]]) * cam.zoom[0]
    np.testing.assert_allclose(np.sum(step, axis=0), travel, atol=n / 2 + 1)
  assert np.mean(shifts) > 0.5
  still = dataclasses.replace(D, zoom=0.0, shake=0.0, pan=0.0)
  bg = _background(H.sample_scene(0, _rng(0), res, n, still))
  np.testing.assert_array_equal(bg[0], bg[-1])  # no camera motion: a static background
  shaky = dataclasses.replace(still, shake=0.05)
  bg = _background(H.sample_scene(0, _rng(0), res, n, shaky))
  assert np.mean([np.hypot(*_phase_shift(bg[i], bg[i + 1])) for i in range(n - 1)]) > 1


def test_late_classes_agree_until_late():
  """Turn up/down and drop/break/roll share every frame before the turn or the impact."""
  n = 40
  up, down = (H.render_video(c, _rng(3), RES, n, D) for c in (12, 13))
  same = [np.array_equal(u, d) for u, d in zip(up, down)]
  first = same.index(False)
  assert n * 0.5 <= first < n and all(same[:first])
  drop, brk, roll = (H.render_video(c, _rng(4), RES, n, D) for c in (6, 7, 22))
  first = [np.array_equal(a, b) for a, b in zip(drop, brk)].index(False)
  np.testing.assert_array_equal(drop[:first], roll[:first])
  assert not np.array_equal(drop, roll)


def test_quick_and_shake_differ_only_in_speed():
  n = 48
  for slow_id, quick_id in ((0, 16), (20, 21)):
    slow = H.sample_scene(slow_id, _rng(5), RES, n, D).actor
    quick = H.sample_scene(quick_id, _rng(5), RES, n, D).actor
    step = lambda a: np.abs(np.diff(a.cx)).max()
    assert step(quick) > 1.5 * step(slow)
  slow, quick = (H.sample_scene(c, _rng(6), RES, n, D).actor for c in (0, 16))
  assert slow.cx[-1] > slow.cx[0] and quick.cx[-1] > quick.cx[0]  # both go left to right
  assert np.abs(np.diff(quick.cx))[:2].max() < 1e-3 and np.abs(np.diff(quick.cx))[-2:].max() < 1e-3


def test_actor_is_small_among_distractors():
  scene = H.sample_scene(0, _rng(0), 64, T, D)
  actor = scene.actor
  assert actor.outline > 0 and actor.alpha.min() == 1.0
  movers = [o for o in scene.objects if o is not actor and np.ptp(o.cx) + np.ptp(o.cy) > 0]
  assert D.num_distractors[0] <= len(movers) <= D.num_distractors[1]
  assert all(o.outline == 0 for o in scene.objects if o is not actor)
  assert actor.radius.max() <= D.actor_size[1] * 64 + 1e-4


def test_builder_hard_tiny(tmp_path):
  from vidrec.data import datasets
  builder = datasets.load_builder("synthetic_actions/hard_tiny", str(tmp_path))
  assert builder.info.features["label"].names == list(H.CLASS_NAMES)
  assert builder.flip_label_map() == list(H.FLIP_LABEL_MAP)
  cfg = builder.builder_config
  test = builder.as_data_source("test")
  ex = next(e for e in (test[i] for i in range(len(test)))
            if e["video_id"] in (b"test_000005", "test_000005"))
  ref = S.generate_example(cfg, "test", 5)
  assert int(ex["label"]) == ref["label"] == 5
  err = np.abs(np.asarray(ex["video"]).astype(np.int16) - ref["video"].astype(np.int16)).mean()
  assert err < 12
  # The default config keeps its classes.
  assert S.SyntheticActions(config="tiny", data_dir=str(tmp_path)).flip_label_map() == \
      list(S.FLIP_LABEL_MAP)


def test_preview_renders_the_hard_config(tmp_path):
  from vidrec.tools import preview
  cfg = preview.builder_config("hard", resolution=24, min_frames=6, max_frames=8)
  assert cfg.hard == D and S.class_names(cfg) == H.CLASS_NAMES
  videos = preview.sample_videos(21, 2, cfg, 0)
  rng = np.random.default_rng(np.random.SeedSequence([0, zlib.crc32(b"preview"), 21, 0]))
  np.testing.assert_array_equal(videos[0], H.render_video(21, rng, 24, int(rng.integers(6, 9)), D))
  preview.save_grid(videos, H.CLASS_NAMES[21], str(tmp_path / "g.png"), columns=3)
  assert (tmp_path / "g.png").stat().st_size > 0
  with pytest.raises(Exception, match="hard"):
    preview.builder_config("harder")


def test_warped_flow_removes_the_camera_motion():
  """``hard_flow``'s reason to exist: under the moving camera the TV-L1 flow is dominated by the
  background's motion, which the warped flow (camera homography removed) cancels."""
  pytest.importorskip("cv2")
  cfg = S.SyntheticActionsConfig(name="hard_flow_small", resolution=32, min_frames=10, max_frames=10,
                                 num_train=3, num_test=1, hard=D, flow="tvl1", warped_flow=True)
  for i in range(3):
    ex = S.generate_example(cfg, "train", i)
    magnitude = {k: np.abs(np.stack([ex[f"{k}_x"], ex[f"{k}_y"]]).astype(np.float32) - 128).mean()
                 for k in ("flow", "warped_flow")}
    assert magnitude["warped_flow"] < 0.5 * magnitude["flow"], magnitude
