"""Decoding one video for the builders: PyAV for video files, PIL for frame folders, resized to short
side S and JPEG-encoded (:func:`process_task`); unusable input (zero-byte, unreadable, truncated,
zero-frame) becomes a :class:`Skip` with a reason instead of an exception."""
from __future__ import annotations

import dataclasses
import io
import os
from typing import Any, Sequence

from absl import logging
import numpy as np

from vidrec.data import features as features_lib
from vidrec.data import flow as flow_lib

# Decoded fewer than this fraction of the frames the container declares -> truncated.
_TRUNCATION_TOLERANCE = 0.9


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
  flow_backend: str = "opencv"  # vidrec.data.flow.BACKENDS; not opencv: the parent runs it (add_flow)

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


GREY_FRAMES = "_grey_frames"   # what a worker leaves the parent's batched flow backend (add_flow)


def add_flow(items: list[tuple[VideoTask, dict | Skip]]) -> list[tuple[VideoTask, dict | Skip]]:
  """The parent's half of the tasks whose flow backend is not OpenCV: TV-L1 of the grey frames their
  workers left (``process_task``), all videos' pairs in shared batches, quantised and JPEG-encoded as
  a worker does it; other items pass through."""
  items = list(items)
  todo = []
  for k, (task, result) in enumerate(items):
    if not isinstance(result, Skip) and GREY_FRAMES in result:
      try:
        todo.append((k, flow_lib.checked_grey(result.pop(GREY_FRAMES), task.display_name)))
      except ValueError as e:
        items[k] = (task, Skip(str(e)))
  if todo:
    task = items[todo[0][0]][0]
    fields = flow_lib.extract_many([g for _, g in todo], task.flow, task.warped_flow, task.flow_backend)
    for (k, _), streams in zip(todo, fields):
      example = items[k][1]
      for stream, q in streams.items():
        for i, c in enumerate("xy"):
          example[f"{stream}_{c}"] = encode_jpeg(q[..., i:i + 1], items[k][0].jpeg_quality)
  return items


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
    in_worker = task.flow and task.flow_backend == "opencv"
    flow = (flow_lib.extract(frames, task.flow, task.warped_flow, "opencv", task.display_name)
            if in_worker else None)
    example = features_lib.make_example(frames, task.label, task.video_id, fps, flow)
    for key in ["video"] + [f"{s}_{c}" for s in (flow or {}) for c in "xy"]:
      example[key] = encode_jpeg(example[key], task.jpeg_quality)
    if task.flow and not in_worker:
      example[GREY_FRAMES] = flow_lib.grey(frames)
    return example
  except BadVideo as e:
    return Skip(str(e))
  except MemoryError:
    return Skip("out of memory while decoding")
  except Exception as e:  # pylint: disable=broad-except
    return Skip(f"{type(e).__name__}: {e}")
