"""The input pipeline: example index -> raw record, parsed on the host -> sampled frame indices and
their JPEGs (``VideoSource.sampled``, one ``tf.numpy_function``) -> decode those frames only -> crop
(of the frames as resized, computed from the crop's source window only; ``vidrec.data.crops``) ->
flip -> local batch (numpy, uint8 0-255). ``vidrec.parallel`` turns local batches into sharded
global arrays; the jitted steps normalise them (``modalities.model_input``).

Training order is a pure function of (seed, position): global position ``p`` of the example stream is
video ``perm_e[p mod n]`` of epoch ``e = p // n`` (a fresh permutation per epoch), and its sampling and
augmentation are seeded by ``(seed, p)``. With a sampler of fixed training clips (``non_overlapping``)
the epoch's items are the (video, clip) pairs of ``clip_items`` instead of the videos. Step ``s`` of
process ``k`` reads positions ``s*B + k*b ... s*B + (k+1)*b - 1`` (global batch B, local batch b), so
a run resumed at step ``s`` sees exactly the batches the uninterrupted run would have: the iterator's
state is the step number.

Test order: each process takes every P-th video, expands it into all its views (temporal clips x
spatial crops) and yields them in order with ``video_index``/``view_index``; the last batch is padded
and ``mask`` marks the real views.
"""
from __future__ import annotations

from concurrent import futures
import dataclasses
import functools
from typing import Callable, Iterable, Iterator, Sequence

from google.protobuf import message
import ml_collections
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from vidrec.data import crops, modalities, samplers
from vidrec.data.modalities import decode_frames  # noqa: F401 (re-exported)
from vidrec.errors import UserError

AUTOTUNE = tf.data.AUTOTUNE


class VideoSource:
  """Random access to one split of a prepared vidrec TFDS dataset."""

  def __init__(self, builder: tfds.core.DatasetBuilder, split: str):
    if split.split("[")[0] not in builder.info.splits:   # TFDS slicing ("train[:25%]") is allowed
      raise UserError(f"Split {split!r} not in dataset {builder.info.full_name}; "
                       f"available: {sorted(builder.info.splits)}")
    self.split = split
    self.records = builder.as_data_source(
        split, deserialize_method=tfds.decode.DeserializeMethod.RAW_BYTES)
    self.features = builder.info.features
    self.class_names: list[str] = list(self.features["label"].names)
    flip_map = getattr(builder, "flip_label_map", lambda: list(range(len(self.class_names))))()
    self.flip_map = None if flip_map is None else np.asarray(flip_map, np.int32)

  @property
  def num_classes(self) -> int:
    return len(self.class_names)

  def __len__(self) -> int:
    return len(self.records)

  def read(self, index: np.ndarray) -> bytes:
    return self.records[int(index)]

  def parse(self, serialized: tf.Tensor) -> dict[str, tf.Tensor]:
    """Deserialises one record without decoding its frames: ``video`` (and any flow plane) is a
    string[T] of JPEGs."""
    skip = {k: tfds.decode.SkipDecoding() for k, f in self.features.items()
            if isinstance(f, tfds.features.Video)}
    return self.features.deserialize_example(serialized, decoders=skip)

  def sampled(self, index: int, keys: Sequence[str], pick: Callable[[int], np.ndarray]
              ) -> tuple[np.ndarray, ...]:
    """Record ``index``, parsed on the host, as a flat tuple for ``tf.numpy_function``: its label,
    the frame indices ``pick(num_frames)`` chooses (any shape; ``num_frames`` counts the entries of
    the first of ``keys``) and, per stream of ``keys``, the JPEGs at those indices (flattened, a bytes
    object array). Only the sampled frames enter TF: converting a whole record (~164 frames to use
    8) to a string tensor and parsing it there cost ~10% of a segment clip's time
    (docs/throughput.md)."""
    label, streams = parse_record(self.read(index), keys)
    indices = np.asarray(pick(len(streams[0])), np.int32)
    flat = indices.reshape(-1)
    return (label, indices, *(np.array([s[i] for i in flat], object) for s in streams))


def parse_record(record: bytes, keys: Sequence[str]) -> tuple[np.int32, list[Sequence[bytes]]]:
  """A serialised ``tf.train.Example`` of the vidrec layout -> (label, the bytes lists of ``keys``),
  with protobuf's parser (no TF op). Raises ``ValueError`` for a record that does not parse or
  lacks one of them."""
  try:
    feature = tf.train.Example.FromString(record).features.feature
  except message.DecodeError as e:
    raise ValueError(f"unreadable record: {e}") from e
  missing = [k for k in ("label", *keys) if k not in feature]
  if missing:
    raise ValueError(f"record has no {missing} feature (has {sorted(feature)})")
  return np.int32(feature["label"].int64_list.value[0]), [feature[k].bytes_list.value for k in keys]


def resize(frames: tf.Tensor, size) -> tf.Tensor:
  """Whole frames [L,H,W,C] resized (float32 out; ``crops.resized_size`` says the size): the reference
  the pipeline's crops equal (up to rounding to uint8); the pipeline itself never resizes whole frames."""
  th, tw = crops.resized_size(tf.shape(frames)[1], tf.shape(frames)[2], size)
  return tf.image.resize(tf.cast(frames, tf.float32), tf.stack([th, tw]), antialias=True)


def make_sampler(cfg: ml_collections.ConfigDict) -> samplers.TemporalSampler:
  return samplers.TEMPORAL_SAMPLERS.get(cfg.sampler)(**cfg.to_dict())


def check_flip(cfg: ml_collections.ConfigDict, source: VideoSource) -> None:
  if cfg.flip and source.flip_map is None:
    raise UserError("input.flip=True but this dataset has no horizontal-flip label map "
                     "(flipping would change labels): set --config.input.flip=False.")


def train_indices(sampler: samplers.TemporalSampler, num_frames: int, position: int,
                  seed: int) -> np.ndarray:
  """The training sampler's frame indices for the example at ``position``: its fixed clip
  (``sampler.at_position``) or a draw seeded by (seed, position)."""
  if sampler.at_position is not None:
    return sampler.at_position(num_frames, position)
  return sampler.train(num_frames, np.random.default_rng([seed, position]))


def clip_items(source: VideoSource, sampler: samplers.TemporalSampler,
               cfg: ml_collections.ConfigDict) -> np.ndarray:
  """The (video, clip) pairs of a sampler with fixed training clips: int64[M, 2], videos in order.

  Reads every record of the split once (frame counts; no frame is decoded). A record that cannot be
  parsed counts as one clip (reading it in training then takes the usual unreadable-video path)."""
  keys = modalities.get(cfg, source.features).features

  def count(i: int) -> int:
    try:
      return len(sampler.train_clips(len(parse_record(source.read(i), keys)[1][0])))
    except (OSError, ValueError):
      return 1

  with futures.ThreadPoolExecutor() as pool:
    counts = np.array(list(pool.map(count, range(len(source)))), np.int64)
  return np.stack([np.repeat(np.arange(len(source)), counts),
                   np.concatenate([np.arange(c) for c in counts])], axis=1)


def augment_train(frames: tf.Tensor, label: tf.Tensor, position: tf.Tensor, source: VideoSource,
                  cfg: ml_collections.ConfigDict, seed: int) -> dict[str, tf.Tensor]:
  """uint8 [L,H,W,C] frames -> uint8 [L,crop,crop,C]: a random crop of the frames as resized to
  ``input.resize`` (short side jittered by ``input.scale_jitter``), or TSN's multi-scale corner crop
  (``input.multiscale_crop``), computed from the crop's source window only (``vidrec.data.crops``);
  a flip with the label map. Every random choice is seeded by (seed, position)."""
  modality = modalities.get(cfg)
  key = tf.stack([tf.constant(seed, tf.int64), position])
  keys = tf.random.experimental.stateless_split(key, 3)
  size = cfg.resize
  if any(cfg.scale_jitter):
    lo, hi = cfg.scale_jitter
    size = tf.random.stateless_uniform([], keys[0], lo, hi + 1, tf.int32)
  th, tw = crops.resized_size(tf.shape(frames)[1], tf.shape(frames)[2], size)
  if cfg.get("multiscale_crop"):
    frames = crops.box_of_resized(frames, (th, tw), multiscale_box(th, tw, cfg.multiscale_crop, keys[1]),
                                  cfg.crop)
  else:
    check = tf.debugging.assert_less_equal(
        cfg.crop, tf.minimum(th, tw), message=f"input.crop={cfg.crop} is larger than the resized frames: "
                                              f"raise input.resize or lower input.crop")
    with tf.control_dependencies([check]):
      yx = tf.random.stateless_uniform([2], keys[1], 0, 1 << 30, tf.int32) % tf.stack(
          [th - cfg.crop + 1, tw - cfg.crop + 1])
    frames = crops.crop_of_resized(frames, (th, tw), yx[0], yx[1], cfg.crop)
  label = tf.cast(label, tf.int32)
  if cfg.flip:
    flip = tf.random.stateless_uniform([], keys[2]) < 0.5
    frames = tf.cond(flip, lambda: modality.flip(frames), lambda: frames)
    label = tf.where(flip, tf.gather(tf.constant(source.flip_map), label), label)
  return {"video": tf.ensure_shape(frames, [None, cfg.crop, cfg.crop, modality.channels(cfg)]),
          "label": label}


def multiscale_box(h: tf.Tensor, w: tf.Tensor, scales, key: tf.Tensor) -> tf.Tensor:
  """TSN's multi-scale corner crop (tsn-pytorch ``GroupMultiScaleCrop``, ``more_fix_crop``) of an
  h x w frame: the box int32 (y, x, bh, bw) with side lengths ``scales`` x short side and at most one
  step of aspect distortion, at one of 13 fixed positions (corners, centre, edge midpoints, quarter
  points); ``crops.box_of_resized`` resizes it to the crop size."""
  sizes = tf.cast(tf.cast(tf.minimum(h, w), tf.float32) * tf.constant(scales, tf.float32), tf.int32)
  pairs = tf.constant([(i, j) for i in range(len(scales)) for j in range(len(scales)) if abs(i - j) <= 1])
  grid = tf.constant([(0, 0), (4, 0), (0, 4), (4, 4), (2, 2), (0, 2), (4, 2), (2, 4), (2, 0),
                      (1, 1), (3, 1), (1, 3), (3, 3)])            # (x, y) in quarters of the free space
  k = tf.random.stateless_uniform([2], key, 0, 1 << 30, tf.int32)
  pair, pos = pairs[k[0] % tf.shape(pairs)[0]], grid[k[1] % 13]
  ch, cw = tf.minimum(sizes[pair[0]], h), tf.minimum(sizes[pair[1]], w)
  return tf.stack([pos[1] * ((h - ch) // 4), pos[0] * ((w - cw) // 4), ch, cw])


def _train_example(clip: dict, source: VideoSource, cfg: ml_collections.ConfigDict,
                   seed: int) -> dict[str, tf.Tensor]:
  frames = modalities.get(cfg).decode(clip["jpegs"], cfg)
  return augment_train(frames, clip["label"], clip["position"], source, cfg, seed)


def train_dataset(source: VideoSource, cfg: ml_collections.ConfigDict, *, global_batch: int,
                  seed: int, start_step: int = 0, process_index: int = 0, process_count: int = 1,
                  example_fn: Callable[..., dict[str, tf.Tensor]] | None = None) -> tf.data.Dataset:
  """Infinite dataset of this process's local training batches, starting at ``start_step``.

  ``example_fn(clip, source, cfg, seed) -> {"video", "label"}`` makes one example (default
  :func:`_train_example`: decode, crop, flip) from ``clip``: ``jpegs`` (the modality's streams at the
  sampled indices, string[K] each), ``indices`` (int32[K]), ``label``, ``position`` (in the stream)
  and ``record`` (the index of the video read)."""
  example_fn = example_fn or _train_example
  check_flip(cfg, source)
  keys = modalities.get(cfg, source.features).features
  local = global_batch // process_count
  sampler = make_sampler(cfg)
  items = None if sampler.train_clips is None else clip_items(source, sampler, cfg)
  n = len(source) if items is None else len(items)

  @functools.lru_cache(maxsize=2)
  def permutation(epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch, 7]).permutation(n)

  def item(position: int, shift: int = 0) -> int:
    epoch, i = divmod(position, n)
    return int(permutation(epoch)[(i + shift) % n])

  def video(k: int) -> int:
    return k if items is None else int(items[k, 0])

  if items is not None:
    clips_of = sampler.train_clips

    def at_position(frames: int, position: int) -> np.ndarray:
      """The clip of the position's own item (modulo the clip count of a replacement video)."""
      clips = clips_of(frames)
      return clips[items[item(position), 1] % len(clips)]

    sampler = dataclasses.replace(sampler, at_position=at_position)

  def read(counter: np.ndarray, shift: np.ndarray) -> tuple[np.ndarray, ...]:
    """The index of the record ``shift`` items after this position's item in the epoch's order, the
    position, the position's own video index when ``shift`` > 0 (it was unreadable) else -1, then
    the record sampled (``VideoSource.sampled``)."""
    step, j = divmod(int(counter), local)
    position = step * global_batch + process_index * local + j
    bad = video(item(position)) if shift else -1
    record = video(item(position, int(shift)))
    sampled = source.sampled(record, keys, lambda frames: train_indices(sampler, frames, position, seed))
    return (np.int32(record), np.int64(position), np.int32(bad), *sampled)

  def example(counter: tf.Tensor, shift: tf.Tensor) -> dict[str, tf.Tensor]:
    record, position, bad, label, indices, *jpegs = tf.numpy_function(
        read, [counter, shift], (tf.int32, tf.int64, tf.int32, tf.int32, tf.int32) + (tf.string,) * len(keys),
        stateful=False)
    clip = {"jpegs": {k: tf.ensure_shape(v, [None]) for k, v in zip(keys, jpegs)},
            "indices": tf.ensure_shape(indices, [None]), "label": tf.reshape(label, []),
            "position": tf.reshape(position, []), "record": tf.reshape(record, [])}
    return {**example_fn(clip, source, cfg, seed), "unreadable": tf.reshape(bad, [])}

  ds = tf.data.Dataset.range(start_step * local, 2**62)
  ds = ds.interleave(lambda c: readable_example(c, example), num_parallel_calls=AUTOTUNE,
                     deterministic=True)
  return ds.batch(local, drop_remainder=True).prefetch(cfg.get("prefetch", 2))


MAX_UNREADABLE_IN_A_ROW = 8


def readable_example(counter: tf.Tensor, example) -> tf.data.Dataset:
  """Exactly one example for the stream position ``counter``: ``example(counter, 0)``, or, when that
  raises (frames that do not decode, an unreadable record), ``example(counter, k)`` for the first of
  k = 1, 2, ... that works: the next videos of the epoch's order, with the position's own random seed,
  so batches keep their shape and a resumed run sees the same replacements. ``unreadable`` is the
  video index that was replaced (-1: none). After ``MAX_UNREADABLE_IN_A_ROW`` failures the error of
  ``example(counter, 0)`` itself is raised (a systematic fault, e.g. a crop larger than the frames)."""
  candidates = tf.data.Dataset.range(MAX_UNREADABLE_IN_A_ROW).map(lambda k: example(counter, k))
  surfaces_error = tf.data.Dataset.range(1).map(lambda k: example(counter, k))
  return candidates.ignore_errors().concatenate(surfaces_error).take(1)


def test_views(frames: tf.Tensor, num_clips: tf.Tensor, cfg: ml_collections.ConfigDict) -> tf.Tensor:
  """All test views of one video from its decoded, sampled frames (uint8 [num_clips * L, H, W, C] as the
  modality assembles them, clip-major): uint8 [V, L, crop, crop, C], V = num_clips x spatial views,
  clip-major (view = clip * num_crops + crop). Each view is a crop of the frames as resized to
  ``input.resize``, computed from its source window only, flipped where the scheme says. Evaluation
  (``eval_dataset``) and ``vidrec.tools.predict`` (video files) both build their views here."""
  modality = modalities.get(cfg)
  channels = modality.channels(cfg)
  h, w = tf.shape(frames)[1], tf.shape(frames)[2]
  th, tw = crops.resized_size(h, w, cfg.resize)
  frames = tf.reshape(frames, [num_clips, -1, h, w, channels])
  boxes = tf.numpy_function(
      lambda hh, ww: samplers.spatial_views(int(hh), int(ww), cfg.crop, cfg.test_spatial,
                                            cfg.test_flip), [th, tw], tf.int32, stateful=False)
  boxes = tf.reshape(boxes, [-1, 3])

  def view(k, c):
    y, x, f = boxes[c, 0], boxes[c, 1], boxes[c, 2]
    v = crops.crop_of_resized(frames[k], (th, tw), y, x, cfg.crop)
    return tf.cond(f > 0, lambda: modality.flip(v), lambda: v)

  num_crops = tf.shape(boxes)[0]
  k, c = tf.meshgrid(tf.range(num_clips), tf.range(num_crops), indexing="ij")
  k, c = tf.reshape(k, [-1]), tf.reshape(c, [-1])
  return tf.map_fn(lambda kc: view(kc[0], kc[1]), (k, c),
                   fn_output_signature=tf.TensorSpec([None, cfg.crop, cfg.crop, channels], tf.uint8))


def _test_views(label: tf.Tensor, clips: tf.Tensor, jpegs: dict[str, tf.Tensor],
                video_index: tf.Tensor, cfg: ml_collections.ConfigDict):
  """``test_views`` of one record (``clips``: the test sampler's int32 [num_clips, L] indices, ``jpegs``
  the streams at them) plus per-view ids."""
  videos = test_views(modalities.get(cfg).decode(jpegs, cfg), tf.shape(clips)[0], cfg)
  num_views = tf.shape(videos)[0]
  return {"video": videos, "label": tf.fill([num_views], label),
          "video_index": tf.fill([num_views], tf.cast(video_index, tf.int32)),
          "view_index": tf.range(num_views, dtype=tf.int32)}


def eval_dataset(source: VideoSource, cfg: ml_collections.ConfigDict, *, global_batch: int,
                 process_index: int = 0, process_count: int = 1) -> tf.data.Dataset:
  """Finite dataset of this process's share of the test views, batched (the last batch may be short).
  Videos that cannot be read or decoded are left out."""
  local = global_batch // process_count
  sampler = make_sampler(cfg)
  keys = modalities.get(cfg, source.features).features

  def views(i: tf.Tensor) -> dict[str, tf.Tensor]:
    label, clips, *jpegs = tf.numpy_function(lambda j: source.sampled(int(j), keys, sampler.test),
                                             [i], (tf.int32, tf.int32) + (tf.string,) * len(keys),
                                             stateful=False)
    return _test_views(tf.reshape(label, []), tf.ensure_shape(clips, [None, None]),
                       {k: tf.ensure_shape(v, [None]) for k, v in zip(keys, jpegs)}, i, cfg)

  ds = tf.data.Dataset.from_tensor_slices(np.arange(process_index, len(source), process_count))
  ds = ds.map(views, num_parallel_calls=AUTOTUNE)
  ds = ds.ignore_errors()     # a video whose frames do not decode is left out (evaluate reports it)
  return ds.unbatch().batch(local).prefetch(cfg.get("prefetch", 2))


def padded_batches(ds: tf.data.Dataset | Iterable[dict[str, np.ndarray]],
                   batch_size: int) -> Iterator[dict[str, np.ndarray]]:
  """Numpy batches of exactly ``batch_size`` rows from a dataset (or an iterable of numpy batches) of at
  most that many; a short batch is zero-padded, ``mask`` marks the real rows."""
  for batch in (ds.as_numpy_iterator() if isinstance(ds, tf.data.Dataset) else ds):
    n = len(batch["label"])
    batch = {k: np.concatenate([v, np.zeros((batch_size - n,) + v.shape[1:], v.dtype)])
             for k, v in batch.items()}
    batch["mask"] = np.arange(batch_size) < n
    yield batch
