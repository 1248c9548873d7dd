"""Penn Action from the original frame folders and .mat annotations in ``manual_dir``.

Registered as ``vidrec_penn_action``. Configs ``default`` (S=128), ``default_s256`` (any
``_s<S>`` works). Splits from each annotation's ``train`` field (1 = train, -1 or 0 =
test). Class names: the sorted distinct ``action`` strings (15 in the real dataset).
Penn Action has no frame rate; ``fps`` is stored as the nominal ``PENN_FPS`` = 30.
"""
from __future__ import annotations

import os
from typing import Iterable, Mapping, Sequence

from etils import epath
import numpy as np

from vidrec.data.builders import common
from vidrec.data.builders import decode
from vidrec.data.builders import listing

PENN_FPS = 30.0
_ROOTS = ("", "Penn_Action")

_INSTRUCTIONS = """\
Where: http://dreamdragon.github.io/PennAction/ ("Penn_Action.tar.gz", 3 GB). Nothing is
downloaded by vidrec. Expected layout of the manual_dir M (extract the archive into M):
  M/frames/<id>/000001.jpg, 000002.jpg, ...    2,326 sequences (or M/Penn_Action/frames/...)
  M/labels/<id>.mat                            fields include `action` (string) and
                                               `train` (1 = train, -1 or 0 = test)
Command:
  python -m vidrec.data.prepare penn_action --manual_dir M [--data_dir D] [--short_side 128]
"""


def _scalar(value) -> object:
  arr = np.asarray(value).ravel()
  if arr.size == 0:
    raise ValueError("empty field")
  item = arr[0]
  while isinstance(item, np.ndarray):  # cell arrays nest
    item = item.ravel()[0]
  return item


class PennAction(common.VideoBuilder):
  """Penn Action (15 actions, 2,326 frame sequences, 1,258 train / 1,068 test)."""

  name = "vidrec_penn_action"
  BUILDER_CONFIGS = common.with_short_sides([
      common.VideoBuilderConfig(name="default", description="Penn Action.")])
  MANUAL_DOWNLOAD_INSTRUCTIONS = _INSTRUCTIONS
  DATASET_TITLE = "Penn Action"
  HOMEPAGE = "http://dreamdragon.github.io/PennAction/"
  CITATION = """@inproceedings{zhang2013actemes,
  title={From actemes to action: A strongly-supervised representation for detailed action
         understanding},
  author={Zhang, Weiyu and Zhu, Menglong and Derpanis, Konstantinos G},
  booktitle={ICCV}, year={2013}}"""

  def __init__(self, **kwargs):
    self._annotations: dict[str, tuple[dict, list]] = {}
    super().__init__(**kwargs)

  def _root(self, manual_dir: epath.Path) -> epath.Path:
    for d in _ROOTS:
      root = manual_dir / d if d else manual_dir
      if (root / "labels").is_dir():
        if not (root / "frames").is_dir():
          raise self.layout_error(f"frame folder {os.fspath(root / 'frames')} is missing.")
        return root
    raise self.layout_error(f"annotation folder {os.fspath(manual_dir / 'labels')} is missing.")

  def _read_annotations(self, manual_dir: epath.Path) -> tuple[dict, list]:
    """({id: (action, is_train)}, [(file, reason) for unreadable .mat files])."""
    key = os.fspath(manual_dir)
    if key not in self._annotations:
      import scipy.io  # pylint: disable=g-import-not-at-top
      root = self._root(manual_dir)
      good, bad = {}, []
      for path in sorted(root.joinpath("labels").glob("*.mat")):
        try:
          mat = scipy.io.loadmat(os.fspath(path), variable_names=["action", "train"])
          action = str(_scalar(mat["action"])).strip()
          train = int(_scalar(mat["train"]))
          if not action:
            raise ValueError("empty action")
          good[path.stem] = (action, train == 1)
        except Exception as e:  # pylint: disable=broad-except
          bad.append((os.fspath(path), f"unreadable annotation: {type(e).__name__}: {e}"))
      if not good:
        raise self.layout_error(f"no readable .mat files in {os.fspath(root / 'labels')}.")
      self._annotations[key] = (good, bad)
    return self._annotations[key]

  def _read_class_names(self, manual_dir: epath.Path) -> list[str]:
    good, _ = self._read_annotations(manual_dir)
    return sorted({action for action, _ in good.values()})

  def _list_videos(self, manual_dir: epath.Path, class_names: Sequence[str]
                   ) -> Mapping[str, Iterable[decode.VideoTask]]:
    root = self._root(manual_dir)
    good, bad = self._read_annotations(manual_dir)
    for file, reason in bad:
      self._skip("?", file, reason)
    label_of = {n: i for i, n in enumerate(class_names)}
    frame_dirs = {p.name: p for p in root.joinpath("frames").iterdir()
                  if p.is_dir() and not listing.is_hidden(p)}
    for vid in sorted(set(frame_dirs) - set(good)):
      self._skip("?", os.fspath(frame_dirs[vid]), "no annotation labels/<id>.mat")
    out: dict[str, list[decode.VideoTask]] = {"train": [], "test": []}
    for vid, (action, is_train) in sorted(good.items()):
      split = "train" if is_train else "test"
      folder = frame_dirs.get(vid)
      if folder is None:
        self._skip(split, os.fspath(root / "frames" / vid), "frame folder missing")
        continue
      frames = sorted(os.fspath(p) for p in folder.iterdir()
                      if p.suffix.lower() in listing.IMAGE_EXTENSIONS and not listing.is_hidden(p))
      if not frames:
        self._skip(split, os.fspath(folder), "no frames")
        continue
      out[split].append(self._task(frames, label_of[action], vid, kind="frames", fps=PENN_FPS,
                                   name=os.fspath(folder)))
    return out
