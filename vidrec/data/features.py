"""The one TFDS feature layout every vidrec video dataset is stored in.

Frames are stored as a sequence of JPEG-encoded images (``tfds.features.Video`` with
``encoding_format='jpeg'``) in ArrayRecord files, so the input pipeline can read one
example by index, skip decoding, pick the sampled frames and decode only those.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow_datasets as tfds

FILE_FORMAT = "array_record"


def video_features(class_names: Sequence[str]) -> tfds.features.FeaturesDict:
  """Feature spec: video (T,H,W,3 uint8 JPEG frames), label, video_id, fps, num_frames."""
  return tfds.features.FeaturesDict({
      "video": tfds.features.Video(shape=(None, None, None, 3), encoding_format="jpeg"),
      "label": tfds.features.ClassLabel(names=list(class_names)),
      "video_id": tfds.features.Text(),
      "fps": np.float32,
      "num_frames": np.int32,
  })


def make_example(video: np.ndarray, label: int | str, video_id: str, fps: float) -> dict:
  """Builds one example dict for ``video_features`` from a uint8 (T,H,W,3) array."""
  if video.ndim != 4 or video.shape[-1] != 3 or video.dtype != np.uint8:
    raise ValueError(f"video must be uint8 (T,H,W,3), got {video.dtype} {video.shape}")
  if video.shape[0] == 0:
    raise ValueError(f"video {video_id!r} has no frames")
  return {"video": video, "label": label, "video_id": video_id,
          "fps": np.float32(fps), "num_frames": np.int32(video.shape[0])}
