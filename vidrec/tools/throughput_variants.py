"""The per-example functions ``python -m vidrec.tools.throughput`` compares with the pipeline's own
(``sampled``, ``pipeline._train_example``): each is passed to ``pipeline.train_dataset`` as its
``example_fn`` (same reading, ordering, batching and prefetching). ``decode_all``
decodes every frame first (the cost of reading a ``tfds.features.Video`` with its default decoder);
docs/throughput.md's ``proposed`` prototype of 2026-11-21 is now the pipeline itself."""
from __future__ import annotations


def decode_all_example(raw, position, source, sampler, cfg, seed):
  """Baseline: the record deserialised with the Video feature's default decoder (every frame
  decoded), then the sampled frames picked; then ``pipeline.augment_train`` as in training."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from vidrec.data import pipeline  # pylint: disable=g-import-not-at-top
  ex = source.features.deserialize_example(raw)
  indices = pipeline.sample_train_indices(tf.shape(ex["video"])[0], position, sampler, seed)
  frames = tf.ensure_shape(tf.gather(ex["video"], indices), [None, None, None, 3])
  return pipeline.augment_train(frames, ex["label"], position, source, cfg, seed)


# "sampled": None = train_dataset's default example_fn, pipeline._train_example.
VARIANTS = {"sampled": None, "decode_all": decode_all_example}
