"""ResNet3D: block shapes, the paper's parameter count, the CPU convolution path, bf16 switch."""
import chex
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from vidrec.models import build_model, layers, resnet3d


def _param_count(tree) -> int:
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def test_parameter_count_matches_r3d18():
  model = build_model(ml_collections.ConfigDict({"name": "resnet3d"}), 400)
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 16, 112, 112, 3))))
  assert _param_count(shapes["params"]) == 33_371_472


def test_block_output_shapes():
  model = resnet3d.ResNet3D(num_classes=5, width=4)
  video = jnp.zeros((2, 16, 32, 32, 3))
  variables = model.init(jax.random.key(0), video)
  _, inter = model.apply(variables, video, capture_intermediates=True)
  inter = inter["intermediates"]
  chex.assert_shape(inter["bcb1"]["__call__"][0], (2, 16, 16, 16, 4))
  expected = {"rcb2a": (16, 16, 4), "rib2b": (16, 16, 4), "rcb3a": (8, 8, 8), "rib3b": (8, 8, 8),
              "rcb4a": (4, 4, 16), "rib4b": (4, 4, 16), "rcb5a": (2, 2, 32), "rib5b": (2, 2, 32)}
  for name, (t, hw, c) in expected.items():
    chex.assert_shape(inter[name]["__call__"][0], (2, t, hw, hw, c))
  out = model.apply(variables, video)
  chex.assert_shape(out["logits"], (2, 5))
  chex.assert_shape(out["embedding"], (2, 32))
  # RCB2a keeps 64 -> 64 channels at stride 1: identity shortcut; RCB3a..5a project.
  assert "proj" not in variables["params"]["rcb2a"]
  assert all("proj" in variables["params"][b] for b in ("rcb3a", "rcb4a", "rcb5a"))


def test_wrong_input_rank_is_a_clear_error():
  model = resnet3d.ResNet3D(num_classes=3, width=4)
  with pytest.raises(ValueError, match=r"\[N, T, H, W, C\]"):
    model.init(jax.random.key(0), jnp.zeros((2, 32, 32, 3)))


@pytest.mark.parametrize("strides", [(1, 1, 1), (2, 2, 2), (1, 2, 2)])
def test_temporal_sum_conv_equals_native(monkeypatch, strides):
  x = jax.random.normal(jax.random.key(0), (2, 7, 9, 10, 3))
  k = jax.random.normal(jax.random.key(1), (3, 7, 5, 3, 4))
  pad = layers.same_padding(k.shape[:3])
  monkeypatch.setenv("VIDREC_CONV3D", "native")
  native = layers.conv_nd(x, k, strides, pad)
  monkeypatch.setenv("VIDREC_CONV3D", "temporal_sum")
  fast = layers.conv_nd(x, k, strides, pad)
  np.testing.assert_allclose(fast, native, rtol=1e-4, atol=1e-4)


def test_bfloat16_compute_keeps_float32_params():
  cfg = ml_collections.ConfigDict({"name": "resnet3d", "width": 4, "num_stages": 2, "dtype": "bfloat16"})
  model = build_model(cfg, 3)
  video = jnp.ones((1, 4, 16, 16, 3))
  variables = model.init(jax.random.key(0), video)
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(variables["params"]))
  out = model.apply(variables, video)
  assert out["logits"].dtype == jnp.float32 and np.isfinite(out["logits"]).all()


@pytest.mark.parametrize("block,count", [("r2plus1d", 31_505_325), ("mc3", 11_695_440)])
def test_block_options_match_torchvision_parameter_counts(block, count):
  """torchvision's r2plus1d_18 / mc3_18 counts (its weight enums' num_params), at width 64 / 400 classes."""
  model = build_model(ml_collections.ConfigDict({"name": "resnet3d", "block": block}), 400)
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 16, 112, 112, 3))))
  assert _param_count(shapes["params"]) == count


def test_r2plus1d_uses_torchvisions_mid_channel_rule():
  # floor(Ci Co 27 / (9 Ci + 3 Co)): 64->64: 110592/768 = 144; 64->128: 221184/960 = 230.4 -> 230
  assert [layers.r2plus1d_mid_features(i, o) for i, o in [(64, 64), (64, 128), (128, 256), (256, 512)]] == [
      144, 230, 460, 921]
  model = resnet3d.ResNet3D(num_classes=4, block="r2plus1d")
  params = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 4, 32, 32, 3))))["params"]
  assert params["bcb1"]["conv_s"]["kernel"].shape == (1, 7, 7, 3, 45)      # R2Plus1dStem
  assert params["bcb1"]["conv_t"]["kernel"].shape == (3, 1, 1, 45, 64)
  # both convolutions of a block use the mid width computed from the block's input width
  assert params["rcb3a"]["conv_a"]["conv_s"]["kernel"].shape == (1, 3, 3, 64, 230)
  assert params["rcb3a"]["conv_b"]["conv_s"]["kernel"].shape == (1, 3, 3, 128, 230)
  assert params["rcb3a"]["conv_b"]["conv_t"]["kernel"].shape == (3, 1, 1, 230, 128)
  assert params["rcb3a"]["proj"]["conv"]["kernel"].shape == (1, 1, 1, 64, 128)


def test_mc3_is_3d_in_stem_and_stage2_and_2d_after():
  model = resnet3d.ResNet3D(num_classes=5, width=4, block="mc3")
  video = jnp.zeros((1, 8, 32, 32, 3))
  variables = model.init(jax.random.key(0), video)
  params = variables["params"]
  assert params["bcb1"]["conv"]["kernel"].shape[:3] == (3, 7, 7)
  assert params["rib2b"]["conv_b"]["conv"]["kernel"].shape[:3] == (3, 3, 3)
  assert all(params[b]["conv_a"]["conv"]["kernel"].shape[:3] == (1, 3, 3) for b in ("rcb3a", "rib4b", "rib5b"))
  _, inter = model.apply(variables, video, capture_intermediates=True)
  for name, hw in {"rcb3a": 8, "rcb4a": 4, "rib5b": 2}.items():   # time is never strided
    chex.assert_shape(inter["intermediates"][name]["__call__"][0], (1, 8, hw, hw, 4 * 2 ** (int(name[-2]) - 2)))
  assert resnet3d.block_strides("3a", "mc3") == (1, 2, 2) and resnet3d.block_strides("3a") == (2, 2, 2)


def test_unknown_block_is_a_clear_error():
  with pytest.raises(KeyError, match=r"Unknown model.block 'r4d'.*mc3.*--config.model.block"):
    build_model(ml_collections.ConfigDict({"name": "resnet3d", "block": "r4d"}), 3)
