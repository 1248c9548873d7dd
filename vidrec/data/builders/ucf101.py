"""UCF101 from the original files in ``manual_dir`` (or from a prepared TFDS ``ucf101``).

Registered as ``vidrec_ucf101`` (TFDS itself owns the name ``ucf101``). Configs:
``split1``..``split3`` (official train/test lists, S=128), ``split1_s256``.. (S=256, any
``_s<S>`` works) and ``tfds_ucf101_1_256``, ``tfds_ucf101_1``..``_3``: conversions of a
TFDS ``ucf101`` dataset already prepared under the data_dir given as ``manual_dir``.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Iterable, Iterator, Mapping, Sequence

from etils import epath
import tensorflow_datasets as tfds

from vidrec.data.builders import common
from vidrec.data.builders import decode
from vidrec.data.builders import listing

UCF101_FPS = 25.0  # every UCF101 clip is 25 fps; TFDS's ucf101 does not store fps

_INSTRUCTIONS = """\
Where: https://www.crcv.ucf.edu/data/UCF101.php ("UCF101.rar", 6.5 GB, and
"UCF101TrainTestSplits-RecognitionTask.zip"). Nothing is downloaded by vidrec.
Expected layout of the manual_dir M (unrar / unzip both into M):
  M/UCF-101/<Class>/v_<Class>_gXX_cYY.avi          13,320 videos, 101 class folders
  M/ucfTrainTestlist/classInd.txt                  "1 ApplyEyeMakeup" ...
  M/ucfTrainTestlist/trainlist0N.txt, testlist0N.txt   N = 1, 2, 3
Command:
  python -m vidrec.data.prepare ucf101 --manual_dir M --config split1 [--data_dir D] [--short_side 128]
Alternatively, to convert a TFDS `ucf101` dataset you already prepared under TFDS data_dir T:
  python -m vidrec.data.prepare ucf101 --source tfds --manual_dir T --config ucf101_1_256
"""


@dataclasses.dataclass(eq=False)
class Ucf101Config(common.VideoBuilderConfig):
  """UCF101 config: which official split, and where the videos come from.

  Attributes:
    split_number: 1, 2 or 3 (the official train/test lists).
    source: 'manual' (the original .avi files) or 'tfds' (a prepared TFDS ``ucf101``).
    tfds_config: the TFDS ``ucf101`` config to convert when ``source == 'tfds'``.
  """

  split_number: int = 1
  source: str = "manual"
  tfds_config: str = ""


_BASE_CONFIGS = [
    Ucf101Config(name=f"split{n}", split_number=n,
                 description=f"UCF101 official train/test split {n}.") for n in (1, 2, 3)
] + [
    Ucf101Config(name=f"tfds_{c}", split_number=int(c.split("_")[1]), source="tfds",
                 tfds_config=c,
                 description=f"UCF101 converted from a prepared TFDS ucf101/{c}.")
    for c in ("ucf101_1_256", "ucf101_1", "ucf101_2", "ucf101_3")
]


class Ucf101(common.VideoBuilder):
  """UCF101 (101 classes, 13,320 clips), official splits 1-3."""

  name = "vidrec_ucf101"
  BUILDER_CONFIGS = common.with_short_sides(_BASE_CONFIGS)
  MANUAL_DOWNLOAD_INSTRUCTIONS = _INSTRUCTIONS
  DATASET_TITLE = "UCF101"
  HOMEPAGE = "https://www.crcv.ucf.edu/data/UCF101.php"
  CITATION = """@article{soomro2012ucf101,
  title={{UCF101}: A dataset of 101 human actions classes from videos in the wild},
  author={Soomro, Khurram and Zamir, Amir Roshan and Shah, Mubarak},
  journal={arXiv preprint arXiv:1212.0402}, year={2012}}"""

  # ---- original files ----------------------------------------------------------------

  def _read_class_names(self, manual_dir: epath.Path) -> list[str]:
    if self.builder_config.source == "tfds":
      return list(self._tfds_source(manual_dir).info.features["label"].names)
    path = manual_dir / "ucfTrainTestlist" / "classInd.txt"
    if not path.exists():
      raise self.layout_error(f"class list {os.fspath(path)} is missing.")
    by_index = {}
    for line in listing.read_lines(path):
      parts = line.split()
      if len(parts) != 2 or not parts[0].isdigit():
        raise self.layout_error(f"{os.fspath(path)}: malformed line {line!r}.")
      by_index[int(parts[0])] = parts[1]
    if sorted(by_index) != list(range(1, len(by_index) + 1)):
      raise self.layout_error(f"{os.fspath(path)}: class indices are not 1..N.")
    return [by_index[i] for i in range(1, len(by_index) + 1)]

  def _list_videos(self, manual_dir: epath.Path, class_names: Sequence[str]
                   ) -> Mapping[str, Iterable[decode.VideoTask]]:
    if self.builder_config.source == "tfds":
      src = self._tfds_source(manual_dir)
      return {split: _TfdsSplit(self, src, split) for split in src.info.splits}
    videos_root = manual_dir / "UCF-101"
    if not videos_root.is_dir():
      raise self.layout_error(f"video folder {os.fspath(videos_root)} is missing.")
    finder = listing.CaseInsensitiveFinder(videos_root)
    by_lower = {c.lower(): i for i, c in enumerate(class_names)}
    n = self.builder_config.split_number
    out = {}
    for split, fname in (("train", f"trainlist{n:02d}.txt"), ("test", f"testlist{n:02d}.txt")):
      list_path = manual_dir / "ucfTrainTestlist" / fname
      if not list_path.exists():
        raise self.layout_error(f"split file {os.fspath(list_path)} is missing.")
      tasks = []
      for line in listing.read_lines(list_path):
        parts = line.split()
        rel = parts[0].replace("\\", "/")
        label = by_lower.get(rel.split("/")[0].lower())
        if label is None and len(parts) > 1 and parts[1].isdigit():
          label = int(parts[1]) - 1
        if label is None or not 0 <= label < len(class_names):
          self._skip(split, rel, f"unknown class in {fname}")
          continue
        video = finder.find(rel)
        if video is None:
          self._skip(split, os.fspath(videos_root / rel), f"listed in {fname} but not on disk")
          continue
        stem = os.path.splitext(os.path.basename(rel))[0]
        tasks.append(self._task(os.fspath(video), label, stem))
      out[split] = tasks
    return out

  # ---- an already prepared TFDS ucf101 -----------------------------------------------

  def _tfds_source(self, tfds_data_dir: epath.Path) -> tfds.core.DatasetBuilder:
    cfg = self.builder_config.tfds_config
    try:
      src = tfds.builder(f"ucf101/{cfg}", data_dir=os.fspath(tfds_data_dir))
    except Exception as e:  # pylint: disable=broad-except
      raise self.layout_error(f"cannot load TFDS ucf101/{cfg} from "
                              f"{os.fspath(tfds_data_dir)}: {e}") from e
    if not src.data_path.exists():
      raise self.layout_error(
          f"TFDS ucf101/{cfg} is not prepared under {os.fspath(tfds_data_dir)} (expected "
          f"{os.fspath(tfds_data_dir)}/ucf101/{cfg}/<version>/); --manual_dir must be the "
          "TFDS data_dir that holds it.")
    return src


class _TfdsSplit:
  """A split of a prepared TFDS ``ucf101``, as a sized lazy iterable of frame tasks.

  Frames stay JPEG bytes here (``SkipDecoding``); the workers decode and resize them.
  The TFDS dataset stores no file names and no fps: video ids are ``<split>_<index>`` and
  fps is 25 (UCF101's rate). ``ucf101_1_256`` frames were squashed to 256x256 by TFDS.
  """

  def __init__(self, builder: Ucf101, src: tfds.core.DatasetBuilder, split: str):
    self.builder, self.src, self.split = builder, src, split

  def __len__(self) -> int:
    return int(self.src.info.splits[self.split].num_examples)

  def __iter__(self) -> Iterator[decode.VideoTask]:
    ds = self.src.as_dataset(split=self.split, shuffle_files=False,
                             decoders={"video": tfds.decode.SkipDecoding()})
    for i, ex in enumerate(tfds.as_numpy(ds)):
      yield self.builder._task(  # pylint: disable=protected-access
          [bytes(b) for b in ex["video"]], int(ex["label"]), f"{self.split}_{i:06d}",
          kind="frames", fps=UCF101_FPS,
          name=f"ucf101/{self.src.builder_config.name}[{self.split}][{i}]")
