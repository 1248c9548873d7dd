"""Optical flow (vidrec.data.flow), ``prepare --flow`` on folder fixtures and the flow input pipeline."""
from __future__ import annotations

import json
from pathlib import Path
import sys

import chex
import numpy as np
import pytest
import tensorflow as tf

sys.path.insert(0, str(Path(__file__).parent))
import fixtures_video as fx  # noqa: E402  pylint: disable=g-import-not-at-top

from vidrec.config import base_config  # noqa: E402
from vidrec.data import flow, modalities, pipeline, prepare  # noqa: E402
from vidrec.data.builders import BUILDERS  # noqa: E402

cv2 = pytest.importorskip("cv2", reason="the flow extra is not installed")


def _texture(size: int = 80, seed: int = 0) -> np.ndarray:
  rng = np.random.default_rng(seed)
  tex = cv2.GaussianBlur(rng.uniform(0, 255, (size, size)).astype(np.float32), (0, 0), 2.0)
  return (255 * (tex - tex.min()) / (tex.max() - tex.min())).astype(np.uint8)


def test_quantisation_round_trip_and_clipping():
  field = np.random.default_rng(0).uniform(-25, 25, (4, 6, 2)).astype(np.float32)
  q = flow.quantize(field)
  assert q.dtype == np.uint8
  back = flow.dequantize(q)
  inside = np.abs(field) <= flow.BOUND
  assert np.abs(back - field)[inside].max() <= 40 / 255
  np.testing.assert_allclose(back[~inside], np.sign(field[~inside]) * flow.BOUND, atol=1e-4)
  assert flow.quantize(np.float32([0.0])) == 128 and flow.quantize(np.float32([-20.0])) == 0


def test_flipped_flow_inverts_x_only():
  q = np.random.default_rng(0).integers(0, 256, (2, 5, 7, 6)).astype(np.float32)   # [K, H, W, 2L], L = 3
  flipped = modalities.flip_flow(tf.constant(q)).numpy()
  np.testing.assert_array_equal(flipped[..., 1::2], q[:, :, ::-1, 1::2])            # y: mirrored only
  np.testing.assert_array_equal(flipped[..., 0::2], 255 - q[:, :, ::-1, 0::2])      # x: mirrored, inverted
  # In flow units the inverted x is exactly -dx of the quantised field.
  np.testing.assert_allclose(flow.dequantize(flipped[..., 0::2].astype(np.uint8)),
                             -flow.dequantize(q[:, :, ::-1, 0::2].astype(np.uint8)), atol=1e-5)


def test_tvl1_recovers_a_known_translation():
  tex = _texture()
  prev, nxt = tex[10:58, 10:58], tex[11:59, 8:56]      # content moves 2 px right and 1 px up
  field = flow.tvl1(prev, nxt)
  assert field.shape == (48, 48, 2) and field.dtype == np.float32
  dx, dy = np.median(field[8:-8, 8:-8], axis=(0, 1))
  assert abs(dx - 2.0) < 0.5 and abs(dy + 1.0) < 0.5


def test_warped_flow_of_a_camera_pan_is_near_zero():
  tex = _texture(seed=1)
  prev, nxt = tex[10:58, 10:58], tex[12:60, 7:55]      # the whole scene pans: camera motion only
  field = flow.tvl1(prev, nxt)
  warped = flow.warped_tvl1(prev, nxt, field)
  assert np.abs(field[8:-8, 8:-8]).mean() > 1.5
  assert np.abs(warped[8:-8, 8:-8]).mean() < 0.1
  np.testing.assert_allclose(flow.homography(prev, nxt, field)[:2, 2], [3.0, -2.0], atol=0.2)


def test_extract_shapes():
  frames = np.repeat(_texture()[None, :32, :40, None], 3, axis=-1)
  frames = np.concatenate([frames, np.roll(frames, 1, axis=2), np.roll(frames, 2, axis=2)])
  out = flow.extract(frames, warped=True)
  assert set(out) == {"flow", "warped_flow"}
  chex.assert_shape([out["flow"], out["warped_flow"]], [(2, 32, 40, 2)] * 2)
  with pytest.raises(ValueError, match="clip_a.*at least 2 frames"):
    flow.extract(frames[:1], name="clip_a")
  with pytest.raises(ValueError, match="unknown"):
    flow.extract(frames, algorithm="farneback")


def test_stack_flow_channel_order():
  x = tf.constant(np.arange(6, dtype=np.uint8).reshape(6, 1, 1, 1))           # field index as value
  y = x + 100
  stacked = modalities.stack_flow(x, y, 3).numpy()                            # 2 snippets of L = 3
  np.testing.assert_array_equal(stacked[:, 0, 0], [[0, 100, 1, 101, 2, 102], [3, 103, 4, 104, 5, 105]])


def test_missing_extra_names_it(monkeypatch, capsys, tmp_path):
  monkeypatch.setitem(sys.modules, "cv2", None)
  with pytest.raises(ImportError, match=r"\.\[flow\]"):
    flow.require_cv2()
  fx.write_video(tmp_path / "m/a/x.mp4", codec="libx264")
  assert prepare.main(["video_folder", "--name", "f", "--manual_dir", str(tmp_path / "m"),
                       "--data_dir", str(tmp_path / "d"), "--flow", "tvl1"]) == 2
  assert ".[flow]" in capsys.readouterr().err


@pytest.fixture(scope="module")
def flow_folder(tmp_path_factory):
  """``prepare video_folder --flow tvl1 --warped_flow`` on the split-folder fixtures (16 px)."""
  root = tmp_path_factory.mktemp("flowdata")
  fx.make_video_folder_splits(root / "m")
  argv = ["video_folder", "--name", "flows", "--manual_dir", str(root / "m"), "--data_dir",
          str(root / "d"), "--short_side", "16", "--workers", "2", "--flow", "tvl1", "--warped_flow"]
  return root / "d", argv


@pytest.mark.slow
def test_prepare_with_flow_on_folder_fixtures(flow_folder, capsys):
  data_dir, argv = flow_folder
  assert prepare.main(argv) == 0
  summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
  assert summary["written"] == {"train": 6, "validation": 3}
  assert summary["flow"]["algorithm"] == "tvl1" and summary["flow"]["warped"]
  assert summary["flow"]["backend"] == flow.default_backend() == "jax"
  assert summary["flow"]["params"]["nscales"] == 5 and summary["flow"]["bound"] == 20.0
  builder = BUILDERS["video_folder"](config="flows", data_dir=data_dir)
  assert builder.flow == "tvl1" and builder.warped_flow            # restored from the record
  source = pipeline.VideoSource(builder, "train")
  ex = source.parse(source.read(np.int64(0)))
  frames = pipeline.decode_frames(ex["video"]).numpy()
  for stream in ("flow", "warped_flow"):
    planes = [modalities.decode_grey(ex[f"{stream}_{c}"]).numpy()[..., 0] for c in "xy"]
    assert planes[0].shape == (frames.shape[0] - 1,) + frames.shape[1:3]
  # The stored field is the TV-L1 flow of the stored frames (up to JPEG: a few grey levels).
  want = flow.extract(frames)["flow"][0].astype(np.float32)
  got = np.stack([modalities.decode_grey(ex[f"flow_{c}"][:1]).numpy()[0, ..., 0] for c in "xy"], -1)
  assert np.abs(got - want).mean() < 3.0
  # The OpenCV backend (in the workers) writes the same records, up to JPEG and a grey level.
  ref_argv = [a.replace("flows", "flows_cv") for a in argv] + ["--flow_backend", "opencv"]
  assert prepare.main(ref_argv) == 0
  assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["flow"]["backend"] == "opencv"
  ref = pipeline.VideoSource(BUILDERS["video_folder"](config="flows_cv", data_dir=data_dir), "train")
  ref_ex = ref.parse(ref.read(np.int64(0)))
  for key in ("video_id", "num_frames"):
    assert ref_ex[key].numpy() == ex[key].numpy()
  for key in ("flow_x", "flow_y", "warped_flow_x", "warped_flow_y"):
    a, b = (modalities.decode_grey(e[key]).numpy().astype(np.float32) for e in (ex, ref_ex))
    assert np.abs(a - b).mean() < 0.5


def _flow_cfg(modality: str):
  c = base_config().input
  c.update(sampler="segments", num_segments=2, frames_per_segment=3, resize=(16,), crop=14, flip=True)
  c.modality, c.num_test_segments = modality, 5
  return c


def test_flow_pipeline_shapes_channels_and_errors(flow_folder, capsys):
  data_dir, argv = flow_folder
  prepare.main(argv)          # reuses the prepared data when the previous test ran
  capsys.readouterr()
  builder = BUILDERS["video_folder"](config="flows", data_dir=data_dir)
  source = pipeline.VideoSource(builder, "train")
  for modality in ("flow", "warped_flow"):
    cfg = _flow_cfg(modality)
    batch = next(pipeline.train_dataset(source, cfg, global_batch=4, seed=0).as_numpy_iterator())
    chex.assert_shape(batch["video"], (4, 2, 14, 14, 6))
    assert batch["video"].dtype == np.uint8                       # (v - 128) / 128 on the device
    views = next(pipeline.eval_dataset(source, cfg, global_batch=2).as_numpy_iterator())
    chex.assert_shape(views["video"], (2, 5, 14, 14, 6))           # one view of 5 test snippets
    from vidrec import trainer  # pylint: disable=g-import-not-at-top
    config = base_config()
    config.input = cfg
    assert trainer.input_shape(config, 4) == (4, 2, 14, 14, 6)
    assert trainer.input_shape(config, 2, test=True) == (2, 5, 14, 14, 6)
  # The x/y channel order of a test snippet: the stored planes at the sampled indices, interleaved.
  cfg = _flow_cfg("flow")
  cfg.num_test_segments = 1
  ex = source.parse(source.read(np.int64(0)))
  n = int(ex["flow_x"].shape[0])
  idx = pipeline.make_sampler(cfg).test(n)[0]
  planes = [modalities.decode_grey(tf.gather(ex[f"flow_{c}"], idx)).numpy()[..., 0].astype(np.float32) for c in "xy"]
  view = next(pipeline.eval_dataset(source, cfg, global_batch=1).as_numpy_iterator())["video"][0, 0]
  stack = np.stack([planes[i % 2][i // 2] for i in range(6)], -1)    # stored at 16 x 20: no resize
  np.testing.assert_array_equal(view, stack[1:15, 3:17])   # centre crop
  rgb_only = pipeline.VideoSource(BUILDERS["video_folder"](config="flows", data_dir=data_dir), "train")
  rgb_only.features = {k: v for k, v in rgb_only.features.items() if "flow" not in k}
  with pytest.raises(ValueError, match="--flow tvl1"):
    modalities.get(cfg, rgb_only.features)
  dense = base_config().input
  dense.modality = "flow"
  with pytest.raises(ValueError, match="segments"):
    modalities.get(dense)


def test_extract_many_splits_shared_batches_per_video():
  tex = _texture()
  videos = [np.stack([tex[i:i + 16, i:i + 20] for i in range(n)]) for n in (3, 2)]
  videos.insert(1, np.stack([tex[i:i + 18, 2 * i:2 * i + 18] for i in range(4)]))   # another size
  many = flow.extract_many(videos, warped=True)
  for video, out in zip(videos, many):
    one = flow.extract(video, warped=True)
    assert set(out) == set(one) == {"flow", "warped_flow"}
    for stream in out:
      np.testing.assert_array_equal(out[stream], one[stream])
      assert out[stream].shape == (len(video) - 1,) + video.shape[1:] + (2,)


def test_parent_flow_keeps_order_streams_and_skips_bad_videos():
  from vidrec.data.builders import common, decode  # pylint: disable=g-import-not-at-top
  tex = _texture()
  task = lambda name: decode.VideoTask(source=name, label=0, video_id=name, short_side=16, jpeg_quality=90,
                                       flow="tvl1", flow_backend="opencv")
  grey = np.stack([tex[i:i + 16, i:i + 16] for i in range(3)])
  items = [(task("plain"), {"video": "v0"}),                            # nothing owed: streams through
           (task("a"), {"video": "v1", decode.GREY_FRAMES: grey}),
           (task("one_frame"), {"video": "v2", decode.GREY_FRAMES: grey[:1]}),
           (task("skipped"), decode.Skip("unreadable")),
           (task("b"), {"video": "v3", decode.GREY_FRAMES: grey[::-1]})]
  stream = common._parent_flow(iter(items), pairs=3)
  assert next(stream)[1] == {"video": "v0"}
  out = list(stream)
  assert [t.video_id for t, _ in out] == ["a", "one_frame", "skipped", "b"]
  assert isinstance(out[1][1], decode.Skip) and "one_frame" in out[1][1].reason
  for (_, example), frames in ((out[0], grey), (out[3], grey[::-1])):
    assert decode.GREY_FRAMES not in example and len(example["flow_x"]) == 2     # JPEG bytes per field
    want = flow.quantize(flow.tvl1(frames[0], frames[1]))[..., 0]
    got = np.frombuffer(cv2.imdecode(np.frombuffer(example["flow_x"][0], np.uint8), 0), np.uint8)
    assert np.abs(got.reshape(want.shape).astype(int) - want).mean() < 2
