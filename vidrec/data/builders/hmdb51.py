"""HMDB51 from the original files in ``manual_dir``.

Registered as ``vidrec_hmdb51``. Configs ``split1``..``split3`` (the official 70/30
splits, S=128), ``split1_s256``.. (S=256, any ``_s<S>`` works).
"""
from __future__ import annotations

import dataclasses
import os
import re
from typing import Iterable, Mapping, Sequence

from etils import epath

from vidrec.data.builders import common
from vidrec.data.builders import decode
from vidrec.data.builders import listing

_SPLITS_DIRS = ("testTrainMulti_7030_splits", "test_train_splits/testTrainMulti_7030_splits",
                "splits/testTrainMulti_7030_splits")
_VIDEO_ROOTS = ("", "hmdb51_org", "videos")

_INSTRUCTIONS = """\
Where: https://serre-lab.clps.brown.edu/resource/hmdb-a-large-human-motion-database/
("hmdb51_org.rar", 2 GB, which holds one .rar per class, and "test_train_splits.rar").
Nothing is downloaded by vidrec. Expected layout of the manual_dir M (unrar the outer
archive, then every per-class archive, into M; unrar the splits into M):
  M/<class>/<video>.avi                                   51 class folders, 6,766 clips
  M/testTrainMulti_7030_splits/<class>_test_split{1,2,3}.txt
      each line "<video>.avi <0|1|2>": 1 = train, 2 = test, 0 = unused in that split
Command:
  python -m vidrec.data.prepare hmdb51 --manual_dir M --config split1 [--data_dir D] [--short_side 128]
"""


@dataclasses.dataclass(eq=False)
class Hmdb51Config(common.VideoBuilderConfig):
  """HMDB51 config. ``split_number``: 1, 2 or 3."""

  split_number: int = 1


class Hmdb51(common.VideoBuilder):
  """HMDB51 (51 classes), official splits 1-3 (3,570 train / 1,530 test clips each)."""

  name = "vidrec_hmdb51"
  BUILDER_CONFIGS = common.with_short_sides([
      Hmdb51Config(name=f"split{n}", split_number=n,
                   description=f"HMDB51 official split {n}.") for n in (1, 2, 3)])
  MANUAL_DOWNLOAD_INSTRUCTIONS = _INSTRUCTIONS
  DATASET_TITLE = "HMDB51"
  HOMEPAGE = "https://serre-lab.clps.brown.edu/resource/hmdb-a-large-human-motion-database/"
  CITATION = """@inproceedings{kuehne2011hmdb,
  title={{HMDB}: a large video database for human motion recognition},
  author={Kuehne, H. and Jhuang, H. and Garrote, E. and Poggio, T. and Serre, T.},
  booktitle={ICCV}, year={2011}}"""

  def _split_files(self, manual_dir: epath.Path) -> dict[str, epath.Path]:
    splits_dir = listing.first_existing(manual_dir, _SPLITS_DIRS)
    if splits_dir is None:
      raise self.layout_error(
          f"split folder {os.fspath(manual_dir / _SPLITS_DIRS[0])} is missing.")
    n = self.builder_config.split_number
    pattern = re.compile(rf"(.+)_test_split{n}\.txt$")
    files = {}
    for p in splits_dir.iterdir():
      m = pattern.match(p.name)
      if m:
        files[m.group(1)] = p
    if not files:
      raise self.layout_error(f"no <class>_test_split{n}.txt files in {os.fspath(splits_dir)}.")
    return files

  def _read_class_names(self, manual_dir: epath.Path) -> list[str]:
    return sorted(self._split_files(manual_dir))

  def _list_videos(self, manual_dir: epath.Path, class_names: Sequence[str]
                   ) -> Mapping[str, Iterable[decode.VideoTask]]:
    files = self._split_files(manual_dir)
    root = next((r for r in (manual_dir / d if d else manual_dir for d in _VIDEO_ROOTS)
                 if any((r / c).is_dir() for c in class_names)), None)
    if root is None:
      raise self.layout_error(f"no class folders (e.g. {os.fspath(manual_dir / class_names[0])})"
                              f" found in {os.fspath(manual_dir)}.")
    finder = listing.CaseInsensitiveFinder(root)
    out: dict[str, list[decode.VideoTask]] = {"train": [], "test": []}
    for label, cls in enumerate(class_names):
      for line in listing.read_lines(files[cls]):
        parts = line.split()
        if len(parts) < 2 or parts[-1] not in ("0", "1", "2"):
          self._skip("?", f"{os.fspath(files[cls])}: {line!r}", "malformed split line")
          continue
        if parts[-1] == "0":
          continue
        split = "train" if parts[-1] == "1" else "test"
        name = " ".join(parts[:-1])
        rel = f"{cls}/{name}"
        video = finder.find(rel)
        if video is None:
          self._skip(split, os.fspath(root / rel), f"listed in {files[cls].name} but not on disk")
          continue
        out[split].append(self._task(os.fspath(video), label, os.path.splitext(rel)[0]))
    return out
