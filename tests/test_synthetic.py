"""Tests for the ``synthetic_actions`` renderer, builder and preview."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow_datasets as tfds

from vidrec.data import synthetic as S

RES = 32
T = 16


def _rng(seed: int) -> np.random.Generator:
  return np.random.default_rng(seed)


def test_class_names_and_groups():
  assert len(S.CLASS_NAMES) == S.NUM_CLASSES >= 12
  assert len(set(S.CLASS_NAMES)) == S.NUM_CLASSES
  assert S.CLASS_NAMES[0] == "Moving something from left to right"
  for group in S.CLASS_GROUPS.values():
    assert all(0 <= c < S.NUM_CLASSES for c in group)


@pytest.mark.parametrize("class_id", range(S.NUM_CLASSES))
def test_shapes_dtype_determinism(class_id):
  a = S.render_video(class_id, _rng(3), RES, T)
  b = S.render_video(class_id, _rng(3), RES, T)
  c = S.render_video(class_id, _rng(4), RES, T)
  assert a.shape == (T, RES, RES, 3) and a.dtype == np.uint8
  np.testing.assert_array_equal(a, b)
  assert not np.array_equal(a, c)
  assert a.std() > 5  # not blank
  assert np.abs(np.diff(a.astype(np.int16), axis=0)).mean() > 0  # it moves


@pytest.mark.parametrize("num_frames", [1, 2, 7, 33])
def test_any_length_and_resolution(num_frames):
  v = S.render_video(0, _rng(0), 24, num_frames)
  assert v.shape == (num_frames, 24, 24, 3)


def test_example_rng_is_per_example():
  a = S.example_rng(0, "train", 5).integers(1 << 30, size=4)
  np.testing.assert_array_equal(a, S.example_rng(0, "train", 5).integers(1 << 30, size=4))
  for other in (S.example_rng(1, "train", 5), S.example_rng(0, "test", 5),
                S.example_rng(0, "train", 6)):
    assert not np.array_equal(a, other.integers(1 << 30, size=4))


@pytest.mark.parametrize("class_id,partner", sorted(S.TIME_REVERSAL_PARTNERS.items()))
def test_time_reversal_partner(class_id, partner):
  for seed in range(3):
    v = S.render_video(class_id, _rng(seed), RES, T)
    w = S.render_video(partner, _rng(seed), RES, T)
    np.testing.assert_array_equal(v[::-1], w)


def test_time_reversal_semantics():
  """Reversed partners move in the named directions (actor centre, scale, opacity)."""
  rng = lambda: _rng(11)
  lr, rl = S.sample_scene(0, rng(), RES, T).actor, S.sample_scene(1, rng(), RES, T).actor
  assert lr.cx[-1] > lr.cx[0] and rl.cx[-1] < rl.cx[0]
  up, down = S.sample_scene(2, rng(), RES, T).actor, S.sample_scene(3, rng(), RES, T).actor
  assert up.cy[-1] < up.cy[0] and down.cy[-1] > down.cy[0]  # y grows downwards
  near, far = S.sample_scene(8, rng(), RES, T).actor, S.sample_scene(9, rng(), RES, T).actor
  assert near.radius[-1] > 2 * near.radius[0] and far.radius[-1] < 0.5 * far.radius[0]
  show, hide = S.sample_scene(10, rng(), RES, T).actor, S.sample_scene(11, rng(), RES, T).actor
  assert show.alpha[0] == 0 and show.alpha[-1] == 1
  assert hide.alpha[0] == 1 and hide.alpha[-1] == 0
  pretend = S.sample_scene(4, rng(), RES, T).actor
  assert abs(pretend.cx[-1] - pretend.cx[0]) < 1e-3 < pretend.cx.max() - pretend.cx[0] - 4


def test_break_vs_drop_share_the_fall():
  """Same draws: identical until impact, then the object breaks into pieces."""
  n = 40
  drop = S.sample_scene(6, _rng(2), RES, n)
  brk = S.sample_scene(7, _rng(2), RES, n)
  assert drop.actor.pieces is None
  split = np.abs(brk.actor.pieces).max(axis=(1, 2, 3)) > 0
  first = int(np.argmax(split))
  assert 0 < first < n - 1 and split[first:].all()
  np.testing.assert_array_equal(S.render_scene(drop)[:first], S.render_scene(brk)[:first])


def test_flip_label_map():
  fm = S.FLIP_LABEL_MAP
  assert sorted(fm) == list(range(S.NUM_CLASSES))
  assert all(fm[fm[c]] == c for c in range(S.NUM_CLASSES))  # involution
  swapped = {c for c in range(S.NUM_CLASSES) if fm[c] != c}
  names = S.CLASS_NAMES
  assert swapped == {c for c, n in enumerate(names) if "left" in n}
  for c in swapped:
    a, b = names[c], names[fm[c]]
    assert a.replace("left", "#").replace("right", "left").replace("#", "right") == b
  builder = S.SyntheticActions(config="tiny", data_dir="/nonexistent_unused")
  assert builder.flip_label_map() == list(fm)


@pytest.mark.parametrize("class_id", range(S.NUM_CLASSES))
def test_render_is_mirror_equivariant(class_id):
  """Rendering the mirrored scene is exactly the horizontally flipped video."""
  scene = S.sample_scene(class_id, _rng(class_id + 20), RES, T)
  np.testing.assert_array_equal(np.flip(S.render_scene(scene), axis=2),
                                S.render_scene(scene.mirrored()))


def test_flipped_left_to_right_is_right_to_left():
  for seed in range(3):
    lr = S.sample_scene(0, _rng(seed), RES, T)
    flipped = np.flip(S.render_scene(lr), axis=2)
    mirrored = lr.mirrored()
    np.testing.assert_array_equal(flipped, S.render_scene(mirrored))
    # The mirrored scene is a right-to-left scene: it moves the way class 1 does, and
    # played backwards it is a left-to-right scene again (the partner invariant).
    assert mirrored.actor.cx[-1] < mirrored.actor.cx[0]
    assert mirrored.reversed().actor.cx[-1] > mirrored.reversed().actor.cx[0]
  # Pretending right-to-left is literally pretending left-to-right flipped.
  np.testing.assert_array_equal(np.flip(S.render_video(4, _rng(5), RES, T), axis=2),
                                S.render_video(5, _rng(5), RES, T))


def test_partner_frames_have_same_statistics():
  """Per-frame pixel statistics of partners agree as sets: no single frame tells them apart."""
  def frame_stats(video):
    v = video.reshape(len(video), -1, 3).astype(np.float64)
    return sorted(map(tuple, np.round(np.concatenate([v.mean(1), v.std(1)], 1), 6)))
  for c, p in S.TIME_REVERSAL_PARTNERS.items():
    for seed in range(2):
      assert frame_stats(S.render_video(c, _rng(seed), RES, T)) == \
          frame_stats(S.render_video(p, _rng(seed), RES, T))


def test_build_tiny(tmp_path):
  builder = S.SyntheticActions(config="tiny", data_dir=str(tmp_path), file_format="array_record")
  builder.download_and_prepare()
  cfg = builder.builder_config
  info = builder.info
  assert info.features["label"].names == list(S.CLASS_NAMES)
  assert info.splits["train"].num_examples == cfg.num_train == 48
  assert info.splits["test"].num_examples == cfg.num_test == 24
  source = builder.as_data_source("train",
                                  deserialize_method=tfds.decode.DeserializeMethod.RAW_BYTES)
  assert len(source) == cfg.num_train and isinstance(source[0], bytes)
  # ArrayRecord has no .as_dataset() in this TFDS; the default data source decodes examples.
  decoded = builder.as_data_source("train")
  labels, ids = [], set()
  for i in range(len(decoded)):
    ex = decoded[i]
    video = np.asarray(ex["video"])  # the numpy decoder yields a list of frames
    assert video.dtype == np.uint8 and video.shape[1:] == (cfg.resolution, cfg.resolution, 3)
    assert cfg.min_frames <= len(video) <= cfg.max_frames
    assert ex["num_frames"] == len(video) and ex["fps"] == pytest.approx(S.FPS)
    labels.append(int(ex["label"]))
    ids.add(ex["video_id"].decode() if isinstance(ex["video_id"], bytes) else ex["video_id"])
  assert len(ids) == cfg.num_train and "train_000017" in ids
  assert np.bincount(labels, minlength=S.NUM_CLASSES).tolist() == [4] * S.NUM_CLASSES
  # The stored video equals the renderer output (up to JPEG loss).
  test = builder.as_data_source("test")
  ex = next(e for e in (test[i] for i in range(len(test)))
            if e["video_id"] in (b"test_000003", "test_000003"))
  ref = S.generate_example(cfg, "test", 3)
  assert int(ex["label"]) == ref["label"] == 3
  err = np.abs(np.asarray(ex["video"]).astype(np.int16) - ref["video"].astype(np.int16)).mean()
  assert err < 12


def test_preview_writes_files(tmp_path):
  from vidrec.tools import preview
  cfg = preview.builder_config("default", resolution=24, min_frames=6, max_frames=9)
  videos = preview.sample_videos(3, 2, cfg, 0)
  assert [v.shape[1:] for v in videos] == [(24, 24, 3)] * 2 and 6 <= len(videos[0]) <= 9
  preview.save_grid(videos, S.CLASS_NAMES[3], str(tmp_path / "g.png"), columns=4)
  preview.save_gif(videos, str(tmp_path / "g.gif"))
  assert (tmp_path / "g.png").stat().st_size > 0 and (tmp_path / "g.gif").stat().st_size > 0
