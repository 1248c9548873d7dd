"""Data path: files -> TFDS builder -> sampler -> decode sampled frames -> augment -> sharded batch.

TensorFlow only decodes and augments on the host: importing ``vidrec.data`` hides every GPU from it,
before any TensorFlow op runs, so it never claims accelerator memory that JAX needs.
"""
from absl import logging


def hide_gpus_from_tensorflow() -> None:
  """Makes TensorFlow see no GPU (a warning if its runtime already started and claimed them)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if not tf.config.list_physical_devices("GPU"):
    return
  try:
    tf.config.set_visible_devices([], "GPU")
  except RuntimeError as e:
    logging.warning("TensorFlow was initialised before vidrec.data and may hold GPU memory: %s", e)


hide_gpus_from_tensorflow()
