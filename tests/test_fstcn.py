"""FstCN (paper 004): paper-size shapes (eval_shape only), Caffe LRN and ceil pooling against numpy /
hand-computed references, the T-P operator, SCI fusion (Eq. 5-7) and the clip_pair sampler."""
import chex
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from configs.recipes.fstcn import fstcn_model
from vidrec import aggregations, evaluate
from vidrec.config import base_config
from vidrec.data import pipeline, samplers
from vidrec.models import build_model, fstcn, layers

TINY = {"scl_widths": (4, 8, 8, 8), "tcl_scl_width": 6, "permuted_channels": 5, "tcl_features": 2,
        "conv5_width": 8, "fc": (12, 10), "fusion_fc": 9}


def _model(num_classes=7, **overrides):
  c = base_config()
  fstcn_model(c)
  c.model.update({**TINY, **overrides})
  return build_model(c.model, num_classes)


def _init(model, video):
  return jax.jit(lambda v: model.init({"params": jax.random.key(0), "dropout": jax.random.key(1)}, v,
                                      train=False))(video)


def _apply(model, variables, video, train=False):
  return jax.jit(lambda v, x: model.apply(v, x, train=train, rngs={"dropout": jax.random.key(3)}))(
      variables, video)


@pytest.fixture(scope="module")
def both():
  """A tiny two-path model (l_t = 2, 60x60 frames), its variables and a random clip pair batch."""
  model, video = _model(), jax.random.normal(jax.random.key(2), (2, 4, 60, 60, 3))
  return model, _init(model, video), video


@pytest.fixture(scope="module")
def tcl_only():
  model, video = _model(paths="tcl"), jax.random.normal(jax.random.key(4), (2, 4, 60, 60, 3))
  return model, _init(model, video), video


def test_paper_size_shapes():
  c = base_config()
  fstcn_model(c)
  model = build_model(c.model, 101)
  video = jax.ShapeDtypeStruct((2, 10, 204, 204, 3), jnp.float32)
  out, variables = jax.eval_shape(
      lambda v: model.apply(_init(model, jnp.zeros(v.shape)), v, capture_intermediates=True,
                            mutable=["intermediates"]), video)
  inter = variables["intermediates"]
  # 204 -conv1-> 99 -pool-> 49 -conv2-> 24 -pool(ceil)-> 12 -conv3,4-> 12 -conv(128)+pool 3/3-> 4x4.
  assert inter["lower_scls"]["conv1"]["__call__"][0].shape == (12, 99, 99, 96)
  assert layers.ceil_pool_size(99, 3, 2) == 49
  assert inter["lower_scls"]["conv2"]["__call__"][0].shape == (12, 24, 24, 256)
  assert layers.ceil_pool_size(24, 3, 2) == 12 and (24 - 3) // 2 + 1 == 11   # floor mode would give 11
  assert inter["lower_scls"]["conv4"]["__call__"][0].shape == (12, 12, 12, 512)
  assert inter["tcl_conv"]["__call__"][0].shape == (10, 12, 12, 128)
  assert layers.ceil_pool_size(12, 3, 3) == 4
  tcl = inter["tcl"]["__call__"][0]
  assert tcl.shape == (2, 5, 128, 64) and np.prod(tcl.shape[1:]) == 40_960
  params = jax.eval_shape(lambda: _init(model, jnp.zeros((1, 10, 204, 204, 3))))["params"]
  assert params["permutation"].shape == (128, 128)
  assert params["tcl_fc6"]["kernel"].shape == (40_960, 4096)
  assert params["scl_fc6"]["kernel"].shape == (6 * 6 * 512, 4096)   # CNN-M pool5 at 204
  assert params["tcl"]["tcl_3x3"]["kernel"].shape == (3, 3, 16, 32)
  assert out["logits"].shape == out["logits_aux"].shape == out["logits_tcl"].shape == (2, 101)


def test_tiny_forward_train_and_paths(both):
  model, variables, video = both
  out = _apply(model, variables, video, train=True)
  chex.assert_shape([out["logits"], out["logits_aux"], out["logits_scl"], out["logits_tcl"]], (2, 7))
  chex.assert_shape(out["features_st"], (2, 9))
  chex.assert_tree_all_finite(out)
  assert not np.allclose(out["logits"], _apply(model, variables, video)["logits"])   # dropout rng used
  for paths, head, other in (("scl", "logits_scl", "permutation"), ("tcl", "logits_tcl", "conv5")):
    m = _model(paths=paths)
    params = jax.eval_shape(lambda m=m: m.init({"params": jax.random.key(0)}, video))["params"]
    o = jax.eval_shape(lambda p, m=m: m.apply({"params": p}, video), params)
    assert set(o) == {"logits", head} | ({"logits_aux"} if paths == "scl" else set())
    assert other not in params and "classifier" not in params


def test_tcl_path_sees_only_frame_differences(tcl_only):
  """Eq. 4: adding a constant to every frame or swapping clip and partner frames leaves |V(t) -
  V(t + d_t)| and hence the TCL-only model unchanged."""
  model, variables, video = tcl_only
  fn = jax.jit(lambda x: model.apply(variables, x)["logits"])
  base = fn(video)
  swapped = jnp.concatenate([video[:, 2:], video[:, :2]], axis=1)
  np.testing.assert_allclose(fn(video + 1.5), base, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(fn(swapped), base, rtol=1e-5, atol=1e-5)
  assert not np.allclose(fn(video.at[:, 1].multiply(2.0)), base)


def test_scl_path_uses_the_middle_clip_frame_at_test(both):
  model, variables, _ = both
  video = jax.random.normal(jax.random.key(5), (2, 6, 60, 60, 3))   # l_t = 3: middle frame is 1
  m = _model(paths="scl")
  v = {"params": {k: variables["params"][k] for k in ("lower_scls", "conv5", "scl_fc6", "scl_fc7",
                                                      "classifier_aux")}}
  fn = jax.jit(lambda x: m.apply(v, x)["logits"])
  keep_middle = video.at[:, jnp.array([0, 2, 3, 4, 5])].set(0.0)
  np.testing.assert_allclose(fn(keep_middle), fn(video), rtol=1e-5)
  assert not np.allclose(fn(video.at[:, 1].set(0.0)), fn(video))


def test_bad_inputs_are_clear_errors():
  with pytest.raises(ValueError, match="clip_pair"):
    jax.eval_shape(lambda: _model().init(jax.random.key(0), jnp.zeros((1, 5, 60, 60, 3))))
  with pytest.raises(ValueError, match="model.paths"):
    jax.eval_shape(lambda: _model(paths="rgb").init(jax.random.key(0), jnp.zeros((1, 4, 60, 60, 3))))
  with pytest.raises(ValueError, match="Unknown fstcn model keys"):
    build_model(ml_collections.ConfigDict({"name": "fstcn", "widht": 3}), 5)
  with pytest.raises(ValueError, match="input.crop"):
    jax.eval_shape(lambda: _model().init(jax.random.key(0), jnp.zeros((1, 4, 20, 20, 3))))


def _lrn_reference(x, k, n, alpha, beta):
  out = np.empty_like(x)
  c = x.shape[-1]
  for i in range(c):
    lo, hi = max(0, i - n // 2), min(c, i + n // 2 + 1)
    out[..., i] = x[..., i] / (k + alpha / n * (x[..., lo:hi] ** 2).sum(-1)) ** beta
  return out


@pytest.mark.parametrize("k,n,alpha,beta", [(2.0, 5, 5e-4, 0.75), (1.0, 3, 0.5, 0.5)])
def test_lrn_matches_caffe_formula(k, n, alpha, beta):
  x = np.random.default_rng(0).normal(0, 10, (2, 3, 3, 7)).astype(np.float32)
  np.testing.assert_allclose(layers.local_response_norm(jnp.asarray(x), k, n, alpha, beta),
                             _lrn_reference(x.astype(np.float64), k, n, alpha, beta), rtol=1e-5)


def test_ceil_mode_max_pool_hand_computed():
  x = jnp.arange(16.0).reshape(1, 4, 4, 1)
  # windows 3/2 from 0 and 2: rows/cols {0,1,2} and {2,3} (the second hangs over the edge).
  np.testing.assert_array_equal(layers.max_pool_ceil(x, 3, 2)[0, ..., 0], [[10, 11], [14, 15]])
  y = jnp.arange(25.0).reshape(1, 5, 5, 1)
  np.testing.assert_array_equal(layers.max_pool_ceil(y, 3, 3)[0, ..., 0], [[12, 14], [22, 24]])
  neg = -jnp.arange(16.0).reshape(1, 4, 4, 1)   # -inf padding never wins over real cells
  np.testing.assert_array_equal(layers.max_pool_ceil(neg, 3, 2)[0, ..., 0], [[0, -2], [-8, -10]])


def test_tp_operator_definition():
  rng = np.random.default_rng(1)
  x, p = rng.normal(size=(2, 3, 2, 2, 4)), rng.normal(size=(4, 5))
  ref = np.zeros((2, 3, 5, 4))
  for n, t, i, j, d in np.ndindex(2, 3, 2, 2, 5):
    ref[n, t, d, i * 2 + j] = (x[n, t, i, j] * p[:, d]).sum()
  np.testing.assert_allclose(fstcn.tp_operator(jnp.asarray(x), jnp.asarray(p)), ref, rtol=1e-5)


def test_permutation_matrix_receives_gradients(tcl_only):
  model, variables, video = tcl_only
  grad = jax.jit(jax.grad(lambda prm: model.apply({"params": prm}, video)["logits"][:, 0].sum()))(
      variables["params"])
  assert grad["permutation"].shape == (6, 5) and float(jnp.abs(grad["permutation"]).sum()) > 0


def test_loss_terms_follow_the_weights(both):
  model, variables, video = both
  out = _apply(model, variables, video)
  labels = jnp.array([0, 2])
  cfg = ml_collections.ConfigDict({"aux_weight": 0.3, "tcl_weight": 0.0})
  terms = fstcn.fstcn_loss(out, labels, cfg, None)
  assert set(terms) == {"ce", "aux"}
  ce_aux = -jax.nn.log_softmax(out["logits_aux"])[jnp.arange(2), labels].mean()
  np.testing.assert_allclose(terms["aux"], 0.3 * ce_aux, rtol=1e-5)
  with pytest.raises(ValueError, match="tcl_weight"):
    fstcn.fstcn_loss({"logits": out["logits"]}, labels, ml_collections.ConfigDict({"tcl_weight": 1.0}), None)


def test_sci_eq5():
  sci = aggregations.sparsity_concentration_index
  np.testing.assert_allclose(sci(np.eye(4)), 1.0)
  np.testing.assert_allclose(sci(np.full((2, 4), 0.25)), 0.0, atol=1e-12)
  np.testing.assert_allclose(sci(np.array([0.5, 0.3, 0.2])), (3 * 0.5 - 1) / 2)


def test_sci_fusion_eq6_eq7():
  rule = aggregations.AGGREGATIONS.get("sci")
  # Eq. 6 with equal SCIs (permutations of one distribution) is the plain mean over the crops.
  q = np.array([0.6, 0.3, 0.1])
  crops = np.stack([q, q[[1, 0, 2]], q[[2, 1, 0]]])
  np.testing.assert_allclose(rule(np.log(crops), num_crops=3), crops.mean(0))
  # Two clips x two crops, hand-computed: SCI weights 1 and 0.25 in clip 0; clip 1 all uniform.
  p = np.array([[1 - 2e-12, 1e-12, 1e-12], [0.5, 0.5, 0.0], [1 / 3] * 3, [1 / 3] * 3])
  s0, s1 = 1.0, (3 * 0.5 - 1) / 2
  clip0 = (s0 * p[0] + s1 * p[1]) / (s0 + s1)
  expect = np.maximum(clip0, 1 / 3)                      # Eq. 7: class-wise max over the clips
  np.testing.assert_allclose(rule(np.log(p + 1e-300), num_crops=2), expect, atol=1e-9)
  with pytest.raises(ValueError, match="whole clips"):
    rule(np.zeros((3, 3)), num_crops=2)


def test_aggregation_contract_keeps_existing_rules():
  logits = np.random.default_rng(3).normal(size=(6, 4))
  for name in ("mean_softmax", "mean_logits", "max", "majority_vote"):
    rule = aggregations.AGGREGATIONS.get(name)
    np.testing.assert_array_equal(aggregations.apply_rule(rule, logits, 3), rule(logits))
  # gather_scores orders views by view_index whatever order they arrived in.
  views = {0: {1: logits[1], 0: logits[0], 3: logits[3], 2: logits[2]}}
  scores, _, seen = evaluate.gather_scores(views, {0: 1}, 1, 4, aggregations.AGGREGATIONS.get("sci"), 2)
  assert seen == 4
  np.testing.assert_allclose(scores[0], aggregations.sci_fusion(logits[:4], num_crops=2))


@pytest.mark.parametrize("num_frames", [1, 7, 29, 30, 31, 200])
def test_clip_pair_indices(num_frames):
  sampler = samplers.TEMPORAL_SAMPLERS.get("clip_pair")(clip_len=5, stride=5, diff_offset=9,
                                                        num_test_clips=4)
  rng = np.random.default_rng(0)
  for idx in [sampler.train(num_frames, rng) for _ in range(20)] + list(sampler.test(num_frames)):
    chex.assert_shape(idx, (10,))
    assert idx.min() >= 0 and idx.max() < num_frames
    if num_frames >= 30:   # the whole pair fits: strided clip, partners d_t later
      np.testing.assert_array_equal(np.diff(idx[:5]), 5)
      np.testing.assert_array_equal(idx[5:] - idx[:5], 9)
  assert sampler.test(num_frames).shape == (4, 10)


def test_clip_pair_pipeline_shares_crop_and_flip(data_dir):
  """Every frame of a training clip pair (clip and difference partners) is the same crop and flip of
  its resized source frame."""
  import tensorflow as tf
  from vidrec.data import datasets
  c = base_config()
  c.input.update(sampler="clip_pair", clip_len=2, stride=3, resize=(32,), crop=20, flip=True,
                 mean=(0.0,) * 3, std=(1.0,) * 3)
  c.input.diff_offset = 4
  source = pipeline.VideoSource(datasets.load_builder("synthetic_actions/tiny", data_dir), "train")
  batch = next(pipeline.train_dataset(source, c.input, global_batch=8, seed=3).as_numpy_iterator())
  sampler = pipeline.make_sampler(c.input)
  perm = np.random.default_rng([3, 0, 7]).permutation(len(source))   # the pipeline's epoch-0 order
  flips = set()
  for pos, video in enumerate(batch["video"]):
    ex = source.parse(source.read(perm[pos]))
    idx = sampler.train(int(ex["video"].shape[0]), np.random.default_rng([3, pos]))
    full = pipeline.resize(pipeline.decode_frames(tf.gather(ex["video"], idx)), (32,)).numpy()
    match = [(y, x, f) for y in range(13) for x in range(13) for f in (0, 1)
             if np.allclose(_crop(full[0], y, x, f), video[0], atol=0.501)]
    assert match, "frame 0 is not a crop of its source frame"
    y, x, f = match[0]
    flips.add(f)
    for t in range(1, 4):
      np.testing.assert_allclose(video[t], _crop(full[t], y, x, f), atol=0.501)
  assert flips == {0, 1}   # both cases were exercised


def _crop(frame: np.ndarray, y: int, x: int, flip: int) -> np.ndarray:
  c = frame[y:y + 20, x:x + 20]
  return c[:, ::-1] if flip else c
