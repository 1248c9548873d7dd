"""SGN (paper 000): SGM equations vs numpy, placements, gradients, score fusion, frame ResNet, alpha grid."""
from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from vidrec.errors import UserError
from vidrec.models import build_model
from vidrec.tools import fuse
from vidrec.models import sgn as sgn_lib
from vidrec.models.resnet3d import block_names

N, T, S = 1, 4, 16  # tiny clips: [N, T, S, S, 3]

# XLA's CPU backend optimisations dominate the cost of these tiny tests (compile >> run): compile the
# whole-model functions with them off (about 4x less CPU time), falling back to a plain jit.
_FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def fast_jit_call(fn, *args):
  lowered = jax.jit(fn).lower(*args)
  try:
    compiled = lowered.compile(_FAST_COMPILE)
  except Exception:  # pylint: disable=broad-except  (unknown option on another XLA version)
    compiled = lowered.compile()
  return compiled(*args)


# ----------------------------------------------------------------------------- numpy references
def np_conv3d(x, kernel, bias, strides=(1, 1, 1)):
  """3x3x3 convolution, padding 1, as a sum over the 27 taps. x [N,T,H,W,C], kernel [3,3,3,C,O]."""
  x = np.asarray(x, np.float64)
  xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (1, 1), (0, 0)))
  out_shape = [(d + 2 - 3) // s + 1 for d, s in zip(x.shape[1:4], strides)]
  out = np.zeros((x.shape[0], *out_shape, kernel.shape[-1]))
  for dt in range(3):
    for dh in range(3):
      for dw in range(3):
        tap = xp[:, dt:dt + strides[0] * (out_shape[0] - 1) + 1:strides[0],
                 dh:dh + strides[1] * (out_shape[1] - 1) + 1:strides[1],
                 dw:dw + strides[2] * (out_shape[2] - 1) + 1:strides[2]]
        out += np.einsum("nthwc,co->nthwo", tap, np.asarray(kernel[dt, dh, dw], np.float64))
  return out + np.asarray(bias, np.float64)


def np_softmax(z, axis):
  z = z - z.max(axis=axis, keepdims=True)
  e = np.exp(z)
  return e / e.sum(axis=axis, keepdims=True)


def np_sigmoid(z):
  return 1.0 / (1.0 + np.exp(-z))


def np_gate(z, gate, axis):
  if gate == "sigmoid":
    return np_sigmoid(z)
  axes = (4,) if axis == "channel" else (1, 2, 3)
  scale = math.prod(z.shape[a] for a in axes) if gate == "mean_one_softmax" else 1
  return scale * np_softmax(z, axes)


def np_sgm(kind, p, f, strides):
  conv = lambda name, x, s=strides: np_conv3d(x, p[name]["kernel"], p[name]["bias"], s)
  if kind == "S":
    return conv("conv_s", f)
  if kind == "M":
    return conv("conv_m", np.tanh(conv("conv_s", f)), (1, 1, 1))
  left, right = np.tanh(conv("conv_l", f)), np.tanh(conv("conv_r", f))
  gate = np_sigmoid(conv("conv_g", f))
  return gate * left + (1 - gate) * right


def sgn_config(**kw):
  base = dict(name="sgn", width=4, num_stages=2)
  base.update(kw)
  return ml_collections.ConfigDict(base)


def expected_block_shapes(num_stages, width=4, t=T, s=S, n=N):
  """Block name -> output shape: stem stride 1x2x2, stages >= 3 halve T, H, W (ceil)."""
  shapes, tt, hh = {}, t, math.ceil(s / 2)
  for name in block_names(num_stages, 2):
    stage = int(name[0])
    if name[1] == "a" and stage > 2:
      tt, hh = math.ceil(tt / 2), math.ceil(hh / 2)
    shapes[name] = (n, tt, hh, hh, width * 2 ** (stage - 2))
  return shapes


# ----------------------------------------------------------------------------- SGM equations
@pytest.mark.parametrize("kind", ["S", "M", "G"])
@pytest.mark.parametrize("strides", [(1, 1, 1), (2, 2, 2)])
@pytest.mark.parametrize("gate,axis", [("softmax", "channel"), ("softmax", "spacetime"), ("sigmoid", "channel"),
                                       ("mean_one_softmax", "channel"), ("mean_one_softmax", "spacetime")])
def test_sgm_matches_numpy(kind, strides, gate, axis):
  f = jax.random.normal(jax.random.key(1), (2, 3, 5, 5, 2))
  module = sgn_lib.SGM(kind, features=3, strides=strides)
  params = module.init(jax.random.key(2), f)["params"]
  # Non-zero biases so B_* is exercised too.
  params = jax.tree.map(lambda p: p + 0.1 * jax.random.normal(jax.random.key(3), p.shape), params)
  z = module.apply({"params": params}, f)
  want_z = np_sgm(kind, jax.tree.map(np.asarray, params), np.asarray(f), strides)
  chex.assert_shape(z, want_z.shape)
  np.testing.assert_allclose(np.asarray(z), want_z, rtol=1e-4, atol=1e-5)
  alpha = sgn_lib.apply_gate(z, gate, axis)
  np.testing.assert_allclose(np.asarray(alpha), np_gate(want_z, gate, axis), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("axis,sum_axes", [("channel", (-1,)), ("spacetime", (1, 2, 3))])
def test_alpha_sums_to_one_or_has_mean_one(axis, sum_axes):
  """Eq. 9-13's softmax sums to 1 over its axis (K entries); ``mean_one_softmax`` is K times it."""
  z = 3.0 * jax.random.normal(jax.random.key(0), (2, 3, 4, 5, 6))
  alpha = sgn_lib.apply_gate(z, "softmax", axis)
  assert bool(jnp.all(alpha > 0))
  np.testing.assert_allclose(np.asarray(alpha.sum(axis=sum_axes)), 1.0, rtol=1e-5)
  mean_one = sgn_lib.apply_gate(z, "mean_one_softmax", axis)
  np.testing.assert_allclose(np.asarray(mean_one.mean(axis=sum_axes)), 1.0, rtol=1e-5)
  k = 6 if axis == "channel" else 3 * 4 * 5
  np.testing.assert_allclose(np.asarray(mean_one), k * np.asarray(alpha), rtol=1e-5)


@pytest.mark.parametrize("bound", [0.5, 1.0, 2.0])
def test_gate_bound_against_numpy_and_its_gain_ceiling(bound):
  """``gate_bound`` b: alpha = K softmax(b tanh(z / b)); so every gain ratio alpha_i / alpha_j is at most
  e^(2b) and the peak gain K e^b / (e^b + (K - 1) e^-b) < e^(2b), whatever the size of z."""
  z = 40.0 * jax.random.normal(jax.random.key(0), (2, 3, 4, 5, 6))        # far past saturation
  alpha = np.asarray(sgn_lib.apply_gate(z, "mean_one_softmax", "channel", bound))
  np.testing.assert_allclose(alpha, np_gate(bound * np.tanh(np.asarray(z) / bound), "mean_one_softmax",
                                            "channel"), rtol=1e-5)
  k = z.shape[-1]
  assert alpha.max() <= k * np.exp(bound) / (np.exp(bound) + (k - 1) * np.exp(-bound)) * (1 + 1e-6)
  assert (alpha.max(-1) / alpha.min(-1)).max() <= np.exp(2 * bound) * (1 + 1e-6)
  np.testing.assert_allclose(alpha.mean(-1), 1.0, rtol=1e-5)              # still mean one
  small = 1e-4 * z                                                        # ~z where |z| << b
  np.testing.assert_allclose(sgn_lib.apply_gate(small, bound=bound), sgn_lib.apply_gate(small), rtol=1e-5)
  np.testing.assert_array_equal(sgn_lib.bound_z(z, 0.0), z)               # 0: no bound
  with pytest.raises(UserError, match="gate_bound"):
    sgn_lib.bound_z(z, -1.0)


# The convolutions a zero-initialised SGM starts at zero (the ones producing the gate's pre-activation).
ZERO_INIT = {"S": {"conv_s"}, "M": {"conv_m"}, "G": {"conv_l", "conv_r"}}


@pytest.mark.parametrize("kind", sgn_lib.SGM_KINDS)
def test_sgm_zero_init_gives_alpha_one_and_trainable_gate(kind):
  """sgm_init="zero": z == 0, so alpha == 1 under mean_one_softmax (either axis); the first gradient
  reaches exactly the zero-initialised convolutions (the others are multiplied by them or by L - R =
  0 at init); with "lecun" it reaches every branch."""
  f = jax.random.normal(jax.random.key(1), (1, 2, 4, 4, 2))
  target = jax.random.normal(jax.random.key(4), (1, 1, 2, 2, 3))
  for init in ("zero", "lecun"):
    module = sgn_lib.SGM(kind, features=3, strides=(2, 2, 2), gate_init=init)
    params = module.init(jax.random.key(2), f)["params"]
    z = module.apply({"params": params}, f)
    chex.assert_shape(z, (1, 1, 2, 2, 3))
    if init == "zero":
      np.testing.assert_array_equal(np.asarray(z), 0.0)
      for axis in sgn_lib.SOFTMAX_AXES:
        np.testing.assert_allclose(np.asarray(sgn_lib.apply_gate(z, "mean_one_softmax", axis)), 1.0, rtol=1e-6)
    loss = lambda p: jnp.sum(sgn_lib.apply_gate(module.apply({"params": p}, f)) * target)
    grads = jax.grad(loss)(params)
    for conv, g in grads.items():
      reached = float(jnp.abs(g["kernel"]).max()) > 0
      assert reached == (init == "lecun" or conv in ZERO_INIT[kind]), (kind, init, conv)


# ----------------------------------------------------------------------------- placements (shapes)
PLACEMENTS = {
    # Table I: single SGM.
    "single_rcb2a": dict(num_stages=4, sgm="S", sgm_blocks=["2a"]),
    "single_rib3b": dict(num_stages=4, sgm="M", sgm_blocks=["3b"]),
    "single_rcb5a": dict(num_stages=4, sgm="G", sgm_blocks=["5a"]),
    # Table II: fusion SGMs.
    "rcb4a+rib4b": dict(num_stages=4, sgm="G", sgm_blocks=["4a", "4b"]),
    "all_rcb": dict(num_stages=4, sgm="S", sgm_blocks=["all_rcb"]),
    "all_rib": dict(num_stages=4, sgm="M", sgm_blocks="all_rib"),
    "all_rcb+rib": dict(num_stages=4, sgm="G", sgm_blocks=["all"], softmax_axis="spacetime"),
    # Fig. 6: cross-layer SGMs, learned (strided conv / avg-pool) and the direct baseline.
    "cross_learned": dict(num_stages=4, sgm="M", sgm_blocks=[], cross_layer={"3b": "2b", "5b": "2a"}),
    "cross_avgpool": dict(num_stages=4, sgm="G", sgm_blocks=["2b"], cross_layer={"4b": "2b", "5a": "stem"},
                          cross_layer_resample="avgpool"),
    "cross_direct": dict(num_stages=4, sgm="S", sgm_blocks=[], cross_layer="4b:3b,5b:2a",
                         cross_layer_mode="direct", gate="sigmoid"),
}


@pytest.mark.parametrize("placement", sorted(PLACEMENTS))
def test_placement_shapes(placement):
  kw = PLACEMENTS[placement]
  cfg = sgn_config(**kw)
  model = build_model(cfg, num_classes=7)
  video = jnp.zeros((N, T, S, S, 3))

  def run():
    variables = model.init(jax.random.key(0), video)
    return model.apply(variables, video, train=True, mutable=["batch_stats"])[0]

  out = jax.eval_shape(run)  # shapes only: no compilation
  names = block_names(4, 2)
  gated = set(sgn_lib.expand_blocks(kw["sgm_blocks"], names))
  gated |= {d for d, _ in sgn_lib.parse_cross_layer(kw.get("cross_layer"))}
  assert gated and set(out) == {"logits", "embedding"} | {f"alpha/{b}" for b in gated}
  chex.assert_shape(out["logits"], (N, 7))
  shapes = expected_block_shapes(4)
  for b in gated:
    chex.assert_shape(out[f"alpha/{b}"], shapes[b])
  variables = jax.eval_shape(lambda: model.init(jax.random.key(0), video))
  learned = gated if kw.get("cross_layer_mode") != "direct" else set(sgn_lib.expand_blocks(kw["sgm_blocks"], names))
  assert {k for k in variables["params"] if k.startswith("sgm")} == {f"sgm{b}" for b in learned}


def test_sgm_conv_strides_follow_block():
  """Same-layer SGMs carry the block's stride; cross-layer ones the total stride source -> destination."""
  model = build_model(sgn_config(num_stages=4, sgm="S", sgm_blocks=["3a", "3b"], cross_layer={"5b": "2b"}), 3)
  params = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((N, T, S, S, 3))))["params"]
  assert params["sgm3a"]["conv_s"]["kernel"].shape == (3, 3, 3, 4, 8)  # reads 2b (4 ch), stride 2
  assert params["sgm3b"]["conv_s"]["kernel"].shape == (3, 3, 3, 8, 8)
  assert params["sgm5b"]["conv_s"]["kernel"].shape == (3, 3, 3, 4, 32)  # reads 2b, stride 8
  assert sgn_lib._total_strides("2b", "5b", block_names(4, 2)) == (8, 8, 8)
  assert sgn_lib._total_strides("stem", "3a", block_names(4, 2)) == (2, 2, 2)


def test_bad_configs_raise():
  with pytest.raises(ValueError, match="unknown block"):
    build_model(sgn_config(sgm_blocks=["4a"]), 3)  # num_stages=2 has no stage 4
  with pytest.raises(ValueError, match="before it"):
    build_model(sgn_config(sgm_blocks=[], cross_layer={"2b": "3a"}), 3)
  with pytest.raises(ValueError, match="softmax_axis"):
    build_model(sgn_config(softmax_axis="time"), 3)
  with pytest.raises(ValueError, match="sgm"):
    build_model(sgn_config(sgm="X"), 3)
  with pytest.raises(ValueError, match="mean_one_softmax"):
    build_model(sgn_config(gate="mean_one"), 3)
  with pytest.raises(ValueError, match="sgm_init"):
    build_model(sgn_config(sgm_init="ones"), 3)
  with pytest.raises(ValueError, match="eq15"):
    build_model(sgn_config(rcb="paper"), 3)


# ----------------------------------------------------------------------------- wiring (one compiled forward)
def test_forward_wiring_eq17_and_direct_baseline():
  """alpha/3b = softmax(SGM(F = 3a output)); embedding = mean((H + F) * alpha) (Eq. 17); the direct
  cross-layer baseline alpha/3a = softmax(channel-repeat(2a output subsampled by 2)) (Sec. IV-E)."""
  model = build_model(sgn_config(sgm="S", sgm_blocks=["3b"], cross_layer={"3a": "2a"},
                                 cross_layer_mode="direct", gate="softmax", sgm_init="lecun"), num_classes=3)
  video = jax.random.normal(jax.random.key(0), (N, T, S, S, 3))
  # One compiled call: initial variables (BN at its initial statistics in eval mode) and outputs.
  out, variables = fast_jit_call(
      lambda k, x: model.init_with_output(k, x, train=False, capture_intermediates=True), jax.random.key(1), video)
  state = variables
  inter = state["intermediates"]
  y2a = np.asarray(inter["rcb2a"]["__call__"][0])  # 2a is ungated: its block output is the features
  y3a = np.asarray(inter["rcb3a"]["__call__"][0])  # ungated ResBlock3D output of 3a
  y3b = np.asarray(inter["rib3b"]["__call__"][0])
  z3b = np.asarray(inter["sgm3b"]["__call__"][0])
  # Direct baseline: 2a (4 ch) subsampled by 2 in t, h, w; channels repeated to 8; channel softmax.
  want3a = np_softmax(np.repeat(y2a[:, ::2, ::2, ::2], 2, axis=-1), -1)
  np.testing.assert_allclose(np.asarray(out["alpha/3a"]), want3a, rtol=1e-4, atol=1e-6)
  # SGM-S at 3b reads F = gated 3a output, stride 1.
  f3b = y3a * want3a
  p = jax.tree.map(np.asarray, variables["params"]["sgm3b"])
  np.testing.assert_allclose(z3b, np_sgm("S", p, f3b, (1, 1, 1)), rtol=1e-3, atol=1e-4)
  alpha3b = np_softmax(z3b, -1)
  np.testing.assert_allclose(np.asarray(out["alpha/3b"]), alpha3b, rtol=1e-4, atol=1e-6)
  # Eq. 17 on the last block: the embedding is the spacetime mean of ReLU(H(F) + F) * alpha.
  np.testing.assert_allclose(np.asarray(out["embedding"]), (y3b * alpha3b).mean(axis=(1, 2, 3)),
                             rtol=1e-4, atol=1e-7)


def test_zero_init_sgn_starts_as_its_resnet3d():
  """Default gate and init: alpha == 1 at every SGB, so SGN's outputs at initialisation are those of the
  ResNet3D with the same backbone parameters (each SGB starts as its RCB / RIB)."""
  sgn = build_model(sgn_config(sgm="G", sgm_blocks=["all"]), num_classes=3)
  base = build_model(ml_collections.ConfigDict(dict(name="resnet3d", width=4, num_stages=2)), num_classes=3)
  video = jax.random.normal(jax.random.key(0), (2, T, S, S, 3))

  def run(key, x):
    variables = sgn.init(key, x)
    backbone = {"params": {k: v for k, v in variables["params"].items() if not k.startswith("sgm")},
                "batch_stats": variables["batch_stats"]}
    return sgn.apply(variables, x), base.apply(backbone, x)

  out, want = fast_jit_call(run, jax.random.key(1), video)
  assert {k for k in out if k.startswith("alpha/")} == {"alpha/2a", "alpha/2b", "alpha/3a", "alpha/3b"}
  for k in ("alpha/2a", "alpha/2b", "alpha/3a", "alpha/3b"):
    np.testing.assert_allclose(np.asarray(out[k]), 1.0, rtol=1e-6)
  np.testing.assert_allclose(np.asarray(out["logits"]), np.asarray(want["logits"]), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(np.asarray(out["embedding"]), np.asarray(want["embedding"]), rtol=1e-5, atol=1e-7)


def test_rcb_eq15_parameter_count_by_hand():
  """model.rcb="eq15": every RCB's H' is a 3x3x3 ConvBN (Eq. 15, Sec. IV-B's 3x3x3 kernels). At width
  64 / 400 classes: RCB2a gains 27*64*64 kernel + 2*64 BN parameters (torchvision: identity), and the
  1x1x1 projections of 3a/4a/5a grow 27-fold (26 * C_in * C_out more each)."""
  video = jnp.zeros((1, 16, 112, 112, 3))

  def params(rcb):
    model = build_model(ml_collections.ConfigDict(dict(name="sgn", rcb=rcb, sgm_blocks=[])), 400)
    return jax.eval_shape(lambda: model.init(jax.random.key(0), video))["params"]

  count = lambda p: sum(math.prod(x.shape) for x in jax.tree.leaves(p))
  torchvision, eq15 = params("torchvision"), params("eq15")
  assert count(torchvision) == 33_371_472
  extra = 27 * 64 * 64 + 2 * 64 + 26 * (64 * 128 + 128 * 256 + 256 * 512)
  assert count(eq15) - count(torchvision) == extra == 4_583_552
  assert "proj" not in torchvision["rcb2a"] and eq15["rcb2a"]["proj"]["conv"]["kernel"].shape == (3, 3, 3, 64, 64)
  assert eq15["rcb4a"]["proj"]["conv"]["kernel"].shape == (3, 3, 3, 128, 256)
  assert torchvision["rcb4a"]["proj"]["conv"]["kernel"].shape == (1, 1, 1, 128, 256)


# ----------------------------------------------------------------------------- gradients (one compiled grad)
def test_gradients_reach_sgm_params():
  cfg = sgn_config(sgm="G", sgm_blocks=["2b", "3a"], cross_layer={"3b": "2a"}, sgm_init="lecun")
  model = build_model(cfg, num_classes=3)
  video = jax.random.normal(jax.random.key(0), (2, T, S, S, 3))
  labels = jnp.array([0, 2])

  def grads(key):  # init and grad in one compiled call
    variables = model.init(key, video)

    def loss(p):
      out, _ = model.apply({"params": p, "batch_stats": variables["batch_stats"]}, video, train=True,
                           mutable=["batch_stats"])
      logp = jax.nn.log_softmax(out["logits"])
      return -jnp.take_along_axis(logp, labels[:, None], axis=1).mean()
    return jax.grad(loss)(variables["params"])

  g = fast_jit_call(grads, jax.random.key(1))
  assert {k for k in g if k.startswith("sgm")} == {"sgm2b", "sgm3a", "sgm3b"}
  for name in ("sgm2b", "sgm3a", "sgm3b"):
    for path, leaf in jax.tree_util.tree_leaves_with_path(g[name]):
      assert np.isfinite(np.asarray(leaf)).all()
      assert float(jnp.abs(leaf).max()) > 0, (name, path)


# ----------------------------------------------------------------------------- config helpers
def test_config_parsing():
  names = block_names(4, 2)
  assert sgn_lib.expand_blocks("all_rib", names) == ("2b", "3b", "4b", "5b")
  assert sgn_lib.expand_blocks(["4b", "all_rcb"], names) == ("2a", "3a", "4a", "4b", "5a")
  assert sgn_lib.expand_blocks("3a, 3b", names) == ("3a", "3b")
  assert sgn_lib.parse_cross_layer("4b:3b, 3b:2b") == (("3b", "2b"), ("4b", "3b"))
  assert sgn_lib.parse_cross_layer(ml_collections.ConfigDict({"3b": "2b"})) == (("3b", "2b"),)
  model = build_model(ml_collections.ConfigDict(dict(name="sgn")), 10)
  assert (model.sgm, model.sgm_blocks, model.softmax_axis, model.gate, model.sgm_init, model.rcb) == (
      "M", ("3b",), "channel", "mean_one_softmax", "zero", "torchvision")
  assert model.gated_blocks() == ("3b",)


# ----------------------------------------------------------------------------- SGN + Frame fusion
def test_fuse_scores():
  sgn = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
  frame = np.array([[0.2, 0.5, 0.3], [0.6, 0.3, 0.1]])
  other = np.full((2, 3), 9.0)
  fused = fuse.fuse_scores({"sgn": sgn, "frame": frame, "unused": other}, {"sgn": 0.75, "frame": 0.25})
  want = np.array([[0.7 * 0.75 + 0.2 * 0.25, 0.2 * 0.75 + 0.5 * 0.25, 0.1 * 0.75 + 0.3 * 0.25],
                   [0.1 * 0.75 + 0.6 * 0.25, 0.3 * 0.75 + 0.3 * 0.25, 0.6 * 0.75 + 0.1 * 0.25]])
  np.testing.assert_allclose(fused, want)
  np.testing.assert_array_equal(fused.argmax(-1), [0, 2])
  with pytest.raises(KeyError):
    fuse.fuse_scores({"sgn": sgn}, {"sgn": 1.0, "frame": 1.0})
  with pytest.raises(ValueError):
    fuse.fuse_scores({"sgn": sgn, "frame": frame[:1]}, {"sgn": 1.0, "frame": 1.0})


# ----------------------------------------------------------------------------- frame network
@pytest.mark.parametrize("depth,want", [(18, 11_689_512), (50, 25_557_032)])
def test_resnet2d_param_count_matches_torchvision(depth, want):
  model = build_model(ml_collections.ConfigDict(dict(name="resnet2d_frame", depth=depth)), 1000)
  variables = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 1, 224, 224, 3))))
  assert sum(math.prod(x.shape) for x in jax.tree.leaves(variables["params"])) == want


def test_resnet2d_frame_output_shape():
  model = build_model(ml_collections.ConfigDict(dict(name="resnet2d_frame", depth=18, width=4)), 5)
  video = jax.random.normal(jax.random.key(0), (2, 1, 32, 32, 3))
  out, variables = fast_jit_call(lambda k, x: model.init_with_output(k, x, train=True), jax.random.key(1), video)
  chex.assert_shape(out["logits"], (2, 5))
  chex.assert_shape(out["embedding"], (2, 32))
  assert np.isfinite(np.asarray(out["logits"])).all()
  # T > 1: each frame classified independently, averaged (shape only).
  out3 = jax.eval_shape(lambda: model.apply(variables, jnp.zeros((2, 3, 32, 32, 3)), train=False))
  chex.assert_shape(out3["logits"], (2, 5))


# ----------------------------------------------------------------------------- visualisation
def test_render_alpha_grid(tmp_path):
  from vidrec.tools import plotting
  from vidrec.tools import visualize_sgn as vis
  video = vis.synthetic_video(num_frames=4, size=16)
  rng = np.random.default_rng(0)
  alphas = {"alpha/3b": rng.random((2, 4, 4, 8)), "2b": rng.random((4, 8, 8, 4))}
  path = vis.render_alpha_grid(video, alphas, str(tmp_path / "grid.png"))
  with open(path, "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"
  a3b = alphas["alpha/3b"]
  summary = vis.summarize_alpha(a3b, "max")   # log2 of the peak gain relative to the channel mean
  np.testing.assert_allclose(summary, np.log2((a3b / a3b.mean(-1, keepdims=True)).max(-1)), rtol=1e-5)
  # The same map for Eq. 9-13's softmax (mean 1/C) and its mean-one version; a uniform gate is neutral.
  np.testing.assert_allclose(vis.summarize_alpha(a3b / a3b.sum(-1, keepdims=True)),
                             vis.summarize_alpha(8 * a3b / a3b.sum(-1, keepdims=True)), rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(vis.summarize_alpha(np.full((2, 4, 4, 8), 1 / 8), "mean"), 0.0)
  spacetime = vis.summarize_alpha(a3b, "mean", softmax_axis="spacetime")
  np.testing.assert_allclose(spacetime, np.log2((a3b / a3b.mean((0, 1, 2))).mean(-1)), rtol=1e-5)
  up = plotting.upsample_map(summary, 4, 16, 16)
  assert up.shape == (4, 16, 16)
  np.testing.assert_allclose(up[1], up[0])  # T' = 2 -> frames 0, 1 read alpha index 0
  assert vis.alphas_from_outputs({"logits": np.zeros((1, 3)), "alpha/2a": np.ones((1, 2, 3, 3, 4))})["2a"].shape \
      == (2, 3, 3, 4)


@pytest.mark.parametrize("block", ["r2plus1d", "mc3"])
def test_sgn_sits_on_every_block_kind(block):
  """config.model.block: SGMs gate R(2+1)D / MC3 blocks; alpha has the block's (MC3: time-unstrided) shape."""
  model = build_model(sgn_config(num_stages=4, block=block, sgm="M", sgm_blocks=["3a"], cross_layer={"5b": "2b"}), 3)
  video = jnp.zeros((N, T, S, S, 3))
  out = jax.eval_shape(lambda: model.apply(model.init(jax.random.key(0), video), video))
  t3, t5 = (T, T) if block == "mc3" else (T // 2, T // 8 + 1)
  chex.assert_shape(out["alpha/3a"], (N, t3, S // 4, S // 4, 8))
  chex.assert_shape(out["alpha/5b"], (N, t5, 1, 1, 32))
  assert sgn_lib._total_strides("2b", "5b", block_names(4, 2), block) == ((1, 8, 8) if block == "mc3" else (8, 8, 8))


# ----------------------------------------------------------------------------- block-scale tool
@pytest.mark.slow
def test_block_scales_match_direct_gradients():
  """vidrec.tools.block_scales: |dL/dW| of fc equals jax.grad's; at the last (gated) block, whose output
  y only feeds the mean pool and fc, dL/dy = alpha * (dL/d embedding) / (T'H'W') exactly; the literal
  softmax gate has mean 1/C."""
  from vidrec import losses
  from vidrec.tools import block_scales as bs
  video = jax.random.normal(jax.random.key(0), (2, T, S, S, 3))
  labels = jnp.array([0, 2])
  loss_cfg = ml_collections.ConfigDict({"label_smoothing": 0.0})
  model = build_model(sgn_config(sgm="M", sgm_blocks=["3b"], gate="softmax", sgm_init="lecun"), 3)
  variables = model.init(jax.random.key(1), video)
  stats = bs.block_scales(model, variables, video, labels, losses.classification, loss_cfg)
  assert list(stats)[1:] == ["rcb2a", "rib2b", "rcb3a", "rib3b", "fc"]
  np.testing.assert_allclose(stats["rib3b"]["mean(a)"], 1 / 8, rtol=1e-5)

  def loss_of(params):
    out, _ = model.apply({**variables, "params": params}, video, train=True, labels=labels,
                         mutable=["batch_stats"])
    return losses.total_loss(losses.classification(out, labels, loss_cfg, params))

  g = jax.grad(loss_of)(variables["params"])
  np.testing.assert_allclose(stats["fc"]["|dL/dW|"], float(jnp.sqrt(sum(jnp.sum(x ** 2) for x in
                                                                        jax.tree.leaves(g["fc"])))), rtol=1e-4)
  out, _ = model.apply(variables, video, train=True, mutable=["batch_stats"])
  probs = jax.nn.softmax(out["logits"]) - jax.nn.one_hot(labels, 3)
  d_emb = probs @ variables["params"]["fc"]["kernel"].T / 2            # mean over the batch of 2
  alpha = out["alpha/3b"]
  d_y = alpha * d_emb[:, None, None, None, :] / math.prod(alpha.shape[1:4])
  np.testing.assert_allclose(stats["rib3b"]["rms(dL/dy)"], float(jnp.sqrt(jnp.mean(d_y ** 2))), rtol=1e-4)
