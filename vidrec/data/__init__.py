"""Data path: files -> TFDS builder -> sampler -> decode sampled frames -> augment -> sharded batch."""
