"""JointLSTM (paper 001): shapes, the joint cell against numpy (J2-J5), attention pooling (J6-J7, Sec.
3.4), the clip score (J9), the regulariser (J10), scan == loop, gradient paths, the frozen VGG16 under
weight decay, paper-size arithmetic. One tiny model is compiled once (the ``run`` fixture) and shared."""
import chex
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from configs.recipes import joint_lstm as recipe
from vidrec import optim
from vidrec.data import samplers
from vidrec.models import build_model
from vidrec.models.joint_lstm import (JointLSTM, attention_regulariser, channel_energy, clip_logits,
                                      joint_lstm_loss)
from vidrec.models.joint_lstm_cell import AttentionLSTMStack, JointLSTMCell, pyramid_masks, pyramid_pool
from vidrec.tools import ablate

TINY = dict(vgg_width=4, conv_channels=8, ds_hidden=16, input_units=12, hidden=12, reduce="same",
            dropout=0.0, last_steps=3)
N, T, S, C = 2, 5, 32, 7   # 32x32 frames -> pool4/conv5_3 maps 2x2, K2 = 4


def _init(model, video):
  return jax.jit(model.init)({"params": jax.random.key(0), "dropout": jax.random.key(1)}, video)


def _video(seed=0, t=T, s=S):
  return jax.random.normal(jax.random.key(seed), (N, t, s, s, 3))


def _random_params(model, video):
  """Parameters of ``model`` without compiling its init: shapes by ``eval_shape``, values N(0, 0.04 +
  1/fan_in) (LeCun's variance plus a perturbation, so biases are non-zero too)."""
  shapes = jax.eval_shape(lambda v: _init(model, v), video)["params"]
  rng = np.random.default_rng(0)
  std = lambda shape: np.sqrt(0.04 + (1 / np.prod(shape[:-1]) if len(shape) > 1 else 0))
  return jax.tree.map(lambda a: jnp.asarray(rng.normal(size=a.shape) * std(a.shape), jnp.float32), shapes)


@pytest.fixture(scope="module")
def run():
  """The default tiny model (two branches, 3D, late fusion) with random parameters, compiled once:
  its outputs, the cell's input sequence (the convnet maps, captured) and the gradients of the joint
  loss with VGG frozen, shared by the tests below."""
  model = JointLSTM(num_classes=C, **TINY)
  video = _video(1)
  params = _random_params(model, video)
  capture = lambda m, _: m.name in ("conv_pool4", "conv_conv5_3")
  grads, (out, inter) = _grads(model, params, video, capture)
  maps = [inter["intermediates"][f"conv_{b}"]["__call__"][0] for b in ("pool4", "conv5_3")]
  return {"video": video, "params": params, "out": out, "grads": grads,
          "x": jnp.stack([m.reshape(m.shape[:2] + (-1, m.shape[-1])) for m in maps], 2)}


def _grads(model, params, video, capture=False):
  """Gradients of the summed joint_lstm loss (labels 1, 4; dropout is 0 in TINY) and the forward's
  (outputs, captured intermediates)."""
  labels = jnp.array([1, 4])

  def loss(p):
    out, inter = model.apply({"params": p}, video, train=True, rngs={"dropout": jax.random.key(0)},
                             capture_intermediates=capture, mutable=["intermediates"])
    return sum(joint_lstm_loss(out, labels, ml_collections.ConfigDict(), p).values()), (out, inter)

  return jax.jit(jax.grad(loss, has_aux=True))(params)


@pytest.mark.parametrize("branches,conv_type,fusion", [(("pool4", "conv5_3"), "3d", "late"),
                                                       (("conv5_3",), "2d", "late"),
                                                       (("pool4", "conv5_3"), "none", "early")])
def test_output_shapes(branches, conv_type, fusion):
  model = JointLSTM(num_classes=C, branches=branches, conv_type=conv_type, fusion=fusion, **TINY)
  video = jax.ShapeDtypeStruct((N, T, S, S, 3), jnp.float32)
  variables = jax.eval_shape(lambda v: _init(model, v), video)
  out = jax.eval_shape(model.apply, variables, video)
  k2 = 4
  chex.assert_shape(out["logits"], (N, C))
  chex.assert_shape([out["step_logits"], out["probs"]], (N, T, C))
  chex.assert_shape(out["attention"], (N, T, k2))
  expected = {"logits", "step_logits", "probs", "attention"}
  if conv_type != "none":
    expected |= {f"{p}_{b}" for b in branches for p in ("logits_3d", "energy")}
    for b in branches:
      chex.assert_shape(out[f"logits_3d_{b}"], (N, C))
      chex.assert_shape(out[f"energy_{b}"], (N, T, k2))
  assert set(out) == expected


def test_outputs_are_distributions(run):
  out = run["out"]
  for key in ("attention", "probs", "energy_pool4", "energy_conv5_3"):
    np.testing.assert_allclose(out[key].sum(-1), 1.0, rtol=1e-5, err_msg=key)
    assert float(out[key].min()) >= 0, key
  np.testing.assert_allclose(out["probs"], jax.nn.softmax(out["step_logits"]), rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(out["logits"], clip_logits(out["step_logits"], TINY["last_steps"]), rtol=1e-6)


def test_paper_size_shapes_and_parameter_count():
  """384 -> 24 (pool4, conv5_3) -> 11 (stride-2 VALID) via eval_shape; 115,929,391 parameters besides
  VGG16's 14,714,688 with the readings of docs/models/joint_lstm.md (C = 101)."""
  model = JointLSTM(num_classes=101)
  video = jax.ShapeDtypeStruct((1, 30, 384, 384, 3), jnp.float32)
  variables = jax.eval_shape(lambda v: _init(model, v), video)
  out = jax.eval_shape(lambda p, v: model.apply(p, v), variables, video)
  chex.assert_shape(out["attention"], (1, 30, 121))
  chex.assert_shape(out["energy_pool4"], (1, 30, 121))
  chex.assert_shape(out["probs"], (1, 30, 101))
  params = variables["params"]
  count = lambda tree: sum(int(np.prod(a.shape)) for a in jax.tree.leaves(tree))
  assert params["conv_pool4"]["conv1"]["kernel"].shape == (3, 3, 3, 512, 256)
  assert params["ds_pool4"]["fc1"]["kernel"].shape == (11 * 11 * 256, 1024)
  assert params["rnn"]["cell"]["input_0"]["kernel"].shape == (5 * 256, 1024)   # pyramid of 5 parts
  assert count(params["vgg"]) == 14_714_688
  assert count(params) - count(params["vgg"]) == 115_929_391


def _np_joint(params, x, c, h, fusion):
  """numpy J2-J5 with explicit per-branch matrices sliced from the parameters."""
  sig = lambda z: 1 / (1 + np.exp(-z))
  n, hid = x.shape[1], h.shape[1]
  p = jax.tree.map(np.asarray, params)
  gates = {g: 0.0 for g in "ifo"}
  cand = h @ p["cand_h"]["kernel"] + p["cand_h"]["bias"]
  for k in range(n):
    wx, bx = p[f"sub_x_{k}"]["kernel"], p[f"sub_x_{k}"]["bias"]
    wh = p["sub_h"]["kernel"][:, k * 3 * hid:(k + 1) * 3 * hid]
    sub = {}
    for j, g in enumerate("ifo"):                                       # (J2)
      cols = slice(j * hid, (j + 1) * hid)
      sub[g] = np.tanh(x[:, k] @ wx[:, cols] + h @ wh[:, cols] + bx[cols])
      gates[g] = gates[g] + sub[g] @ p[f"gate_{g}"]["kernel"][k * hid:(k + 1) * hid]   # sum_k W_ggk g^k
    inp = x[:, k] if fusion == "early" else x[:, k] * sub["i"]         # (J4a) / (J4b)
    cand = cand + inp @ p["cand_x"]["kernel"][k * hid:(k + 1) * hid]
  i, f, o = (sig(gates[g]) for g in "ifo")                             # (J3)
  c = f * c + i * np.tanh(cand)                                         # (J5)
  return c, o * np.tanh(c)


@pytest.mark.parametrize("fusion", ["early", "late"])
def test_joint_cell_matches_numpy(fusion):
  b, n, hid = 3, 2, 6
  rng = np.random.default_rng(0)
  x, c, h = (rng.normal(size=s).astype(np.float32) for s in ((b, n, hid), (b, hid), (b, hid)))
  cell = JointLSTMCell(hid, fusion)
  shapes = jax.eval_shape(cell.init, jax.random.key(0), (c, h), x)["params"]
  params = jax.tree.map(lambda a: jnp.asarray(rng.normal(size=a.shape) * 0.4, jnp.float32), shapes)
  (c1, h1), out = jax.jit(cell.apply)({"params": params}, (c, h), x)
  c_ref, h_ref = _np_joint(params, x, c, h, fusion)
  np.testing.assert_allclose(c1, c_ref, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(h1, h_ref, rtol=1e-5, atol=1e-5)
  np.testing.assert_array_equal(out, h1)
  if fusion == "late":   # the two fusions differ on the same parameters
    (_, h_early), _ = jax.jit(JointLSTMCell(hid, "early").apply)({"params": params}, (c, h), x)
    assert np.abs(h_early - h1).max() > 1e-3


def test_pyramid_masks_and_pooling():
  m = pyramid_masks(11)
  assert m.shape == (5, 121)
  np.testing.assert_array_equal(m.sum(1), [121, 36, 30, 30, 25])    # split at row/col 6
  np.testing.assert_array_equal(m[1:].sum(0), 1)                     # quadrants tile the map
  assert m[1].reshape(11, 11)[5, 5] == 1 and m[4].reshape(11, 11)[6, 6] == 1
  rng = np.random.default_rng(1)
  feats = rng.normal(size=(2, 3, 16, 5)).astype(np.float32)
  att = rng.dirichlet(np.ones(16), size=2).astype(np.float32)
  got = np.asarray(pyramid_pool(jnp.asarray(feats), jnp.asarray(att), pyramid_masks(4), eps=0.0))
  assert got.shape == (2, 3, 25)
  for r, mask in enumerate(pyramid_masks(4)):
    w = att * mask
    ref = np.einsum("bk,bnkc->bnc", w / w.sum(1, keepdims=True), feats)   # (J7) per region
    np.testing.assert_allclose(got[..., r * 5:(r + 1) * 5], ref, rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match="pyramid"):
    pyramid_masks(1)


def test_clip_logits_is_log_mean_prob_of_last_steps():
  rng = np.random.default_rng(2)
  z = rng.normal(size=(2, 6, 4)).astype(np.float32) * 3
  p = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
  got = np.asarray(clip_logits(jnp.asarray(z), 4))
  np.testing.assert_allclose(np.exp(got), p[:, -4:].mean(1), rtol=1e-5)   # (J9): mean of 4 steps, not 5
  np.testing.assert_allclose(np.exp(got).sum(-1), 1.0, rtol=1e-5)


def test_regulariser_zero_iff_energy_matches_attention():
  rng = np.random.default_rng(3)
  att = rng.dirichlet(np.ones(9), size=(2, 4)).astype(np.float32)        # [N, T, K2]
  scale = rng.uniform(0.5, 2.0, size=(2, 4, 1, 1, 6)).astype(np.float32)
  x = att.reshape(2, 4, 3, 3, 1) * scale / scale.sum(-1, keepdims=True)  # channels sum to att
  energy = channel_energy(jnp.asarray(x))
  np.testing.assert_allclose(energy, att, rtol=1e-4, atol=1e-6)
  assert float(attention_regulariser(energy, jnp.asarray(att))) < 1e-8
  other = np.roll(att, 1, axis=-1)
  ref = ((att - other) ** 2).sum((1, 2)).mean()
  np.testing.assert_allclose(attention_regulariser(jnp.asarray(att), jnp.asarray(other)), ref, rtol=1e-5)
  assert ref > 0


def test_scan_equals_unrolled_loop(run):
  out, x, params = run["out"], run["x"], run["params"]
  cell = AttentionLSTMStack(hidden=TINY["hidden"], input_units=TINY["input_units"])
  carry = cell.initialize_carry(None, x[:, 0].shape)
  step = jax.jit(cell.apply)
  hs, atts = [], []
  for t in range(T):
    carry, y = step({"params": params["rnn"]["cell"]}, carry, x[:, t])
    hs.append(y["h"])
    atts.append(y["attention"])
  np.testing.assert_allclose(out["attention"], jnp.stack(atts, 1), rtol=1e-5, atol=1e-6)
  k = params["classifier"]
  ref = jnp.stack(hs, 1) @ k["kernel"] + k["bias"]
  np.testing.assert_allclose(out["step_logits"], ref, rtol=1e-4, atol=1e-5)
  assert np.abs(np.diff(np.asarray(out["attention"]), axis=1)).max() > 1e-4   # attention moves with h


def _norm(tree) -> float:
  return float(sum(np.abs(np.asarray(g)).sum() for g in jax.tree.leaves(tree)))


def test_gradients_reach_convnet_not_frozen_vgg(run):
  grads = run["grads"]
  for name in ("conv_pool4", "conv_conv5_3", "ds_pool4", "ds_conv5_3", "rnn", "classifier"):
    assert _norm(grads[name]) > 0, name
  assert _norm(grads["vgg"]) == 0


def test_gradients_reach_finetuned_vgg(run):
  grads, _ = _grads(JointLSTM(num_classes=C, finetune_vgg=True, **TINY), run["params"], run["video"])
  assert _norm(grads["vgg"]) > 0
  rest = lambda g: {k: v for k, v in g.items() if k != "vgg"}   # stop_gradient changes nothing else
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), rest(grads), rest(run["grads"]))


def test_frozen_vgg_is_bit_identical_after_a_step_with_weight_decay(run):
  """The recipe derives optimizer.frozen from model.finetune_vgg: a frozen VGG16 gets neither a step
  nor weight decay; the same step with the glob dropped does shrink its kernels."""
  c = recipe.get_config("ucf101", "synthetic")
  assert c.optimizer.frozen == "vgg/*"
  c.optimizer.update(weight_decay=0.1, lr=0.01, warmup_steps=0)
  params, grads = run["params"], run["grads"]

  def step(cfg):
    tx, _ = optim.make_optimizer(cfg.optimizer, 10)

    def apply(p, g):
      updates, _ = tx.update(g, tx.init(p), p)
      return optax.apply_updates(p, updates)
    return jax.jit(apply)(params, grads)

  new = step(c)
  jax.tree.map(np.testing.assert_array_equal, new["vgg"], params["vgg"])
  assert np.abs(new["conv_pool4"]["conv1"]["kernel"] - params["conv_pool4"]["conv1"]["kernel"]).max() > 0
  tuned = ablate.apply_overrides(c, {"model.finetune_vgg": True})   # the glob follows finetune_vgg
  assert tuned.optimizer.frozen == "" and c.optimizer.frozen == "vgg/*"
  decayed = step(tuned)["vgg"]["conv1_1"]["kernel"]                  # zero gradient, weight decay only
  np.testing.assert_allclose(decayed, params["vgg"]["conv1_1"]["kernel"] * (1 - 0.01 * 0.1), rtol=1e-5)


def test_loss_terms_and_attention_stop_gradient():
  rng = np.random.default_rng(4)
  outputs = {"step_logits": jnp.asarray(rng.normal(size=(2, 5, 3)), jnp.float32),
             "attention": jnp.asarray(rng.dirichlet(np.ones(4), size=(2, 5)), jnp.float32),
             "logits_3d_a": jnp.asarray(rng.normal(size=(2, 3)), jnp.float32),
             "energy_a": jnp.asarray(rng.dirichlet(np.ones(4), size=(2, 5)), jnp.float32)}
  labels = jnp.array([0, 2])
  cfg = ml_collections.ConfigDict({"lambda_att": 10.0})
  terms = joint_lstm_loss(outputs, labels, cfg, None)
  logp = jax.nn.log_softmax(outputs["step_logits"])
  np.testing.assert_allclose(terms["lstm"], -np.mean([logp[b, :, labels[b]] for b in range(2)]), rtol=1e-5)
  np.testing.assert_allclose(terms["att_reg_a"], 10 * attention_regulariser(outputs["energy_a"],
                                                                            outputs["attention"]), rtol=1e-6)
  assert set(terms) == {"lstm", "deep_sup_a", "att_reg_a"}
  grad = lambda c: jax.grad(lambda a: joint_lstm_loss({**outputs, "attention": a}, labels, c, None)["att_reg_a"])(
      outputs["attention"])
  assert float(jnp.abs(grad(cfg)).max()) == 0.0
  assert float(jnp.abs(grad(ml_collections.ConfigDict({"att_reg_grad_to_attention": True}))).max()) > 0
  last = joint_lstm_loss(outputs, labels, ml_collections.ConfigDict({"lstm_steps": "last", "last_steps": 2}), None)
  np.testing.assert_allclose(last["lstm"], -np.mean([logp[b, -2:, labels[b]] for b in range(2)]), rtol=1e-5)
  assert "att_reg_a" not in joint_lstm_loss(outputs, labels, ml_collections.ConfigDict({"lambda_att": 0.0}), None)


def test_bad_settings_fail_clearly():
  video = _video()
  with pytest.raises(ValueError, match="input_units"):
    _init(JointLSTM(num_classes=C, **{**TINY, "input_units": 8}), video)
  with pytest.raises(ValueError, match="not VGG16 taps"):
    _init(JointLSTM(num_classes=C, branches=("pool9",), **TINY), video)
  with pytest.raises(ValueError, match="different sizes"):
    _init(JointLSTM(num_classes=C, branches=("pool3", "conv5_3"), **TINY), video)
  with pytest.raises(ValueError, match="equal channels"):   # pool3 has half conv4_3's channels
    _init(JointLSTM(num_classes=C, **{**TINY, "branches": ("pool3", "conv4_3"), "conv_type": "none"}), video)
  with pytest.raises(ValueError, match="last_steps"):
    _init(JointLSTM(num_classes=C, **{**TINY, "last_steps": 9}), video)
  with pytest.raises(ValueError, match="reduce"):
    _init(JointLSTM(num_classes=C, **{**TINY, "reduce": "half"}), video)


def test_sliding_clips_sampler():
  np.testing.assert_array_equal(samplers.sliding_clips(12, 4, 2, 3)[:, 0], [0, 3])   # span 7: starts 0..5
  clips = samplers.sliding_clips(5, 4, 2, 3)                                          # short: padded
  np.testing.assert_array_equal(clips, [[0, 2, 4, 4]])
  sampler = samplers.TEMPORAL_SAMPLERS.get("sliding")(clip_len=3, stride=1, test_clip_stride=2)
  np.testing.assert_array_equal(sampler.test(8), [[0, 1, 2], [2, 3, 4], [4, 5, 6]])
  assert sampler.num_frames == 3 and sampler.train(2, np.random.default_rng(0)).tolist() == [0, 1, 1]


def test_configs_build_the_model():
  c = recipe.get_config("hmdb51", "early,split3")
  assert (c.model.fusion, c.dataset.name, c.input.clip_len, c.model.last_steps) == ("early", "hmdb51/split3", 30, 16)
  with pytest.raises(ValueError, match="early"):
    recipe.get_config("ucf101", "early,late")
  s = recipe.get_config("ucf101", "synthetic")
  model = build_model(s.model, 12)
  video = jnp.zeros((1, s.input.clip_len, s.input.crop, s.input.crop, 3))
  out = jax.eval_shape(lambda v: model.init_with_output({"params": jax.random.key(0)}, v)[0], video)
  chex.assert_shape(out["attention"], (1, s.input.clip_len, 16))


def test_visualisation_helpers(tmp_path):
  from vidrec.tools import visualize_joint_lstm as vis
  att = np.zeros((3, 4), np.float32)
  att[:, 3] = 1.0                                                     # all attention bottom-right
  up = vis.upsample(att, (8, 8))
  assert up.shape == (3, 8, 8) and up[:, -1, -1].min() == 1.0 and up[:, 0, 0].max() == 0.0
  vis.render_attention([np.full((3, 8, 8, 3), 128.0)], [att], ["a"], str(tmp_path / "att.png"))
  (tmp_path / "run").mkdir()
  (tmp_path / "run" / "metrics.jsonl").write_text('{"step": 1, "loss/lstm": 2.0}\n{"step": 2, "loss/lstm": 1.5}\n')
  steps, values = vis.read_curve(str(tmp_path / "run"))
  np.testing.assert_array_equal(steps, [1, 2])
  np.testing.assert_array_equal(values, [2.0, 1.5])
  vis.render_curves([(str(tmp_path / "run"), "x")], str(tmp_path / "loss.png"))
  assert (tmp_path / "att.png").stat().st_size > 0 and (tmp_path / "loss.png").stat().st_size > 0


@pytest.mark.slow
def test_term_gradients_tool_splits_the_loss_and_its_gradient():
  """``vidrec.tools.joint_lstm_terms``: the values are the joint_lstm loss's terms; lambda R reaches the
  convnet branches only (the attention is a stop-gradient target); the CE and lambda R groups add up to
  the total gradient (their modules' norms obey the triangle inequality, and equal it where one group
  alone reaches a module)."""
  from vidrec.tools.joint_lstm_terms import term_gradients
  model = JointLSTM(num_classes=C, **TINY)
  video = _video(t=4)
  params = _random_params(model, video)
  cfg = ml_collections.ConfigDict({"lambda_att": 1000.0})
  labels = jnp.array([1, 4])
  values, norms = term_gradients(model, params, video, labels, cfg, 0)
  out = model.apply({"params": params}, video, train=True, rngs={"dropout": jax.random.key(0)})
  want = joint_lstm_loss(out, labels, cfg, params)
  assert values.keys() == want.keys()
  for k in want:
    np.testing.assert_allclose(values[k], want[k], rtol=1e-5, err_msg=k)
  reg = {m for m, v in norms["lambda R"].items() if v > 0}
  assert reg == {"conv_pool4", "conv_conv5_3"}
  for m, v in norms["total"].items():
    ce, r = norms["CE"][m], norms["lambda R"][m]
    assert abs(ce - r) * (1 - 1e-4) <= v <= (ce + r) * (1 + 1e-4) + 1e-12, m
    if m not in reg:
      np.testing.assert_allclose(v, ce, rtol=1e-5, err_msg=m)
