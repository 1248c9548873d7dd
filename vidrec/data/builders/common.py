"""The base of the real-dataset TFDS builders (UCF101, HMDB51, Something-Something v2, Penn Action,
labelled video folders): :class:`VideoBuilder` does config naming (``<variant>`` at S=128,
``<variant>_s<S>`` otherwise), class names resolved from ``manual_dir`` or restored from the prepared
data, the per-split generator over :func:`decode.process_task` run by :func:`pool.ordered_parallel_map`,
and the skip report (``prepare_report.json``).

Decoding lives in ``decode.py``, the process pool in ``pool.py``, ``manual_dir`` file helpers in
``listing.py``. Subclasses implement ``_read_class_names(manual_dir)`` and ``_list_videos(manual_dir,
class_names)`` and nothing else is required.
"""
from __future__ import annotations

import abc
import dataclasses
import itertools
import json
import os
import re
import sys
from typing import Any, Iterable, Iterator, Mapping, Sequence, TypeVar

from absl import logging
from etils import epath
import tensorflow_datasets as tfds

from vidrec.data import features as features_lib
from vidrec.data import flow as flow_lib
from vidrec.data.builders.decode import GREY_FRAMES, Skip, VideoTask, add_flow, process_task
from vidrec.data.builders.pool import ordered_parallel_map
from vidrec.errors import MissingDataError

DEFAULT_SHORT_SIDE = 128
VERSION = tfds.core.Version("1.0.0")
REPORT_FILENAME = "prepare_report.json"

_T = TypeVar("_T")


class DataLayoutError(MissingDataError):
  """The manual_dir (or a split / label file in it) is missing or malformed."""


def layout_error(dataset: str, problem: str, instructions: str) -> DataLayoutError:
  """One clear error: what is wrong, where the data comes from, layout, command to run."""
  return DataLayoutError(f"{dataset}: {problem}\n\n{instructions.strip()}\n")


def _parent_flow(items: Iterable[tuple[VideoTask, dict | Skip]], pairs: int = 64
                 ) -> Iterator[tuple[VideoTask, dict | Skip]]:
  """``items`` in order, with the flow that their backend computes here, in the parent
  (``decode.add_flow``: JAX runs in one process while the workers decode), for about ``pairs`` pairs
  of consecutive videos at a time."""
  buffer, count = [], 0
  for task, result in items:
    pending = not isinstance(result, Skip) and GREY_FRAMES in result
    if not pending and not buffer:    # nothing owed: streams through
      yield task, result
      continue
    buffer.append((task, result))
    count += len(result[GREY_FRAMES]) - 1 if pending else 0
    if count >= pairs:
      yield from add_flow(buffer)
      buffer, count = [], 0
  yield from add_flow(buffer)


def _progress(iterable: Iterable[_T], total: int | None, desc: str) -> Iterable[_T]:
  try:
    import tqdm  # pylint: disable=g-import-not-at-top
  except ImportError:  # pragma: no cover
    return iterable
  return tqdm.tqdm(iterable, total=total, desc=desc, unit="video", dynamic_ncols=True,
                   mininterval=1.0, file=sys.stderr)


# --------------------------------------------------------------------------------------
# Base builder.
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(eq=False)
class VideoBuilderConfig(tfds.core.BuilderConfig):
  """Config shared by every vidrec video builder.

  Attributes:
    short_side: frames are stored resized so their short side is this many pixels.
    jpeg_quality: JPEG quality of the stored frames.
    flow: optical flow stored next to the frames ("" = none, "tvl1"; ``vidrec.data.flow``).
    warped_flow: also store the camera-motion-compensated (warped) flow.
  """

  short_side: int = DEFAULT_SHORT_SIDE
  jpeg_quality: int = 90
  flow: str = ""
  warped_flow: bool = False


def config_name(variant: str, short_side: int) -> str:
  """Config naming rule: ``variant`` at S=128, ``variant_s<S>`` otherwise."""
  return variant if short_side == DEFAULT_SHORT_SIDE else f"{variant}_s{short_side}"


def flow_config_name(name: str, flow: str, warped_flow: bool) -> str:
  """Config naming rule for flow: ``<name>_<algorithm>[_warped]`` (e.g. ``split1_s256_tvl1_warped``)."""
  if warped_flow and not flow:
    raise ValueError("--warped_flow needs --flow (e.g. --flow tvl1 --warped_flow)")
  return f"{name}_{flow}{'_warped' if warped_flow else ''}" if flow else name


def with_short_sides(configs: Sequence[VideoBuilderConfig],
                     sizes: Sequence[int] = (DEFAULT_SHORT_SIDE, 256)
                     ) -> list[VideoBuilderConfig]:
  """Expands S=128 base configs to one config per short side (``<name>_s<S>``)."""
  out = []
  for size in sizes:
    for c in configs:
      out.append(dataclasses.replace(c, name=config_name(c.name, size), short_side=size))
  return out


class VideoBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Base class: a manual_dir video dataset stored in the vidrec feature layout.

  Constructor: ``cls(config=<name|config|None>, data_dir=D, file_format='array_record',
  manual_dir=None, workers=None)``. ``manual_dir`` may instead be given the TFDS way
  (``download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=M))``).
  ``workers`` processes decode videos in parallel (default: all CPUs); ``flow_backend`` (a
  ``vidrec.data.flow.BACKENDS`` name, default ``flow.default_backend()``) computes the TV-L1 flow.
  """

  VERSION = VERSION
  RELEASE_NOTES = {"1.0.0": "Initial release: JPEG frames, short side S, ArrayRecord."}
  DATASET_TITLE = ""  # human name used in messages
  HOMEPAGE = ""
  CITATION = ""

  def __init__(self, *, manual_dir: epath.PathLike | None = None,
               workers: int | None = None, flow_backend: str | None = None, **kwargs: Any):
    self._flow_backend = flow_backend or flow_lib.default_backend()
    flow_lib.check_backend(self._flow_backend)
    self._manual_dir = epath.Path(manual_dir) if manual_dir else None
    self._dl_manual_dir: epath.Path | None = None
    self._workers = int(workers) if workers else (os.cpu_count() or 1)
    self._class_name_cache: dict[str, list[str]] = {}
    self._report: dict | None = None
    kwargs.setdefault("file_format", features_lib.FILE_FORMAT)
    super().__init__(**kwargs)

  # ---- configs -----------------------------------------------------------------------

  def _create_builder_config(self, builder_config, version):
    """Accepts ``<variant>_s<S>`` for any S (e.g. 'split1_s160') besides the listed ones."""
    if isinstance(builder_config, str) and ":" not in builder_config:
      if builder_config not in type(self).builder_configs:
        builder_config = self._config_from_name(builder_config)
    return super()._create_builder_config(builder_config, version)

  def _config_from_name(self, name: str) -> VideoBuilderConfig | str:
    m = re.fullmatch(rf"(.+)_({'|'.join(flow_lib.ALGORITHMS)})(_warped)?", name)
    if m:   # '<config>_tvl1[_warped]': the config with optical flow
      base = type(self).builder_configs.get(m.group(1)) or self._config_from_name(m.group(1))
      if isinstance(base, str):
        return name
      return dataclasses.replace(base, name=name, flow=m.group(2), warped_flow=bool(m.group(3)))
    m = re.fullmatch(r"(.+)_s(\d+)", name)
    base = type(self).builder_configs.get(m.group(1)) if m else None
    if base is None:
      return name  # let TFDS raise its 'not found' error listing the configs
    size = int(m.group(2))
    if size < 8:
      raise ValueError(f"short side must be >= 8, got {size}")
    if size == base.short_side:
      return base  # 'split1_s128' is 'split1'
    return dataclasses.replace(base, name=name, short_side=size)

  @property
  def short_side(self) -> int:
    return int(self.builder_config.short_side)

  @property
  def flow(self) -> str:
    return self.builder_config.flow

  @property
  def warped_flow(self) -> bool:
    return bool(self.builder_config.warped_flow)

  # ---- info --------------------------------------------------------------------------

  def _info(self) -> tfds.core.DatasetInfo:
    names = self._class_names(self._manual_dir) if self._manual_dir else None
    return tfds.core.DatasetInfo(
        builder=self,
        description=(f"{self.DATASET_TITLE}: videos stored as JPEG frames resized to short "
                     f"side {self.short_side}, with label, video id, fps and frame count."),
        features=self._features(names),
        supervised_keys=("video", "label"),
        homepage=self.HOMEPAGE or None,
        citation=self.CITATION or None,
        metadata=tfds.core.MetadataDict(
            short_side=self.short_side, jpeg_quality=self.builder_config.jpeg_quality,
            **({"flow": flow_lib.metadata(self.flow, self.warped_flow, self._flow_backend)}
               if self.flow else {})),
    )

  def _features(self, class_names: Sequence[str] | None) -> tfds.features.FeaturesDict:
    """``features.video_features``; with unknown names the ClassLabel is left unset and is
    filled from the manual files at preparation or from the prepared data on loading."""
    feats = features_lib.video_features(class_names or [],
                                        features_lib.flow_streams(self.flow, self.warped_flow))
    if class_names:
      return feats
    return tfds.features.FeaturesDict({
        k: (tfds.features.ClassLabel() if k == "label" else v) for k, v in feats.items()})

  def _class_names(self, manual_dir: epath.Path) -> list[str]:
    key = os.fspath(manual_dir)
    if key not in self._class_name_cache:
      self._check_manual_dir(manual_dir)
      self._class_name_cache[key] = list(self._read_class_names(manual_dir))
    return self._class_name_cache[key]

  @property
  def class_names(self) -> list[str] | None:
    """Class names, or None while unknown (not prepared and no manual_dir given)."""
    label = self.info.features["label"]
    return list(label.names) if label.num_classes else None

  def flip_label_map(self) -> list[int] | None:
    """Entry c: class of a horizontally flipped video of class c (identity here).

    None while the classes are unknown (dataset not prepared and no manual_dir given).
    """
    names = self.class_names
    return None if names is None else list(range(len(names)))

  # ---- manual dir and errors ---------------------------------------------------------

  @property
  def instructions(self) -> str:
    return self.MANUAL_DOWNLOAD_INSTRUCTIONS

  def layout_error(self, problem: str) -> DataLayoutError:
    return layout_error(self.DATASET_TITLE or self.name, problem, self.instructions)

  def _check_manual_dir(self, manual_dir: epath.Path) -> None:
    if not manual_dir.is_dir():
      raise self.layout_error(f"manual_dir {os.fspath(manual_dir)} does not exist.")

  def _resolve_manual_dir(self, dl_manager) -> epath.Path:
    manual_dir = self._dl_manual_dir or self._manual_dir
    if manual_dir is None:
      try:
        manual_dir = epath.Path(dl_manager.manual_dir)
      except (AssertionError, ValueError) as e:
        raise self.layout_error(f"no manual_dir given and the TFDS default is unusable "
                                f"({str(e).splitlines()[0]})") from None
    self._check_manual_dir(manual_dir)
    return manual_dir

  # ---- preparation -------------------------------------------------------------------

  def download_and_prepare(self, *, download_dir=None, download_config=None, **kwargs):
    """TFDS ``download_and_prepare``; also writes ``prepare_report.json`` next to the data."""
    download_config = download_config or tfds.download.DownloadConfig()
    if download_config.manual_dir:
      self._dl_manual_dir = epath.Path(download_config.manual_dir)
    # Nothing of ours is on the TFDS GCS bucket; do not ask it.
    download_config = dataclasses.replace(download_config, try_download_gcs=False)
    super().download_and_prepare(download_dir=download_dir,
                                 download_config=download_config, **kwargs)
    if self._report is not None:
      self._report["written"] = {
          name: int(split.num_examples) for name, split in self.info.splits.items()}
      self._report["num_skipped"] = len(self._report["skipped"])
      (self.data_path / REPORT_FILENAME).write_text(json.dumps(self._report, indent=1))

  def prepare_report(self) -> dict | None:
    """The report of the preparation that produced the data at ``data_path``, if any."""
    if self._report is not None and "written" in self._report:
      return self._report
    path = self.data_path / REPORT_FILENAME
    return json.loads(path.read_text()) if path.exists() else None

  def _skip(self, split: str, name: str, reason: str) -> None:
    logging.warning("Skipping %s [%s]: %s", name, split, reason)
    assert self._report is not None
    self._report["skipped"].append({"split": split, "file": name, "reason": reason})

  def _split_generators(self, dl_manager):
    manual_dir = self._resolve_manual_dir(dl_manager)
    names = self._class_names(manual_dir)
    label = self.info.features["label"]
    if label.num_classes and list(label.names) != list(names):
      raise self.layout_error("class names in the manual_dir differ from the ones this "
                              "builder was constructed with.")
    label.names = names
    self._report = {"dataset": self.name, "config": self.builder_config.name,
                    "short_side": self.short_side, "manual_dir": os.fspath(manual_dir),
                    **({"flow_backend": self._flow_backend} if self.flow else {}), "skipped": []}
    splits = self._list_videos(manual_dir, names)
    generators = {}
    for split, tasks in splits.items():
      total = len(tasks) if hasattr(tasks, "__len__") else None
      remaining = iter(tasks)
      # TFDS cannot write an empty split: find each split's first good video before
      # registering it (bad ones met on the way are reported as usual).
      first, probed = self._first_good(split, remaining)
      if first is None:
        logging.warning("%s: split %r has no usable video; not writing it.", self.name, split)
        self._report.setdefault("empty_splits", []).append(split)
        continue
      total = None if total is None else total - probed + 1  # progress counts `first`
      generators[split] = self._generate_examples(split, first, remaining, total)
    if not generators:
      raise self.layout_error(f"no usable video found under {os.fspath(manual_dir)} (see "
                              "the skipped files above).")
    return generators

  def _first_good(self, split: str, tasks: Iterator[VideoTask]
                  ) -> tuple[tuple[VideoTask, dict] | None, int]:
    """(first (task, example) that decodes or None, number of tasks consumed)."""
    n = 0
    for task in tasks:
      n += 1
      (_, result), = add_flow([(task, process_task(task))])
      if not isinstance(result, Skip):
        return (task, result), n
      self._skip(split, task.display_name, result.reason)
    return None, n

  def _generate_examples(self, split: str, first: tuple[VideoTask, dict],
                         tasks: Iterator[VideoTask], total: int | None = None):
    on_crash = lambda task: Skip("decoder process died (crash or out of memory)")
    results = itertools.chain(
        [first], ordered_parallel_map(process_task, tasks, self._workers, on_crash))
    seen: set[str] = set()
    for task, result in _progress(_parent_flow(results), total, f"{self.name}/{split}"):
      if isinstance(result, Skip):
        self._skip(split, task.display_name, result.reason)
        continue
      if task.video_id in seen:
        self._skip(split, task.display_name, f"duplicate video id {task.video_id!r}")
        continue
      seen.add(task.video_id)
      yield task.video_id, result

  def _task(self, source: Any, label: int, video_id: str, **kwargs: Any) -> VideoTask:
    return VideoTask(source=source, label=label, video_id=video_id,
                     short_side=self.short_side,
                     jpeg_quality=int(self.builder_config.jpeg_quality),
                     flow=self.flow, warped_flow=self.warped_flow, flow_backend=self._flow_backend,
                     **kwargs)

  # ---- to implement ------------------------------------------------------------------

  @abc.abstractmethod
  def _read_class_names(self, manual_dir: epath.Path) -> Sequence[str]:
    """Class names (index order) from the files in ``manual_dir``; raise layout_error."""

  @abc.abstractmethod
  def _list_videos(self, manual_dir: epath.Path, class_names: Sequence[str]
                   ) -> Mapping[str, Iterable[VideoTask]]:
    """Tasks per split; files named by split lists but absent are reported via _skip."""
