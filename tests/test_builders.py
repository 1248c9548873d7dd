"""Real-dataset builders and the prepare command, on tiny fixture datasets.

Fixtures (tests/fixtures_video.py) are real containers/codecs laid out like each dataset,
with corrupt, truncated, empty and missing videos among them. Each dataset is prepared
once (a few seconds on 2 cores in total) and read back by index with as_data_source.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

sys.path.insert(0, os.path.dirname(__file__))
import fixtures_video as fx  # noqa: E402  pylint: disable=g-import-not-at-top

from vidrec.data import prepare  # noqa: E402
from vidrec.data.builders import BUILDERS  # noqa: E402
from vidrec.data.builders import common  # noqa: E402
from vidrec.data.builders import pool  # noqa: E402
from vidrec.data.builders import ssv2 as ssv2_lib  # noqa: E402
from vidrec.data.builders import video_folder as vf_lib  # noqa: E402


def _run_prepare(capsys, *argv: str) -> dict:
  assert prepare.main(list(argv)) == 0
  out = capsys.readouterr().out.strip().splitlines()
  return json.loads(out[-1])


def _read(builder, split: str) -> dict[str, dict]:
  """video_id -> decoded example (video stacked to uint8 T,H,W,3)."""
  source = builder.as_data_source(split)
  out = {}
  for i in range(len(source)):
    ex = dict(source[i])
    ex["video"] = np.stack(ex["video"])
    vid = ex["video_id"]
    out[vid.decode() if isinstance(vid, bytes) else vid] = ex
  return out


def _check_examples(examples: dict, expected_labels: dict, short_side: int) -> None:
  assert sorted(examples) == sorted(expected_labels)
  for vid, ex in examples.items():
    assert ex["label"] == expected_labels[vid], vid
    t, h, w, c = ex["video"].shape
    assert ex["video"].dtype == np.uint8 and c == 3
    assert min(h, w) == short_side, (vid, ex["video"].shape)
    assert t == ex["num_frames"] > 0


def _skipped_names(summary: dict) -> dict[str, str]:
  return {os.path.basename(s["file"]): s["reason"] for s in summary["skipped"]}


def _check_skips(summary: dict, expected: dict[str, str]) -> None:
  got = _skipped_names(summary)
  assert sorted(got) == sorted(expected), got
  for name, fragment in expected.items():
    assert fragment in got[name], (name, got[name])
  assert summary["num_skipped"] == len(expected)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
  return tmp_path_factory.mktemp("prepared")


def test_ucf101_split1(tmp_path, data_dir, capsys):
  expected = fx.make_ucf101(tmp_path / "ucf")
  summary = _run_prepare(capsys, "ucf101", "--manual_dir", str(tmp_path / "ucf"),
                         "--data_dir", str(data_dir), "--config", "split1",
                         "--short_side", "16", "--workers", "2")
  assert summary["dataset"] == "ucf101/split1_s16"
  assert summary["written"] == {"test": 2, "train": 3}
  _check_skips(summary, expected["skipped"])
  assert summary["num_classes"] == 3

  # Loading later needs no manual_dir; 32x40 frames are stored at 16x20.
  builder = BUILDERS["ucf101"](config="split1_s16", data_dir=data_dir,
                               file_format="array_record")
  assert builder.is_prepared()
  assert builder.info.features["label"].names == expected["classes"]
  assert builder.flip_label_map() == [0, 1, 2]
  assert builder.info.metadata["short_side"] == 16
  for split in ("train", "test"):
    examples = _read(builder, split)
    _check_examples(examples, expected[split], 16)
    for ex in examples.values():
      assert ex["video"].shape[1:] == (16, 20, 3)
      assert ex["fps"] == pytest.approx(25.0)
  assert os.path.exists(os.path.join(summary["data_dir"], common.REPORT_FILENAME))

  # Preparing again reuses the data and still reports what was skipped.
  again = _run_prepare(capsys, "ucf101", "--manual_dir", str(tmp_path / "ucf"),
                       "--data_dir", str(data_dir), "--short_side", "16")
  assert again["reused"] and again["written"] == summary["written"]
  assert again["skipped"] == summary["skipped"]

  # Split 2's lists are not in the fixture: one clear error naming file and command.
  assert prepare.main(["ucf101", "--manual_dir", str(tmp_path / "ucf"), "--data_dir",
                       str(data_dir), "--config", "split2"]) == 2
  err = capsys.readouterr().err
  assert "trainlist02.txt is missing" in err
  assert "python -m vidrec.data.prepare ucf101 --manual_dir M" in err


@pytest.mark.parametrize("dataset", sorted(BUILDERS))
def test_missing_manual_dir_is_one_clear_error(tmp_path, dataset):
  with pytest.raises(common.DataLayoutError) as e:
    prepare.prepare(dataset, str(tmp_path / "nope"), data_dir=str(tmp_path),
                    name="x" if dataset == "video_folder" else None)
  msg = str(e.value)
  assert "does not exist" in msg and "Where:" in msg and "Expected layout" in msg
  assert f"python -m vidrec.data.prepare {dataset}" in msg


def test_missing_label_files_are_clear_errors(tmp_path):
  (tmp_path / "empty").mkdir()
  (tmp_path / "empty" / "something.txt").write_text("x")
  for dataset, fragment in (("ucf101", "classInd.txt is missing"),
                            ("hmdb51", "testTrainMulti_7030_splits is missing"),
                            ("ssv2", "something-something-v2-labels.json is missing"),
                            ("penn_action", "labels is missing"),
                            ("video_folder", "no class folders")):
    with pytest.raises(common.DataLayoutError, match=fragment):
      prepare.prepare(dataset, str(tmp_path / "empty"), data_dir=str(tmp_path / "d"),
                      name="x" if dataset == "video_folder" else None)


def test_hmdb51_through_plain_tfds_api(tmp_path, data_dir):
  """cls(config, data_dir) + DownloadConfig(manual_dir): names filled in at preparation."""
  expected = fx.make_hmdb51(tmp_path / "hmdb")
  builder = BUILDERS["hmdb51"](config="split1_s24", data_dir=data_dir,
                               file_format="array_record", workers=1)
  assert builder.info.features["label"].num_classes is None  # unknown before preparing
  assert builder.flip_label_map() is None
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=str(tmp_path / "hmdb")))
  report = builder.prepare_report()
  _check_skips(report, {"Bad_corrupt_brush_hair.avi": "unreadable",
                        "Bad_empty_cartwheel.avi": "empty",
                        "Missing_wave_clip.avi": "not on disk"})
  assert report["written"] == {"train": 6, "test": 3}

  loaded = BUILDERS["hmdb51"](config="split1_s24", data_dir=data_dir)
  assert loaded.info.features["label"].names == expected["classes"]
  assert loaded.flip_label_map() == [0, 1, 2]
  for split in ("train", "test"):
    examples = _read(loaded, split)
    _check_examples(examples, expected[split], 24)
    assert all(ex["fps"] == pytest.approx(30.0) for ex in examples.values())


def test_ssv2(tmp_path, data_dir, capsys):
  expected = fx.make_ssv2(tmp_path / "ssv2")
  summary = _run_prepare(capsys, "ssv2", "--manual_dir", str(tmp_path / "ssv2"),
                         "--data_dir", str(data_dir), "--short_side", "24", "--workers", "1")
  assert summary["written"] == {"train": 5, "validation": 2}  # no test split (no labels)
  _check_skips(summary, {"106.webm": "unreadable", "107.webm": "not on disk",
                         "108.webm": "unknown template", "203.webm": "truncated"})
  builder = BUILDERS["ssv2"](config="default_s24", data_dir=data_dir)
  assert builder.info.features["label"].names == expected["classes"]
  assert builder.flip_label_map() == expected["flip"]
  for split in ("train", "validation"):
    examples = _read(builder, split)
    _check_examples(examples, expected[split], 24)
    assert all(ex["fps"] == pytest.approx(12.0) for ex in examples.values())
    assert all(ex["num_frames"] == 8 for ex in examples.values())


def test_ssv2_flip_rule():
  assert ssv2_lib.swap_left_right("Pushing something from left to right") == \
      "Pushing something from right to left"
  assert ssv2_lib.swap_left_right("Putting something upright") == "Putting something upright"
  templates = ["Turning the camera left while filming [something]",
               "Turning the camera right while filming something",
               "Moving [something] and [something] closer to each other",
               "Pushing something from left to right"]
  assert ssv2_lib.flip_map_from_templates(templates) == [1, 0, 2, 3]


def test_penn_action(tmp_path, data_dir, capsys):
  expected = fx.make_penn_action(tmp_path / "penn")
  summary = _run_prepare(capsys, "penn_action", "--manual_dir", str(tmp_path / "penn"),
                         "--data_dir", str(data_dir), "--short_side", "24", "--workers", "1")
  assert summary["written"] == {"train": 3, "test": 2}
  _check_skips(summary, expected["skipped"])
  builder = BUILDERS["penn_action"](config="default_s24", data_dir=data_dir)
  assert builder.info.features["label"].names == expected["classes"]
  for split in ("train", "test"):
    examples = _read(builder, split)
    _check_examples(examples, {k: v[0] for k, v in expected[split].items()}, 24)
    for vid, ex in examples.items():
      assert ex["video"].shape == (expected[split][vid][1], 24, 32, 3)  # 36x48 -> 24x32


def test_video_folder_hashed_split(tmp_path, data_dir, capsys):
  expected = fx.make_video_folder_flat(tmp_path / "flat")
  summary = _run_prepare(capsys, "video_folder", "--name", "my_clips", "--manual_dir",
                         str(tmp_path / "flat"), "--data_dir", str(data_dir),
                         "--short_side", "16", "--train_ratio", "0.6", "--workers", "2")
  _check_skips(summary, {"empty.mp4": "empty", "truncated.mp4": "",
                         "notes.txt": "extension"})
  assert summary["dataset"] == "video_folder/my_clips"
  split_of = {v: vf_lib.hashed_split(v, 0.6) for v in expected["good"]}
  want = {s: sum(1 for x in split_of.values() if x == s) for s in ("train", "test")}
  assert summary["written"] == {s: n for s, n in want.items() if n}

  # Later: loading needs no manual_dir; the record keeps the settings. (tfds.builder
  # gives a read-only builder for a custom NAME: same data, no flip_label_map.)
  read_only = tfds.builder("video_folder/my_clips", data_dir=str(data_dir))
  assert read_only.info.features["label"].names == expected["classes"]
  assert read_only.info.splits["train"].num_examples == summary["written"]["train"]
  builder = BUILDERS["video_folder"](config="my_clips", data_dir=data_dir)
  assert builder.info.features["label"].names == expected["classes"]
  assert builder.flip_label_map() == [0, 1]
  record = builder.record()
  assert record["layout"] == "hashed" and record["train_ratio"] == 0.6
  assert record["short_side"] == 16 and record["class_names"] == expected["classes"]
  for split, n in summary["written"].items():
    examples = _read(builder, split)
    labels = {v: expected["classes"].index(v.split("/")[0])
              for v, s in split_of.items() if s == split}
    _check_examples(examples, labels, 16)
  with pytest.raises(ValueError, match="video_folder/NAME"):
    BUILDERS["video_folder"](config=None, data_dir=data_dir)


def test_video_folder_split_folders_upscale(tmp_path, data_dir, capsys):
  expected = fx.make_video_folder_splits(tmp_path / "splits")
  summary = _run_prepare(capsys, "video_folder", "--name", "folders", "--manual_dir",
                         str(tmp_path / "splits"), "--data_dir", str(data_dir),
                         "--short_side", "48", "--workers", "1")
  assert summary["written"] == {"train": 6, "validation": 3}
  _check_skips(summary, {"broken.mp4": ""})
  builder = BUILDERS["video_folder"](config="folders", data_dir=data_dir)
  for split in ("train", "validation"):
    examples = _read(builder, split)
    _check_examples(examples, {v: expected["classes"].index(v.split("/")[0])
                               for v in expected[split]}, 48)
    assert all(ex["video"].shape[1:] == (48, 60, 3) for ex in examples.values())


def test_split_whose_videos_are_all_bad_is_dropped_not_fatal(tmp_path, data_dir, capsys):
  fx.write_video(tmp_path / "m/train/a/x.mp4", codec="libx264")
  fx.write_video(tmp_path / "m/train/b/y.avi", codec="mpeg4")
  fx.write_corrupt(tmp_path / "m/test/a/bad.mp4")
  fx.write_empty(tmp_path / "m/test/b/empty.avi")
  summary = _run_prepare(capsys, "video_folder", "--name", "half_broken", "--manual_dir",
                         str(tmp_path / "m"), "--data_dir", str(data_dir), "--short_side",
                         "16", "--workers", "2")
  assert summary["written"] == {"train": 2} and summary["empty_splits"] == ["test"]
  _check_skips(summary, {"bad.mp4": "unreadable", "empty.avi": "empty"})


def _maybe_die(x: int) -> int:
  if x == 3:
    os._exit(7)  # a decoder segfault, as far as the pool can tell
  return x * x


def test_parallel_map_is_ordered_and_survives_a_dying_worker():
  items = list(range(8))
  out = list(pool.ordered_parallel_map(_maybe_die, items, workers=2,
                                         on_crash=lambda x: -1, max_in_flight=3))
  assert [i for i, _ in out] == items
  assert [r for _, r in out] == [0, 1, 4, -1, 16, 25, 36, 49]


def test_config_names():
  assert prepare.resolve_config("ucf101", None, None) == "split1"
  assert prepare.resolve_config("ucf101", "split2", 256) == "split2_s256"
  assert prepare.resolve_config("hmdb51", "split3_s160", None) == "split3_s160"
  assert prepare.resolve_config("ssv2", None, 128) == "default"
  assert prepare.resolve_config("ucf101", None, None, source="tfds") == "tfds_ucf101_1_256"
  b = BUILDERS["ucf101"](config="split3_s160", data_dir="/nonexistent/vidrec")
  assert b.builder_config.split_number == 3 and b.short_side == 160
  assert BUILDERS["ssv2"](config="default_s256", data_dir="/nonexistent/vidrec").short_side == 256


def test_ucf101_from_prepared_tfds_dataset(tmp_path, data_dir, capsys):
  """source='tfds': a TFDS ucf101/ucf101_1_256 (here a tiny fake one) -> our layout."""
  from tensorflow_datasets.video import ucf101 as tfds_ucf101  # pylint: disable=g-import-not-at-top

  labels = [3, 50, 100, 7]
  with tfds.core.registered.skip_registration():

    class FakeUcf101(tfds_ucf101.Ucf101):  # writes where the real one would
      name = "ucf101"

      def _split_generators(self, dl_manager):
        return {"train": self._gen(labels[:3]), "test": self._gen(labels[3:])}

      def _gen(self, split_labels):
        for i, label in enumerate(split_labels):
          video = np.repeat(fx.make_frames(5 + i, i, 256, 256)[..., :3], 1, axis=0)
          yield str(i), {"video": video, "label": label}

  tfds_dir = tmp_path / "tfds"
  FakeUcf101(config="ucf101_1_256", data_dir=str(tfds_dir)).download_and_prepare()
  summary = _run_prepare(capsys, "ucf101", "--source", "tfds", "--manual_dir", str(tfds_dir),
                         "--data_dir", str(data_dir), "--short_side", "16", "--workers", "1")
  assert summary["dataset"] == "ucf101/tfds_ucf101_1_256_s16"
  assert summary["written"] == {"test": 1, "train": 3} and summary["num_skipped"] == 0
  builder = BUILDERS["ucf101"](config="tfds_ucf101_1_256_s16", data_dir=data_dir)
  assert builder.info.features["label"].num_classes == 101
  examples = _read(builder, "train")
  assert sorted(ex["label"] for ex in examples.values()) == [3, 50, 100]
  assert all(ex["video"].shape[1:] == (16, 16, 3) for ex in examples.values())
  assert all(ex["fps"] == pytest.approx(25.0) for ex in examples.values())
