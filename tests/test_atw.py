"""ATW (paper 002): Eq. 2-4 against numpy, the consensus registry, any number of test snippets,
cross-modality initialisation, partial BN, paper-size shapes (eval_shape only)."""
import chex
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from vidrec import losses
from vidrec.models import build_model
from vidrec.models import atw, consensus


def _apply(module, a):
  variables = module.init(jax.random.key(0), a)
  return variables, module.apply(variables, a)


def test_attention_matches_numpy_eq2_to_4():
  a = np.random.default_rng(0).normal(size=(2, 5, 7)).astype(np.float32)
  for act, np_act in [("relu", lambda x: np.maximum(x, 0)), ("tanh", np.tanh),
                      ("sigmoid", lambda x: 1 / (1 + np.exp(-x))), ("none", lambda x: x)]:
    module = consensus.Attention(num_segments=5, activation=act)
    variables = module.init(jax.random.key(0), a)
    w_att = np.random.default_rng(1).normal(size=7).astype(np.float32)
    variables = {"params": {"kernel": jnp.asarray(w_att), "bias": jnp.float32(0.3)}}
    score, w = module.apply(variables, a)
    e = np_act(a @ w_att + 0.3)                                       # Eq. 2
    w_ref = np.exp(e) / np.exp(e).sum(1, keepdims=True)               # Eq. 3
    np.testing.assert_allclose(w, w_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(score, (w_ref[..., None] * a).sum(1), rtol=1e-5, atol=1e-5)   # Eq. 4
    np.testing.assert_allclose(np.asarray(w).sum(1), 1.0, rtol=1e-6)


def test_uniform_snippets_give_uniform_weights():
  a = np.tile(np.random.default_rng(0).normal(size=(3, 1, 6)), (1, 4, 1)).astype(np.float32)
  for init in ("gaussian", "one", "one_over_n"):
    _, (score, w) = _apply(consensus.Attention(num_segments=4, init_scheme=init), a)
    np.testing.assert_allclose(w, 0.25, rtol=1e-6)
    np.testing.assert_allclose(score, a[:, 0], rtol=1e-5)


def test_attention_init_values():
  a = jnp.zeros((1, 4, 6))
  inits = {"one": 1.0, "one_over_n": 0.25}
  for name, value in inits.items():
    v, _ = _apply(consensus.Attention(num_segments=4, init_scheme=name), a)
    np.testing.assert_allclose(v["params"]["kernel"], value)
    assert float(v["params"]["bias"]) == 0.0
  v, _ = _apply(consensus.Attention(num_segments=4, init_scheme="gaussian"), jnp.zeros((1, 4, 4000)))
  assert 0.0008 < float(np.std(v["params"]["kernel"])) < 0.0012
  with pytest.raises(ValueError, match="attention_init"):
    _apply(consensus.Attention(num_segments=4, init_scheme="xavier"), a)


def test_avg_and_max_consensus():
  a = np.random.default_rng(0).normal(size=(2, 5, 3)).astype(np.float32)
  _, (score, w) = _apply(consensus.Average(num_segments=5), a)
  np.testing.assert_allclose(score, a.mean(1), rtol=1e-6)
  np.testing.assert_allclose(w, 0.2)
  _, (score, w) = _apply(consensus.Max(num_segments=5), a)
  np.testing.assert_allclose(score, a.max(1))
  ref = np.stack([[np.mean(a[b].argmax(0) == t) for t in range(5)] for b in range(2)])
  np.testing.assert_allclose(w, ref, rtol=1e-6)


def test_positional_consensus_groups_test_snippets():
  a = np.random.default_rng(0).normal(size=(2, 8, 3)).astype(np.float32)
  module = consensus.Positional(num_segments=4, activation="none", init_scheme="one_over_n")
  _, (score, w) = _apply(module, a)      # weight 1/N: "equivalent to average consensus" (Table 2)
  np.testing.assert_allclose(score, a.mean(1), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(np.asarray(w).sum(1), 1.0, rtol=1e-6)
  with pytest.raises(ValueError, match="multiple of model.num_segments"):
    _apply(module, a[:, :6])


def test_unknown_names_are_errors():
  with pytest.raises(KeyError, match="model.consensus"):
    consensus.CONSENSUS.get("mean")
  with pytest.raises(KeyError, match="attention_activation"):
    _apply(consensus.Attention(num_segments=2, activation="gelu"), jnp.zeros((1, 2, 3)))


def _tiny_cfg(**kw):
  cfg = {"name": "atw", "depth": 18, "width": 4, "num_segments": 3, "dropout": 0.5}
  cfg.update(kw)
  return ml_collections.ConfigDict(cfg)


@pytest.mark.slow
def test_outputs_and_8_vs_80_snippets_same_parameters():
  model = build_model(_tiny_cfg(), 5)
  video = jax.random.normal(jax.random.key(1), (1, 3, 16, 16, 10))
  variables = model.init({"params": jax.random.key(0)}, video)
  apply = jax.jit(model.apply)
  out = apply(variables, video)
  chex.assert_shape([out["logits"], out["snippet_logits"], out["attention"]], [(1, 5), (1, 3, 5), (1, 3)])
  long = jnp.concatenate([video] * 27, axis=1)[:, :80]    # 80 test snippets, same parameters
  out80 = apply(variables, long)
  chex.assert_shape([out80["logits"], out80["attention"]], [(1, 5), (1, 80)])
  np.testing.assert_allclose(np.asarray(out80["attention"]).sum(1), 1.0, rtol=1e-5)
  # Snippet scores do not depend on the other snippets (eval mode): the first 3 are the same.
  np.testing.assert_allclose(out80["snippet_logits"][:, :3], out["snippet_logits"], rtol=1e-4, atol=1e-5)


def test_avg_consensus_model_is_mean_of_snippet_logits():
  model = build_model(_tiny_cfg(consensus="avg"), 4)
  video = jax.random.normal(jax.random.key(1), (2, 3, 16, 16, 3))
  out = jax.jit(model.apply)(model.init(jax.random.key(0), video), video)
  np.testing.assert_allclose(out["logits"], out["snippet_logits"].mean(1), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_partial_bn_freezes_statistics_and_scale_offset_of_all_but_the_first_batchnorm():
  """TSN's partial BN after one real train step of the paper recipe (tiny widths): every BatchNorm in
  the stages keeps its running statistics and its scale/offset bit for bit; conv1's BatchNorm and the
  convolutions change."""
  from configs.recipes.atw import atw_config
  from vidrec import losses, optim, param_paths, trainer
  cfg = atw_config("rgb", "ucf101", ("split1",))
  cfg.model.update(depth=18, width=4, num_segments=2)
  cfg.input.update(num_segments=2, crop=32)
  tx, schedule = optim.make_optimizer(cfg.optimizer, cfg.num_train_steps)
  model = build_model(cfg.model, 5)
  ts = trainer.init_state(model, tx, cfg, jax.random.key(0))
  batch = {"video": jax.random.normal(jax.random.key(1), (4, 2, 32, 32, 3)), "label": jnp.arange(4) % 5}
  step = trainer.make_train_step(model, tx, losses.LOSSES.get(cfg.loss.name), cfg.loss, schedule, jax.random.key(2))
  new, _ = jax.jit(step)(ts, batch)
  before = param_paths.flatten({"params": ts.params, **ts.model_state})
  after = param_paths.flatten({"params": new.params, **new.model_state})
  changed = {k for k in before if not np.array_equal(before[k], after[k])}
  bn = {k for k in before if "/bn/" in k}
  first_bn = {k for k in bn if k.split("/")[1] == "conv1"}
  assert len(first_bn) == 4 and len(bn) == 4 * 20                 # scale, bias, mean, var of 20 BNs
  assert not changed & (bn - first_bn)                             # frozen: statistics and scale/offset
  assert first_bn <= changed                                       # conv1's BN trains as usual
  assert {"params/conv1/conv/kernel", "params/layer4_1/conv_b/conv/kernel", "params/fc/kernel"} <= changed
  frozen = {k for k in before if k.startswith("params/") and param_paths.matches(k[7:], ("layer*/bn/*",))}
  assert frozen == {k for k in bn - first_bn if k.startswith("params/")}
  # Without partial BN every BatchNorm normalises by the batch and updates its statistics.
  off = atw_config("rgb,synthetic", "ucf101", ("split1",))
  assert off.model.partial_bn is False and off.optimizer.frozen == ""
  model = build_model(ml_collections.ConfigDict({**cfg.model.to_dict(), "partial_bn": False}), 5)
  _, stats = model.apply({"params": ts.params, **ts.model_state}, batch["video"], train=True,
                         rngs={"dropout": jax.random.key(2)}, mutable=["batch_stats"])
  assert all(not np.array_equal(x, y) for x, y in zip(jax.tree.leaves(ts.model_state["batch_stats"]),
                                                      jax.tree.leaves(stats["batch_stats"])))


@pytest.mark.slow
def test_remat_changes_nothing_but_memory():
  video = jax.random.normal(jax.random.key(1), (2, 2, 16, 16, 3))
  grads = {}
  for remat in (False, True):
    model = build_model(_tiny_cfg(remat=remat, dropout=0.0), 4)
    variables = model.init(jax.random.key(0), video)
    loss = lambda p, m=model, v=variables: m.apply({**v, "params": p}, video, train=True,
                                                   mutable=["batch_stats"])[0]["logits"].sum()
    grads[remat] = jax.jit(jax.grad(loss))(variables["params"])
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), grads[False], grads[True])


def test_cross_modality_kernel_is_mean_over_rgb_replicated():
  rgb = np.random.default_rng(0).normal(size=(7, 7, 3, 64)).astype(np.float32)
  flow = atw.cross_modality_kernel(rgb, 10)
  assert flow.shape == (7, 7, 10, 64) and flow.dtype == np.float32
  for c in range(10):
    np.testing.assert_allclose(flow[:, :, c], (rgb[:, :, 0] + rgb[:, :, 1] + rgb[:, :, 2]) / 3, rtol=1e-6)
  # It fits the flow model's conv1 parameter.
  model = build_model(_tiny_cfg(width=64), 4)
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 3, 32, 32, 10))))
  assert shapes["params"]["conv1"]["conv"]["kernel"].shape == flow.shape
  with pytest.raises(ValueError, match="conv kernel"):
    atw.cross_modality_kernel(rgb[0], 10)


def test_paper_size_shapes_resnet50():
  model = build_model(ml_collections.ConfigDict({"name": "atw", "depth": 50, "num_segments": 8}), 101)
  out = jax.eval_shape(lambda v: model.init_with_output(jax.random.key(0), v)[0],
                       jnp.zeros((2, 8, 224, 224, 10)))
  chex.assert_shape([out["logits"], out["snippet_logits"], out["attention"]], [(2, 101), (2, 8, 101), (2, 8)])
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 8, 224, 224, 3))))
  n_params = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes["params"]))
  # torchvision resnet50 with a 101-class fc (23,508,032 + 2048*101 + 101) + w_att (101) + b (1).
  assert n_params == 23_508_032 + 2048 * 101 + 101 + 101 + 1


def test_configs_follow_sec_3_3():
  from configs.recipes.atw import atw_config
  from vidrec import config as config_lib
  rgb = atw_config("", "ucf101", ("split1", "split2", "split3"))
  flow = atw_config("flow,split2", "ucf101", ("split1", "split2", "split3"))
  for c in (rgb, flow):
    config_lib.validate(c)
    assert c.batch_size == 128 and c.input.num_test_segments == 80 and c.optimizer.momentum == 0.9
  assert rgb.input.modality == "rgb" and rgb.input.frames_per_segment == 1
  assert rgb.optimizer.lr == 0.001 and rgb.optimizer.decay_every == 2000
  assert flow.input.modality == "flow" and flow.input.frames_per_segment == 5
  assert flow.optimizer.lr == 0.005 and tuple(flow.optimizer.decay_steps) == (12_000, 18_000)
  assert flow.dataset.name == "ucf101/split2_s256_tvl1_warped"
  synthetic = atw_config("warped_flow,synthetic", "hmdb51", ("split1",))
  assert synthetic.dataset.name == "synthetic_actions/flow" and synthetic.input.modality == "warped_flow"
  pos = atw_config("rgb,synthetic,positional", "ucf101", ("split1",))
  assert pos.model.consensus == "positional" and pos.input.num_test_segments == 78   # multiple of N = 3
  with pytest.raises(ValueError, match="one stream"):
    atw_config("rgb,flow", "ucf101", ("split1",))


def test_attention_health_against_numpy():
  """Eq. 2-3's diagnostics: fraction of energies rectified to 0, H(w) / ln T, videos with all e_i = 0."""
  a = np.random.default_rng(0).normal(size=(3, 4, 5)).astype(np.float32)
  a[2] = -np.abs(a[2])                                   # with w_att >= 0, b = 0: video 2 is all zero
  w_att = np.abs(np.random.default_rng(1).normal(size=5)).astype(np.float32)
  module = consensus.Attention(num_segments=4)
  variables = {"params": {"kernel": jnp.asarray(w_att), "bias": jnp.float32(0.0)}}
  (_, w), sown = module.apply(variables, a, mutable=[losses.METRICS])
  e = np.maximum(a @ w_att, 0)
  w_ref = np.exp(e) / np.exp(e).sum(1, keepdims=True)
  want = {"metrics/zero_energy": np.mean(e == 0), "metrics/dead": 1 / 3,
          "metrics/entropy": np.mean(-(w_ref * np.log(w_ref)).sum(1) / np.log(4))}
  got = losses.sown_metrics(sown[losses.METRICS])
  assert set(got) == set(want)
  for k, v in want.items():
    np.testing.assert_allclose(got[k], v, rtol=1e-5, err_msg=k)
  np.testing.assert_allclose(w[2], 0.25)                # dead: exactly average consensus
  assert module.apply(variables, a)[1].shape == (3, 4)  # evaluation: nothing sown, nothing returned


def test_train_step_logs_attention_health_and_alerts_when_dead():
  import optax
  from vidrec import trainer
  model = build_model(_tiny_cfg(), 5)
  tx, schedule = optax.sgd(0.01), optax.constant_schedule(0.01)
  variables = model.init(jax.random.key(0), jnp.zeros((1, 2, 16, 16, 3)))
  assert losses.METRICS not in variables
  ts = trainer.TrainState(step=jnp.zeros((), jnp.int32), params=variables["params"],
                          model_state={k: v for k, v in variables.items() if k != "params"},
                          opt_state=tx.init(variables["params"]))
  batch = {"video": jax.random.normal(jax.random.key(1), (2, 2, 16, 16, 3)), "label": jnp.arange(2)}
  _, m = jax.jit(trainer.make_train_step(model, tx, losses.LOSSES.get("classification"),
                                         ml_collections.ConfigDict(), schedule, jax.random.key(2)))(ts, batch)
  assert {"metrics/consensus/zero_energy", "metrics/consensus/entropy", "metrics/consensus/dead"} <= set(m)
  assert "loss/ce" in m and not any(k.startswith("loss/metrics") for k in m)
  assert 0.0 <= float(m["metrics/consensus/entropy"]) <= 1.0 + 1e-6
  assert losses.alerts({"metrics/consensus/dead": 0.5}) == []
  assert "average consensus" in losses.alerts({"metrics/consensus/dead": 1.0})[0]
