"""Any labelled folder of videos, registered under a name you choose: ``video_folder/NAME``.

Layouts of the manual_dir M:

* ``M/<split>/<class>/<video>`` when split folders exist (``train`` plus ``test``, ``val``
  or ``validation``; ``val`` is stored as the split ``validation``);
* otherwise ``M/<class>/<video>``, split deterministically by a hash of
  ``<class>/<relative path>``: a video goes to ``train`` when the hash (as a fraction of
  2^64) is below ``train_ratio`` (default 0.8), else to ``test``. Adding or removing other
  videos never moves a video between splits.

Videos may sit in sub-folders of a class folder; any container PyAV reads is accepted
(files are recognised by extension, see ``listing.VIDEO_EXTENSIONS``; other files are
reported as skipped). Class names are the class folder names, sorted.

The builder config name is NAME; data lives in ``<data_dir>/video_folder/NAME/1.0.0``.
Preparing writes ``<data_dir>/video_folder/NAME/video_folder.json`` (manual_dir, short
side, train ratio, layout, class names) so ``VideoFolder(config=NAME, data_dir=D)`` or
``tfds.builder('video_folder/NAME', data_dir=D)`` later needs no manual_dir.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from typing import Any, Iterable, Mapping, Sequence

from etils import epath

from vidrec.data.builders import common
from vidrec.data.builders import decode
from vidrec.data.builders import listing
from vidrec.errors import UserError

RECORD_FILENAME = "video_folder.json"
DEFAULT_TRAIN_RATIO = 0.8
_SPLIT_DIRS = {"train": "train", "test": "test", "val": "validation",
               "validation": "validation"}
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]*")

_INSTRUCTIONS = """\
Where: any folder of labelled videos you already have. Nothing is downloaded by vidrec.
Expected layout of the manual_dir M, either
  M/<split>/<class>/<video>     split = train and test | val | validation
or
  M/<class>/<video>             split by a hash of the path, --train_ratio (default 0.8) train
<video>: any container PyAV reads (.mp4 .avi .mkv .webm .mov ...); class names = sorted
folder names.
Command:
  python -m vidrec.data.prepare video_folder --name NAME --manual_dir M [--data_dir D] [--short_side 128] [--train_ratio 0.8]
Then use the dataset as video_folder/NAME.
"""


@dataclasses.dataclass(eq=False)
class VideoFolderConfig(common.VideoBuilderConfig):
  """Config of a video folder dataset; name = the dataset NAME.

  ``short_side`` / ``train_ratio`` / ``flow`` / ``warped_flow`` None: taken from the record of an
  earlier preparation, else 128 / 0.8 / no flow.
  """

  short_side: int | None = None  # type: ignore[assignment]
  train_ratio: float | None = None
  flow: str | None = None  # type: ignore[assignment]
  warped_flow: bool | None = None  # type: ignore[assignment]


def hashed_split(key: str, train_ratio: float) -> str:
  """'train' or 'test' from a stable hash of ``key``."""
  h = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") / 2.0**64
  return "train" if h < train_ratio else "test"


def _walk_files(root: str) -> list[str]:
  """Sorted relative posix paths of the non-hidden files under ``root`` (recursive)."""
  out = []
  for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
    dirnames[:] = [d for d in dirnames if not d.startswith(".")]
    rel_dir = os.path.relpath(dirpath, root)
    for f in filenames:
      if not f.startswith("."):
        out.append(f if rel_dir == "." else f"{rel_dir}/{f}".replace(os.sep, "/"))
  return sorted(out)


class VideoFolder(common.VideoBuilder):
  """A labelled video folder (``video_folder/NAME``)."""

  name = "video_folder"
  BUILDER_CONFIGS: list = []
  MANUAL_DOWNLOAD_INSTRUCTIONS = _INSTRUCTIONS
  DATASET_TITLE = "video_folder"

  # ---- names, record, settings -------------------------------------------------------

  def _create_builder_config(self, builder_config, version):
    if builder_config is None:
      raise UserError("video_folder needs a dataset name: use video_folder/NAME, i.e. "
                       "VideoFolder(config=NAME, ...). Prepare one with\n  python -m "
                       "vidrec.data.prepare video_folder --name NAME --manual_dir M")
    if isinstance(builder_config, str):
      builder_config = self._config_from_name(builder_config)
    if not _NAME_RE.fullmatch(builder_config.name):
      raise UserError(f"video_folder NAME must match {_NAME_RE.pattern}, "
                       f"got {builder_config.name!r}")
    return super()._create_builder_config(builder_config, version)

  def _config_from_name(self, name: str) -> VideoFolderConfig:
    return VideoFolderConfig(name=name, description=f"Video folder dataset {name!r}.")

  @property
  def record_path(self) -> epath.Path:
    """``<data_dir>/video_folder/NAME/video_folder.json``."""
    return epath.Path(self._data_dir_root) / self.name / self.builder_config.name / RECORD_FILENAME

  def record(self) -> dict[str, Any] | None:
    """The record of the last preparation of this NAME in this data_dir, if any."""
    path = self.record_path
    return json.loads(path.read_text()) if path.exists() else None

  def _setting(self, key: str, default: Any) -> Any:
    value = getattr(self.builder_config, key)
    if value is None:
      value = (self.record() or {}).get(key)
    return default if value is None else value

  @property
  def short_side(self) -> int:
    return int(self._setting("short_side", common.DEFAULT_SHORT_SIDE))

  @property
  def flow(self) -> str:
    return str(self._setting("flow", ""))

  @property
  def warped_flow(self) -> bool:
    return bool(self._setting("warped_flow", False))

  @property
  def train_ratio(self) -> float:
    return float(self._setting("train_ratio", DEFAULT_TRAIN_RATIO))

  def _resolve_manual_dir(self, dl_manager) -> epath.Path:
    if self._dl_manual_dir is None and self._manual_dir is None:
      recorded = (self.record() or {}).get("manual_dir")
      if recorded:
        self._manual_dir = epath.Path(recorded)
    return super()._resolve_manual_dir(dl_manager)

  # ---- layout ------------------------------------------------------------------------

  def _layout(self, manual_dir: epath.Path) -> dict[str, epath.Path] | None:
    """{split: folder} in split-folder mode, None in class-folder (hashed) mode."""
    dirs = [p for p in manual_dir.iterdir() if p.is_dir() and not listing.is_hidden(p)]
    split_dirs = [p for p in dirs if p.name.lower() in _SPLIT_DIRS]
    if not split_dirs:
      return None
    others = sorted(p.name for p in dirs if p.name.lower() not in _SPLIT_DIRS)
    if others:
      raise self.layout_error(
          f"{os.fspath(manual_dir)} mixes split folders "
          f"({', '.join(sorted(p.name for p in split_dirs))}) with other folders "
          f"({', '.join(others[:5])}); use either M/<split>/<class>/ or M/<class>/.")
    splits: dict[str, epath.Path] = {}
    for p in sorted(split_dirs, key=lambda p: p.name):
      split = _SPLIT_DIRS[p.name.lower()]
      if split in splits:
        raise self.layout_error(f"two folders map to split {split!r} in {os.fspath(manual_dir)}.")
      splits[split] = p
    return splits

  @staticmethod
  def _class_dirs(folder: epath.Path) -> list[epath.Path]:
    return sorted((p for p in folder.iterdir() if p.is_dir() and not listing.is_hidden(p)),
                  key=lambda p: p.name)

  def _read_class_names(self, manual_dir: epath.Path) -> list[str]:
    layout = self._layout(manual_dir)
    folders = list(layout.values()) if layout else [manual_dir]
    names = sorted({p.name for f in folders for p in self._class_dirs(f)})
    if not names:
      raise self.layout_error(f"no class folders in {os.fspath(manual_dir)}.")
    return names

  def _list_videos(self, manual_dir: epath.Path, class_names: Sequence[str]
                   ) -> Mapping[str, Iterable[decode.VideoTask]]:
    layout = self._layout(manual_dir)
    label_of = {n: i for i, n in enumerate(class_names)}
    out: dict[str, list[decode.VideoTask]] = (
        {s: [] for s in layout} if layout else {"train": [], "test": []})
    for folder in (layout.values() if layout else [manual_dir]):
      fixed_split = _SPLIT_DIRS[folder.name.lower()] if layout else None
      for class_dir in self._class_dirs(folder):
        for rel in _walk_files(os.fspath(class_dir)):
          path = class_dir / rel
          video_id = f"{class_dir.name}/{rel}"
          split = fixed_split or hashed_split(video_id, self.train_ratio)
          if path.suffix.lower() not in listing.VIDEO_EXTENSIONS:
            self._skip(split, os.fspath(path), "not a recognised video file extension")
            continue
          out[split].append(self._task(os.fspath(path), label_of[class_dir.name], video_id))
    self._write_record(manual_dir, class_names, layout)
    return out

  def _write_record(self, manual_dir: epath.Path, class_names: Sequence[str],
                    layout: dict | None) -> None:
    record = {
        "name": self.builder_config.name,
        "manual_dir": os.fspath(manual_dir.resolve() if hasattr(manual_dir, "resolve")
                                else manual_dir),
        "short_side": self.short_side,
        "flow": self.flow,
        "warped_flow": self.warped_flow,
        "train_ratio": None if layout else self.train_ratio,
        "layout": "split_folders" if layout else "hashed",
        "splits": sorted(layout) if layout else ["test", "train"],
        "class_names": list(class_names),
    }
    self.record_path.parent.mkdir(parents=True, exist_ok=True)
    self.record_path.write_text(json.dumps(record, indent=1))
