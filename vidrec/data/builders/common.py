"""Shared machinery of the real-dataset TFDS builders.

Everything that is the same for UCF101, HMDB51, Something-Something v2, Penn Action and
labelled video folders lives here once:

* decoding a video file with PyAV (or a folder / list of JPEG frames with PIL), resizing it
  so the short side is ``S`` and JPEG-encoding the frames (:func:`process_task`);
* detecting bad input (zero-byte, unreadable, truncated, zero-frame videos) and turning it
  into a :class:`Skip` with a reason instead of an exception;
* an ordered, bounded, crash-tolerant process-pool map (:func:`ordered_parallel_map`);
* the base builder :class:`VideoBuilder`: config naming (``<variant>`` at S=128,
  ``<variant>_s<S>`` otherwise), class names resolved from ``manual_dir`` or restored from
  the prepared data, the per-split generator, the skip report (``prepare_report.json``).

Subclasses implement ``_read_class_names(manual_dir)`` and ``_list_videos(manual_dir,
class_names)`` and nothing else is required.
"""
from __future__ import annotations

import abc
import collections
import concurrent.futures
import dataclasses
import io
import itertools
import json
import multiprocessing
import os
import re
import sys
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence, TypeVar

from absl import logging
from etils import epath
import numpy as np
import tensorflow_datasets as tfds

from vidrec.data import features as features_lib
from vidrec.data import flow as flow_lib

DEFAULT_SHORT_SIDE = 128
VERSION = tfds.core.Version("1.0.0")
REPORT_FILENAME = "prepare_report.json"
VIDEO_EXTENSIONS = frozenset({
    ".avi", ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".mpg", ".mpeg", ".flv", ".wmv",
    ".3gp", ".ogv", ".ts", ".mts", ".vob", ".asf",
})
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp"})
# Decoded fewer than this fraction of the frames the container declares -> truncated.
_TRUNCATION_TOLERANCE = 0.9


class DataLayoutError(FileNotFoundError):
  """The manual_dir (or a split / label file in it) is missing or malformed."""


def layout_error(dataset: str, problem: str, instructions: str) -> DataLayoutError:
  """One clear error: what is wrong, where the data comes from, layout, command to run."""
  return DataLayoutError(f"{dataset}: {problem}\n\n{instructions.strip()}\n")


# --------------------------------------------------------------------------------------
# Tasks, skips and the per-video worker.
# --------------------------------------------------------------------------------------


@dataclasses.dataclass
class VideoTask:
  """One video to decode. ``source`` is a file path (kind 'video') or a list of frame
  paths / encoded frame bytes (kind 'frames'); ``fps`` is only used for 'frames'."""

  source: Any
  label: int
  video_id: str
  short_side: int
  jpeg_quality: int
  kind: str = "video"
  fps: float | None = None
  name: str = ""  # what skip reports call the video (default: source path)
  flow: str = ""  # optical-flow algorithm ("" = none; vidrec.data.flow.ALGORITHMS)
  warped_flow: bool = False

  @property
  def display_name(self) -> str:
    return self.name or str(self.source)


@dataclasses.dataclass(frozen=True)
class Skip:
  """A video that was not written, and why."""

  reason: str


class BadVideo(Exception):
  """Raised inside the decoders for unusable input; becomes a :class:`Skip`."""


def short_side_size(width: float, height: float, short_side: int) -> tuple[int, int]:
  """(new_width, new_height) with the short side equal to ``short_side``, aspect kept."""
  if width <= 0 or height <= 0:
    raise BadVideo(f"invalid frame size {width}x{height}")
  if width <= height:
    return short_side, max(1, int(round(height * short_side / width)))
  return max(1, int(round(width * short_side / height))), short_side


def _interpolation(src_short: float, dst_short: int) -> str:
  return "AREA" if dst_short < src_short else "BICUBIC"


def decode_video(path: str, short_side: int) -> tuple[np.ndarray, float]:
  """Decodes every frame of ``path`` with PyAV, resized to short side ``short_side``.

  Returns (uint8 [T,H,W,3], fps). Raises :class:`BadVideo` for zero-byte, unreadable,
  truncated or zero-frame files.
  """
  import av  # pylint: disable=g-import-not-at-top

  try:
    size = os.path.getsize(path)
  except OSError as e:
    raise BadVideo(f"cannot stat file: {e}") from e
  if size == 0:
    raise BadVideo("empty file (0 bytes)")
  try:
    container = av.open(path, mode="r", metadata_errors="ignore")
  except Exception as e:  # pylint: disable=broad-except
    raise BadVideo(f"unreadable container: {e}") from e
  with container:
    if not container.streams.video:
      raise BadVideo("no video stream")
    stream = container.streams.video[0]  # single-threaded: parallelism is per video
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    fps = float(rate) if rate else 0.0
    expected = int(stream.frames or 0)
    duration = None
    if stream.duration is not None and stream.time_base is not None:
      duration = float(stream.duration * stream.time_base)
    elif container.duration:
      duration = container.duration / 1_000_000
    if not expected and fps > 0 and duration:
      expected = int(round(duration * fps))
    sar = None
    try:
      sar = stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio
    except Exception:  # pylint: disable=broad-except
      pass
    frames, target, error = [], None, None
    try:
      for frame in container.decode(stream):
        if target is None:
          display_w = frame.width * float(sar) if sar and float(sar) > 0 else frame.width
          target = short_side_size(display_w, frame.height, short_side)
          interp = _interpolation(min(display_w, frame.height), short_side)
        frames.append(frame.reformat(width=target[0], height=target[1], format="rgb24",
                                     interpolation=interp).to_ndarray())
    except Exception as e:  # pylint: disable=broad-except
      error = e
  n = len(frames)
  if n == 0:
    raise BadVideo("no decodable frames" + (f" ({error})" if error else ""))
  if expected and n < _TRUNCATION_TOLERANCE * expected:
    raise BadVideo(f"truncated: decoded {n} of {expected} frames"
                   + (f" ({error})" if error else ""))
  if error is not None and not expected:
    raise BadVideo(f"decode error after {n} frames: {error}")
  if error is not None:
    logging.warning("%s: decode error after %d of %d frames, keeping them: %s",
                    path, n, expected, error)
  if fps <= 0:
    if not duration:
      raise BadVideo("unknown frame rate and duration")
    fps = n / duration
  return np.stack(frames), fps


def load_frames(items: Sequence[Any], short_side: int) -> np.ndarray:
  """Reads frame images (paths or encoded bytes) with PIL, resized to short side S."""
  from PIL import Image  # pylint: disable=g-import-not-at-top

  if not items:
    raise BadVideo("no frames")
  out, target = [], None
  for i, item in enumerate(items):
    name = item if isinstance(item, (str, os.PathLike)) else f"frame {i}"
    try:
      with Image.open(item if not isinstance(item, bytes) else io.BytesIO(item)) as im:
        im = im.convert("RGB")
        if target is None:
          target = short_side_size(im.width, im.height, short_side)
          resample = (Image.Resampling.BOX if short_side < min(im.size)
                      else Image.Resampling.BICUBIC)
        if im.size != target:
          im = im.resize(target, resample)
        out.append(np.asarray(im, dtype=np.uint8))
    except Exception as e:  # pylint: disable=broad-except
      raise BadVideo(f"unreadable frame {os.path.basename(str(name))}: {e}") from e
  return np.stack(out)


def encode_jpeg(frames: np.ndarray, quality: int) -> list[bytes]:
  """JPEG-encodes each (H,W,3) uint8 frame (or (H,W,1) grey plane) with PIL (libjpeg-turbo, 4:2:0)."""
  from PIL import Image  # pylint: disable=g-import-not-at-top

  encoded = []
  for frame in frames:
    buf = io.BytesIO()
    Image.fromarray(frame[..., 0] if frame.shape[-1] == 1 else frame).save(buf, format="JPEG", quality=quality)
    encoded.append(buf.getvalue())
  return encoded


def process_task(task: VideoTask) -> dict | Skip:
  """Decodes, resizes and JPEG-encodes one video; never raises (bad input -> Skip).

  The example is built by ``features.make_example`` (which validates the uint8 T,H,W,3
  array); its frames are then JPEG-encoded here, in the worker, so the parent process
  only copies bytes (``tfds.features.Video`` accepts encoded frames as they are).
  """
  try:
    if task.kind == "video":
      frames, fps = decode_video(str(task.source), task.short_side)
    elif task.kind == "frames":
      frames, fps = load_frames(task.source, task.short_side), float(task.fps or 0.0)
    else:
      raise ValueError(f"unknown task kind {task.kind!r}")
    flow = flow_lib.extract(frames, task.flow, task.warped_flow) if task.flow else None
    example = features_lib.make_example(frames, task.label, task.video_id, fps, flow)
    for key in ["video"] + [f"{s}_{c}" for s in (flow or {}) for c in "xy"]:
      example[key] = encode_jpeg(example[key], task.jpeg_quality)
    return example
  except BadVideo as e:
    return Skip(str(e))
  except MemoryError:
    return Skip("out of memory while decoding")
  except Exception as e:  # pylint: disable=broad-except
    return Skip(f"{type(e).__name__}: {e}")


# --------------------------------------------------------------------------------------
# Ordered, bounded, crash-tolerant parallel map.
# --------------------------------------------------------------------------------------

_T = TypeVar("_T")
_R = TypeVar("_R")


def _mp_context() -> multiprocessing.context.BaseContext:
  # fork: workers start instantly and do not re-import TensorFlow; they only run PyAV/PIL.
  method = "fork" if sys.platform.startswith("linux") else "spawn"
  return multiprocessing.get_context(method)


def _run_isolated(fn: Callable[[_T], _R], item: _T,
                  on_crash: Callable[[_T], _R]) -> _R:
  with concurrent.futures.ProcessPoolExecutor(1, mp_context=_mp_context()) as ex:
    try:
      return ex.submit(fn, item).result()
    except BrokenProcessPool:
      return on_crash(item)


def ordered_parallel_map(fn: Callable[[_T], _R], items: Iterable[_T], workers: int,
                         on_crash: Callable[[_T], _R],
                         max_in_flight: int | None = None) -> Iterator[tuple[_T, _R]]:
  """Yields ``(item, fn(item))`` in input order, computing ``fn`` in ``workers`` processes.

  At most ``max_in_flight`` items (default 4 per worker) are submitted but not yet
  yielded, so memory stays bounded however slow the consumer. If a worker process dies
  (a decoder segfault, the OOM killer), the items that were in flight are re-run one by
  one in fresh processes; the one that kills its process again gets ``on_crash(item)``
  and the map carries on. ``workers <= 1`` runs ``fn`` in this process.
  """
  if workers <= 1:
    for item in items:
      yield item, fn(item)
    return
  max_in_flight = max_in_flight or 4 * workers
  iterator = iter(items)
  pending: collections.deque = collections.deque()
  executor = concurrent.futures.ProcessPoolExecutor(workers, mp_context=_mp_context())
  try:
    exhausted = False
    while True:
      while not exhausted and len(pending) < max_in_flight:
        try:
          item = next(iterator)
        except StopIteration:
          exhausted = True
          break
        pending.append((item, executor.submit(fn, item)))
      if not pending:
        break
      item, future = pending.popleft()
      try:
        result = future.result()
      except BrokenProcessPool:
        logging.warning("A decoding worker died; re-running %d in-flight videos one by "
                        "one to find the culprit.", len(pending) + 1)
        executor.shutdown(wait=True, cancel_futures=True)
        redo = [item] + [it for it, _ in pending]
        pending.clear()
        for it in redo:
          yield it, _run_isolated(fn, it, on_crash)
        executor = concurrent.futures.ProcessPoolExecutor(workers, mp_context=_mp_context())
        continue
      yield item, result
  finally:
    executor.shutdown(wait=True, cancel_futures=True)


# --------------------------------------------------------------------------------------
# Small helpers for the builders.
# --------------------------------------------------------------------------------------


def first_existing(root: epath.Path, candidates: Sequence[str]) -> epath.Path | None:
  """The first ``root / c`` that exists, else None."""
  for c in candidates:
    p = root / c if c else root
    if p.exists():
      return p
  return None


def read_lines(path: epath.Path) -> list[str]:
  """Non-empty, stripped lines of a text file (tolerates BOMs and CRLF)."""
  text = path.read_bytes().decode("utf-8-sig", errors="replace")
  return [line.strip() for line in text.splitlines() if line.strip()]


def is_hidden(path: epath.Path) -> bool:
  return path.name.startswith(".")


class CaseInsensitiveFinder:
  """Finds ``root/rel`` on disk, falling back to a case-insensitive match per path part
  (UCF101's lists say ``HandstandPushups/v_HandStandPushups_...`` for instance)."""

  def __init__(self, root: epath.Path):
    self.root = root
    self._listings: dict[str, dict[str, epath.Path]] = {}

  def _listing(self, directory: epath.Path) -> dict[str, epath.Path]:
    key = os.fspath(directory)
    if key not in self._listings:
      try:
        self._listings[key] = {p.name.lower(): p for p in directory.iterdir()}
      except OSError:
        self._listings[key] = {}
    return self._listings[key]

  def find(self, rel: str) -> epath.Path | None:
    exact = self.root / rel
    if exact.exists():
      return exact
    current = self.root
    for part in [p for p in rel.replace("\\", "/").split("/") if p]:
      nxt = self._listing(current).get(part.lower())
      if nxt is None:
        return None
      current = nxt
    return current


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
  ``workers`` processes decode videos in parallel (default: all CPUs).
  """

  VERSION = VERSION
  RELEASE_NOTES = {"1.0.0": "Initial release: JPEG frames, short side S, ArrayRecord."}
  DATASET_TITLE = ""  # human name used in messages
  HOMEPAGE = ""
  CITATION = ""

  def __init__(self, *, manual_dir: epath.PathLike | None = None,
               workers: int | None = None, **kwargs: Any):
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
            **({"flow": flow_lib.metadata(self.flow, self.warped_flow)} if self.flow else {})),
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
                    "skipped": []}
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
      result = process_task(task)
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
    for task, result in _progress(results, total, f"{self.name}/{split}"):
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
                     flow=self.flow, warped_flow=self.warped_flow, **kwargs)

  # ---- to implement ------------------------------------------------------------------

  @abc.abstractmethod
  def _read_class_names(self, manual_dir: epath.Path) -> Sequence[str]:
    """Class names (index order) from the files in ``manual_dir``; raise layout_error."""

  @abc.abstractmethod
  def _list_videos(self, manual_dir: epath.Path, class_names: Sequence[str]
                   ) -> Mapping[str, Iterable[VideoTask]]:
    """Tasks per split; files named by split lists but absent are reported via _skip."""
