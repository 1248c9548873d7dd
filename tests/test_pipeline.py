"""The input pipeline on a tiny built synthetic dataset: shapes, determinism, resume positions,
process sharding, and exactly-once multi-view test batches."""
import chex
import numpy as np
import pytest

from conftest import tiny_config
from vidrec.data import datasets, modalities, pipeline


@pytest.fixture(scope="module")
def setup(data_dir):
  cfg = tiny_config(data_dir)
  builder = datasets.load_builder(cfg.dataset.name, data_dir)
  return cfg, pipeline.VideoSource(builder, "train"), pipeline.VideoSource(builder, "test")


def _batches(source, cfg, n, **kw):
  it = pipeline.train_dataset(source, cfg.input, global_batch=8, seed=0, **kw).as_numpy_iterator()
  return [next(it) for _ in range(n)]


def test_train_batches_shapes_and_determinism(setup):
  cfg, train, _ = setup
  a = _batches(train, cfg, 3)
  b = _batches(train, cfg, 3)
  chex.assert_shape(a[0]["video"], (8, 4, 24, 24, 3))
  assert a[0]["video"].dtype == np.uint8 and a[0]["label"].dtype == np.int32   # normalised on the device
  assert 0 <= a[0]["label"].min() and a[0]["label"].max() < train.num_classes
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x["video"], y["video"])
  assert not np.array_equal(a[0]["video"], a[1]["video"])



def test_per_example_function_is_a_parameter(setup):
  """``example_fn`` sees each clip with its stream position, record and sampled indices, and the
  JPEGs it is given are the record's frames at those indices."""
  import tensorflow as tf
  cfg, train, _ = setup

  def positions(clip, source, cfg_, seed):
    del source, cfg_, seed
    return {"video": tf.zeros([tf.shape(clip["indices"])[0], 2, 2, 3], tf.uint8),
            "label": tf.cast(clip["position"], tf.int32)}

  batch = _batches(train, cfg, 1, start_step=2, example_fn=positions)[0]
  np.testing.assert_array_equal(batch["label"], np.arange(16, 24))
  chex.assert_shape(batch["video"], (8, 4, 2, 2, 3))

  def frames(clip, source, cfg_, seed):
    """The record's frames (TFDS's own decoder) at ``indices`` minus the pipeline's decoded JPEGs."""
    del cfg_, seed
    video = tf.numpy_function(lambda r: source.features.deserialize_example(source.read(r))["video"],
                              [clip["record"]], tf.uint8, stateful=False)
    diff = tf.gather(video, clip["indices"]) - modalities.decode_frames(clip["jpegs"]["video"])
    return {"video": tf.ensure_shape(diff, [None, None, None, 3]), "label": clip["label"]}

  batch = _batches(train, cfg, 1, example_fn=frames)[0]
  assert batch["video"].size and not batch["video"].any()
  record = lambda clip, *_: {"video": tf.zeros([1, 1, 1, 3], tf.uint8), "label": clip["record"]}
  records = _batches(train, cfg, 1, example_fn=record)[0]["label"]
  np.testing.assert_array_equal(batch["label"], np.asarray(_labels_of(train))[records])


def test_record_parser_reads_label_and_streams_and_names_what_is_missing(setup):
  _, train, _ = setup
  record = train.read(0)
  label, (jpegs,) = pipeline.parse_record(record, ["video"])
  ex = train.parse(record)
  assert label == int(ex["label"]) and len(jpegs) == int(ex["num_frames"])
  with pytest.raises(ValueError, match="flow_x"):
    pipeline.parse_record(record, ["flow_x"])
  with pytest.raises(ValueError, match="unreadable record"):
    pipeline.parse_record(record[:len(record) // 2], ["video"])


def test_resume_start_step_continues_the_stream(setup):
  cfg, train, _ = setup
  full = _batches(train, cfg, 8)       # 64 positions > 48 videos: crosses an epoch boundary
  resumed = _batches(train, cfg, 3, start_step=5)
  for x, y in zip(full[5:], resumed):
    np.testing.assert_array_equal(x["video"], y["video"])
    np.testing.assert_array_equal(x["label"], y["label"])


def test_epoch_visits_every_video_once(setup):
  cfg, train, _ = setup
  cfg = cfg.copy_and_resolve_references()
  cfg.input.flip = False
  labels = np.concatenate([b["label"] for b in _batches(train, cfg, 6)])  # 48 = one epoch
  counts = np.bincount(labels, minlength=train.num_classes)
  ref = np.bincount(_labels_of(train), minlength=train.num_classes)
  np.testing.assert_array_equal(counts, ref)


def _labels_of(source):
  import tensorflow as tf
  return [int(source.parse(tf.constant(source.read(i)))["label"]) for i in range(len(source))]


def test_processes_split_the_global_batch(setup):
  cfg, train, _ = setup
  single = _batches(train, cfg, 2)
  p0 = _batches(train, cfg, 2, process_index=0, process_count=2)
  p1 = _batches(train, cfg, 2, process_index=1, process_count=2)
  for s, a, b in zip(single, p0, p1):
    np.testing.assert_array_equal(s["video"], np.concatenate([a["video"], b["video"]]))


def test_eval_yields_every_view_once_with_padding(setup):
  cfg, _, test = setup
  seen = []
  for p in range(2):
    ds = pipeline.eval_dataset(test, cfg.input, global_batch=10, process_index=p, process_count=2)
    batches = list(pipeline.padded_batches(ds, 5))
    assert all(b["video"].shape == (5, 4, 24, 24, 3) for b in batches)
    assert not batches[-1]["mask"].all()        # 24 videos x 6 views / 2 processes = 72 = 14*5 + 2
    for b in batches:
      seen += list(zip(b["video_index"][b["mask"]], b["view_index"][b["mask"]]))
  views = 2 * 3                                  # 2 clips x 3 crops
  assert len(seen) == len(set(seen)) == len(test) * views
  assert set(seen) == {(v, k) for v in range(len(test)) for k in range(views)}


def test_flip_requires_a_label_map(setup):
  cfg, train, _ = setup
  assert sorted(train.flip_map) == list(range(train.num_classes))
  assert (train.flip_map != np.arange(train.num_classes)).any()   # left/right classes swap
  train_no_map = pipeline.VideoSource.__new__(pipeline.VideoSource)
  train_no_map.flip_map = None
  with pytest.raises(ValueError, match="input.flip=False"):
    pipeline.check_flip(cfg.input, train_no_map)


def test_non_overlapping_sampler_every_clip_once_per_epoch(setup):
  """``sampler=non_overlapping`` (SGN Sec. IV-B): an epoch is every non-overlapping clip of every video
  exactly once (``clip_items``), each position reads its own clip, and a resumed stream is identical."""
  import tensorflow as tf
  cfg, train, _ = setup
  cfg = cfg.copy_and_resolve_references()
  cfg.input.update(sampler="non_overlapping", flip=False)
  span = cfg.input.clip_len * cfg.input.stride
  records = [train.parse(tf.constant(train.read(i))) for i in range(len(train))]
  lengths = [int(r["num_frames"]) for r in records]
  expected = {(v, k * span) for v, n in enumerate(lengths) for k in range(max(1, n // span))}
  items = pipeline.clip_items(train, pipeline.make_sampler(cfg.input), cfg.input)
  assert len(items) == len(expected) > len(train)       # 12-24 frames, span 8: 1-3 clips a video
  assert {(int(v), int(k) * span) for v, k in items} == expected

  def probe(clip, source, cfg_, seed):
    """video index as the label, the sampled frame indices as the video."""
    del source, cfg_, seed
    return {"video": tf.tile(tf.cast(tf.reshape(clip["indices"], [-1, 1, 1, 1]), tf.float32), [1, 1, 1, 3]),
            "label": clip["record"]}

  m = len(expected)
  batches = _batches(train, cfg, -(-m // 8) + 1, example_fn=probe)
  video = np.concatenate([b["video"][:, :, 0, 0, 0] for b in batches]).astype(int)
  label = np.concatenate([b["label"] for b in batches])
  np.testing.assert_array_equal(video[:, 1:] - video[:, :-1], cfg.input.stride)  # one dense clip each
  assert sorted((int(v), int(s)) for v, s in zip(label[:m], video[:m, 0])) == sorted(expected)
  resumed = _batches(train, cfg, 2, start_step=3, example_fn=probe)
  for x, y in zip(batches[3:5], resumed):
    np.testing.assert_array_equal(x["video"], y["video"])
    np.testing.assert_array_equal(x["label"], y["label"])
