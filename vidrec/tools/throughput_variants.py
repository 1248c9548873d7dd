"""The per-example functions ``python -m vidrec.tools.throughput`` compares with the pipeline's own
(``sampled``, ``pipeline._train_example``): each is passed to ``pipeline.train_dataset`` as its
``example_fn`` (same reading, ordering, batching and prefetching). ``decode_all``
decodes every frame first; ``proposed`` is a prototype of the pipeline changes docs/throughput.md
proposes."""
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


def proposed_example(raw, position, source, sampler, cfg, seed):
  """Prototype of the changes docs/throughput.md proposes for pipeline._train_example.

  Same frame indices and the same decoding of the sampled JPEGs only, but

  * the record is parsed with ``tf.io.parse_single_example`` on the two features the pipeline
    needs (TFDS's ``deserialize_example`` parses and converts every feature: ~1 ms more per clip);
  * no whole-frame float resize: the random crop window is drawn in the resized frame's
    coordinates and only that window is produced from the uint8 frames (see
    :func:`crop_resize_normalize`), mirrored for free; normalisation broadcasts over a tiled
    row instead of the last dimension (of size 3, which TF does ~5x slower).
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from vidrec.data import pipeline  # pylint: disable=g-import-not-at-top
  ex = tf.io.parse_single_example(raw, {"video": tf.io.VarLenFeature(tf.string),
                                        "label": tf.io.FixedLenFeature([], tf.int64)})
  ex["video"] = ex["video"].values
  indices = pipeline.sample_train_indices(tf.shape(ex["video"])[0], position, sampler, seed)
  frames = pipeline.decode_frames(tf.gather(ex["video"], indices))
  keys = tf.random.experimental.stateless_split(tf.stack([tf.constant(seed, tf.int64), position]), 4)
  shape = tf.shape(frames)
  h, w = tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32)
  if len(cfg.resize) == 2 and not any(cfg.scale_jitter):
    th, tw = tf.constant(float(cfg.resize[0])), tf.constant(float(cfg.resize[1]))
  else:                                                  # short side -> size, as pipeline.resize
    size = tf.constant(float(cfg.resize[0]))
    if any(cfg.scale_jitter):
      size = tf.cast(tf.random.stateless_uniform([], keys[0], cfg.scale_jitter[0],
                                                 cfg.scale_jitter[1] + 1, tf.int32), tf.float32)
    scale = size / tf.minimum(h, w)
    th, tw = tf.maximum(tf.round(h * scale), size), tf.maximum(tf.round(w * scale), size)
  y = tf.random.stateless_uniform([], keys[1], 0, tf.cast(th, tf.int32) - cfg.crop + 1, tf.int32)
  x = tf.random.stateless_uniform([], keys[2], 0, tf.cast(tw, tf.int32) - cfg.crop + 1, tf.int32)
  label = tf.cast(ex["label"], tf.int32)
  flip = tf.constant(False)
  if cfg.flip:
    flip = tf.random.stateless_uniform([], keys[3]) < 0.5
    label = tf.where(flip, tf.gather(tf.constant(source.flip_map), label), label)
  return {"video": crop_resize_normalize(frames, th, tw, y, x, flip, cfg), "label": label}


def crop_resize_normalize(frames, th, tw, y, x, flip, cfg):
  """uint8 [L,h,w,3] -> normalised float [L,crop,crop,3]: the crop at (y, x) of the frames
  bilinearly resized to (th, tw) (tf.image.resize's half-pixel grid, edge pixels repeated past the
  border), mirrored if ``flip``; only the crop is ever computed.

  Scale 1 (the stored frames already have the resize size, e.g. S=128 frames and resize 128x171):
  a uint8 slice. Otherwise the source window the crop needs is sliced (uint8), converted, given a
  one-pixel repeated border and sampled with one ``tf.image.crop_and_resize`` (bilinear; a box
  with swapped x ends mirrors it). Equal to tf.image.resize(antialias=True) then crop when
  upscaling or at scale 1; downscales are not antialiased (harmless for mild ones like
  256 -> 224; keep the antialiased path for large downscales).
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  crop = cfg.crop
  shape = tf.shape(frames)
  hi, wi = shape[1], shape[2]
  h, w = tf.cast(hi, tf.float32), tf.cast(wi, tf.float32)
  th, tw = tf.cast(th, tf.float32), tf.cast(tw, tf.float32)
  y, x = tf.cast(y, tf.int32), tf.cast(x, tf.int32)

  def same_size():
    v = frames[:, y:y + crop, x:x + crop]
    return tf.cast(tf.cond(flip, lambda: tf.reverse(v, [2]), lambda: v), tf.float32)

  def resized():
    sy, sx = th / h, tw / w
    # Crop pixel i is resized pixel y + i, centred at source row (y + i + 0.5) / sy - 0.5.
    y1 = (tf.cast(y, tf.float32) + 0.5) / sy - 0.5
    x1 = (tf.cast(x, tf.float32) + 0.5) / sx - 0.5
    y2, x2 = y1 + (crop - 1) / sy, x1 + (crop - 1) / sx
    r0 = tf.clip_by_value(tf.cast(tf.floor(y1), tf.int32), 0, hi - 1)
    c0 = tf.clip_by_value(tf.cast(tf.floor(x1), tf.int32), 0, wi - 1)
    r1 = tf.clip_by_value(tf.cast(tf.math.ceil(y2), tf.int32) + 1, r0 + 1, hi)
    c1 = tf.clip_by_value(tf.cast(tf.math.ceil(x2), tf.int32) + 1, c0 + 1, wi)
    win = tf.cast(frames[:, r0:r1, c0:c1], tf.float32)
    win = tf.concat([win[:, :1], win, win[:, -1:]], 1)            # repeat the edge pixels
    win = tf.concat([win[:, :, :1], win, win[:, :, -1:]], 2)
    wh, ww = tf.cast(tf.shape(win)[1] - 1, tf.float32), tf.cast(tf.shape(win)[2] - 1, tf.float32)
    by1, by2 = y1 - tf.cast(r0, tf.float32) + 1, y2 - tf.cast(r0, tf.float32) + 1
    bx1, bx2 = x1 - tf.cast(c0, tf.float32) + 1, x2 - tf.cast(c0, tf.float32) + 1
    by1, by2 = tf.clip_by_value(by1, 0.0, wh), tf.clip_by_value(by2, 0.0, wh)
    bx1, bx2 = tf.clip_by_value(bx1, 0.0, ww), tf.clip_by_value(bx2, 0.0, ww)
    bx1, bx2 = tf.where(flip, bx2, bx1), tf.where(flip, bx1, bx2)
    box = tf.stack([by1 / wh, bx1 / ww, by2 / wh, bx2 / ww])
    return tf.image.crop_and_resize(win, tf.tile(box[None], [shape[0], 1]), tf.range(shape[0]),
                                    [crop, crop])

  video = tf.cond(tf.logical_and(tf.equal(th, h), tf.equal(tw, w)), same_size, resized)
  mean = tf.tile(tf.constant(cfg.mean, tf.float32), [crop])
  inv_std = tf.tile(1.0 / tf.constant(cfg.std, tf.float32), [crop])
  return tf.reshape((tf.reshape(video, [-1, crop * 3]) - mean) * inv_std, [-1, crop, crop, 3])


# "sampled": None = train_dataset's default example_fn, pipeline._train_example.
VARIANTS = {"sampled": None, "decode_all": decode_all_example, "proposed": proposed_example}
