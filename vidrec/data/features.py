"""The one TFDS feature layout every vidrec video dataset is stored in.

Frames are stored as a sequence of JPEG-encoded images (``tfds.features.Video`` with
``encoding_format='jpeg'``) in ArrayRecord files, so the input pipeline can read one
example by index, skip decoding, pick the sampled frames and decode only those.

Datasets prepared with optical flow (``prepare --flow tvl1 [--warped_flow]``) also hold, per flow stream
(``flow``, ``warped_flow``), the x and y planes of the T-1 quantised fields (``vidrec.data.flow``) as two
sequences of grey JPEGs, ``<stream>_x`` and ``<stream>_y`` (TSN's layout), decoded the same lazy way.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import tensorflow_datasets as tfds

FILE_FORMAT = "array_record"
FLOW_STREAMS = ("flow", "warped_flow")


def flow_streams(flow: str, warped_flow: bool) -> tuple[str, ...]:
  """The flow streams a dataset prepared with ``--flow flow [--warped_flow]`` holds."""
  return FLOW_STREAMS[:(1 + bool(warped_flow))] if flow else ()


def video_features(class_names: Sequence[str], streams: Sequence[str] = ()) -> tfds.features.FeaturesDict:
  """Feature spec: video (T,H,W,3 uint8 JPEG frames), label, video_id, fps, num_frames, and for each
  flow stream ``<stream>_x`` / ``<stream>_y`` (T-1,H,W,1 uint8 grey JPEGs)."""
  grey = lambda: tfds.features.Video(shape=(None, None, None, 1), encoding_format="jpeg")
  return tfds.features.FeaturesDict({
      "video": tfds.features.Video(shape=(None, None, None, 3), encoding_format="jpeg"),
      "label": tfds.features.ClassLabel(names=list(class_names)),
      "video_id": tfds.features.Text(),
      "fps": np.float32,
      "num_frames": np.int32,
      **{f"{s}_{c}": grey() for s in streams for c in "xy"},
  })


def make_example(video: np.ndarray, label: int | str, video_id: str, fps: float,
                 flow: Mapping[str, np.ndarray] | None = None) -> dict:
  """Builds one example dict for ``video_features`` from a uint8 (T,H,W,3) array and, per flow
  stream, uint8 (F,H,W,2) quantised fields (split into the x and y planes)."""
  if video.ndim != 4 or video.shape[-1] != 3 or video.dtype != np.uint8:
    raise ValueError(f"video must be uint8 (T,H,W,3), got {video.dtype} {video.shape}")
  if video.shape[0] == 0:
    raise ValueError(f"video {video_id!r} has no frames")
  example = {"video": video, "label": label, "video_id": video_id,
             "fps": np.float32(fps), "num_frames": np.int32(video.shape[0])}
  for stream, fields in (flow or {}).items():
    if fields.ndim != 4 or fields.shape[-1] != 2 or fields.dtype != np.uint8:
      raise ValueError(f"{stream} must be uint8 (F,H,W,2), got {fields.dtype} {fields.shape}")
    example[f"{stream}_x"], example[f"{stream}_y"] = fields[..., :1], fields[..., 1:]
  return example
