"""Tests for U2S (paper 003): CSM (Eq. 1-2), mask selection (Fig. 3), w_regular (Eq. 4-6), the shared
Res2D, per-class statistics, the temporal shift and the output shapes of every variant.

Kept small for 2 shared CPU cores: width 8, 4 frames, 32 px. Parameters are filled from
``jax.eval_shape(model.init)`` with numpy (real ``init`` compiles one RNG kernel per shape, ~15 s).
"""
from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from vidrec.losses import LOSSES
from vidrec.models import build_model
from vidrec.models import csm as csm_lib
from vidrec.models import u2s

B, T, S, M = 2, 4, 32, 10
MUTABLE = ["batch_stats", "u2s_stats"]


def _cfg(**kw) -> ml_collections.ConfigDict:
  base = dict(name="u2s", depth=18, width=8, csm_warmup_steps=0, csm_distance="cosine")
  base.update(kw)
  return ml_collections.ConfigDict(base)


def _fast_init(model, video, seed=0):
  rng = np.random.default_rng(seed)
  shapes = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), video, train=False))

  def fill(path, s):
    name = path[-1].key
    if name in ("scale", "var"):
      return jnp.ones(s.shape, s.dtype)
    if name in ("bias", "mean") or path[0].key == "u2s_stats":
      return jnp.zeros(s.shape, s.dtype)
    fan_in = int(np.prod(s.shape[:-1]))
    return jnp.asarray(rng.normal(0.0, np.sqrt(2.0 / fan_in), s.shape), s.dtype)

  return jax.tree_util.tree_map_with_path(fill, shapes)


@pytest.fixture(scope="module")
def video():
  return jax.random.normal(jax.random.PRNGKey(0), (B, T, S, S, 3))


@pytest.fixture(scope="module")
def labels():
  return jnp.array([1, 7], jnp.int32)


@pytest.fixture(scope="module")
def u2s_model(video):
  model = build_model(_cfg(), M)
  return model, _fast_init(model, video)


# ---------------------------------------------------------------- CSM (Eq. 1-2) and alpha rules

def test_channel_sparsity_eq1():
  f = np.zeros((1, 2, 2, 1, 3), np.float32)        # T x H x W = 4 positions, 3 channels
  f[0, 0, 0, 0] = [1, 0, 2]
  f[0, 1, 1, 0] = [3, 0, 0]
  f[0, 1, 0, 0] = [0, 0, 5]
  np.testing.assert_allclose(csm_lib.channel_sparsity(jnp.asarray(f)), [[0.5, 1.0, 0.5]])


XI = np.array([[1.0, 0.0, 0.0],
               [0.9, 0.1, 0.0],
               [0.0, 1.0, 0.0],
               [0.0, 0.0, 1.0]], np.float32)


def test_similarity_cosine_and_fixed_alpha():
  s = np.asarray(csm_lib.class_similarity(jnp.asarray(XI), distance="cosine"))
  n = np.linalg.norm(XI, axis=1)
  ref = XI @ XI.T / np.outer(n, n)
  np.fill_diagonal(ref, 1.0)
  np.testing.assert_allclose(s, ref, rtol=1e-6)
  c = np.asarray(csm_lib.binary_csm(jnp.asarray(s), alpha=0.5))
  expected = np.eye(4)
  expected[0, 1] = expected[1, 0] = 1.0               # cos = 0.9 / |(.9, .1)| = 0.994
  np.testing.assert_array_equal(c, expected)


def test_similarity_centred_cosine_numpy():
  rng = np.random.default_rng(5)
  xi = (0.8 + 0.05 * rng.uniform(size=(5, 7))).astype(np.float32)   # a large shared component
  counts = np.array([2, 1, 4, 3, 0])                                 # class 4: no statistics
  s = np.asarray(csm_lib.class_similarity(jnp.asarray(xi), jnp.asarray(counts), "centred_cosine"))
  d = xi[:4] - xi[:4].mean(0)
  n = np.linalg.norm(d, axis=1)
  ref = np.zeros((5, 5))
  ref[:4, :4] = np.clip(d @ d.T / np.outer(n, n), 0, 1)
  np.fill_diagonal(ref, 1.0)
  np.testing.assert_allclose(s, ref, rtol=1e-5, atol=1e-6)
  plain = np.asarray(csm_lib.class_similarity(jnp.asarray(xi), jnp.asarray(counts), "cosine"))
  off = ~np.eye(4, dtype=bool)
  assert plain[:4, :4][off].min() > 0.99               # uncentred: every pair looks alike
  assert s[:4, :4][off].min() == 0.0                   # centred: dissimilar pairs clip to 0


def test_num_confusing_from_top_n_numpy():
  scores = np.array([[0.9, 0.05, 0.03, 0.02],          # label 0: rank 1
                     [0.1, 0.6, 0.2, 0.1],             # label 2: rank 2
                     [0.5, 0.2, 0.2, 0.1],             # label 1: rank 2 (tie with class 2 counts for it)
                     [0.4, 0.3, 0.2, 0.1]])            # label 3: rank 4
  labels = np.array([0, 2, 1, 3])
  # top-1 25%, top-2 75%, top-3 75%, top-4 100%
  for standard, n in ((0.25, 1), (0.5, 2), (0.75, 2), (0.85, 4), (1.0, 4)):
    assert csm_lib.num_confusing_from_top_n(scores, labels, standard) == n
  with pytest.raises(Exception, match="standard"):
    csm_lib.num_confusing_from_top_n(scores, labels, 0.0)


def test_similarity_l1_and_unseen_classes():
  counts = jnp.array([3, 1, 2, 0])
  s = np.asarray(csm_lib.class_similarity(jnp.asarray(XI), counts, distance="l1"))
  ref = 1.0 - np.abs(XI[:, None] - XI[None]).mean(-1)
  ref[3, :] = ref[:, 3] = 0.0                          # class 3 has no statistics yet
  np.fill_diagonal(ref, 1.0)
  np.testing.assert_allclose(s, ref, rtol=1e-6)
  # fixed alpha between 1 - 0.2/3 (pair 0-1) and 1 - 2/3 (other pairs)
  c = np.asarray(csm_lib.binary_csm(jnp.asarray(s), alpha=0.8))
  expected = np.eye(4)
  expected[0, 1] = expected[1, 0] = 1.0
  np.testing.assert_array_equal(c, expected)


def test_alpha_rule_num_confusing():
  # Symmetric S with distinct pair values: N confusing classes per class on average, the class itself
  # included (the top-N set of Sec. IV-B's rule) -> (N - 1) * M off-diagonal positives.
  s = np.eye(4, dtype=np.float32)
  vals = {(0, 1): 0.9, (2, 3): 0.8, (0, 2): 0.7, (1, 3): 0.6, (0, 3): 0.5, (1, 2): 0.4}
  for (i, j), v in vals.items():
    s[i, j] = s[j, i] = v
  for n, expect_alpha in ((2, 0.7), (2.5, 0.6), (1, 0.9)):
    alpha = float(csm_lib.alpha_for_num_confusing(jnp.asarray(s), n))
    assert alpha == pytest.approx(expect_alpha)
    c = np.asarray(csm_lib.binary_csm(jnp.asarray(s), None, n))
    off = c - np.eye(4)
    assert off.sum() == round((n - 1) * 4)
    assert c.sum(0).mean() == pytest.approx(n)            # N per column on average, itself included
    np.testing.assert_array_equal(off, ((s > expect_alpha) & ~np.eye(4, dtype=bool)).astype(np.float32))
  # N * M >= M (M - 1): every pair confusing.
  assert np.all(np.asarray(csm_lib.binary_csm(jnp.asarray(s), None, 10)) == 1)


# ---------------------------------------------------------------- mask selection (Fig. 3)

def test_selection_weights_hand_made():
  c = np.eye(5, dtype=np.float32)
  c[0, 2] = c[2, 0] = c[0, 3] = c[3, 0] = 1.0         # class 0 confusing with 2 and 3
  logits = np.array([[5.0, 0, 0, 0, 0],                # predicted 0 -> average masks 0, 2, 3
                     [0, 0, 0, 0, 3.0],                # predicted 4 -> no confusing class: mask 4 alone
                     [0, 0, 1.0, 0, 0]])               # predicted 2 -> masks 0, 2
  w = np.asarray(csm_lib.selection_weights(jnp.asarray(c), jnp.argmax(logits, -1)))
  np.testing.assert_allclose(w, [[1 / 3, 0, 1 / 3, 1 / 3, 0], [0, 0, 0, 0, 1], [0.5, 0, 0.5, 0, 0]])
  # Combined mask = average of the selected class masks.
  masks = np.random.default_rng(0).normal(size=(3, 2, 1, 1, 5)).astype(np.float32)
  comb = np.einsum("bthwm,bm->bthw", masks, w)
  np.testing.assert_allclose(comb[0], masks[0, ..., [0, 2, 3]].mean(0), rtol=1e-5)
  np.testing.assert_allclose(comb[1], masks[1, ..., 4], rtol=1e-6)


def test_apply_mask_norms():
  rng = np.random.default_rng(1)
  f = rng.normal(size=(2, 3, 2, 2, 4)).astype(np.float32)
  m = rng.normal(size=(2, 3, 2, 2, 1)).astype(np.float32)
  sig = 1 / (1 + np.exp(-m))
  out, a = u2s.apply_mask(jnp.asarray(f), jnp.asarray(m), "sigmoid_residual")
  np.testing.assert_allclose(out, f * (1 + sig), rtol=1e-5)
  np.testing.assert_allclose(a, sig, rtol=1e-5)
  out, a = u2s.apply_mask(jnp.asarray(f), jnp.asarray(m), "multiply")
  np.testing.assert_allclose(out, f * sig, rtol=1e-5)
  np.testing.assert_allclose(a, sig, rtol=1e-5)
  out, a = u2s.apply_mask(jnp.asarray(f), jnp.asarray(m), "softmax")
  e = np.exp(m.reshape(2, -1))
  sm = (e / e.sum(-1, keepdims=True)).reshape(m.shape)
  np.testing.assert_allclose(a, sm, rtol=1e-5)
  # average pooling of the masked features = attention-weighted sum
  np.testing.assert_allclose(np.asarray(out).mean((1, 2, 3)), (f * sm).sum((1, 2, 3)), rtol=1e-4)


def _set_stats(variables, sparsity, counts, updates):
  stats = {"class_sparsity": jnp.asarray(sparsity, jnp.float32),
           "class_count": jnp.asarray(counts, jnp.int32), "updates": jnp.asarray(updates, jnp.int32)}
  return {**variables, "u2s_stats": stats}


def _designed_stats(c):
  sp = np.zeros((M, c), np.float32)
  sp[0, 0], sp[1, :2] = 1.0, (1.0, 0.1)               # 0 ~ 1
  sp[2, 2], sp[3, 2:4] = 1.0, (1.0, 0.1)              # 2 ~ 3
  sp[4:, 4:] = np.eye(M - 4, c - 4)                   # the rest orthogonal
  counts = np.ones(M, np.int32)
  counts[9] = 0                                       # class 9 unseen
  expected = np.eye(M, dtype=np.float32)
  expected[0, 1] = expected[1, 0] = expected[2, 3] = expected[3, 2] = 1.0
  return sp, counts, expected


def test_model_selection_against_designed_csm(video):
  model = build_model(_cfg(csm_alpha=0.5, csm_warmup_steps=5), M)
  variables = _fast_init(model, video)
  c = variables["u2s_stats"]["class_sparsity"].shape[1]
  sp, counts, expected = _designed_stats(c)
  out = model.apply(_set_stats(variables, sp, counts, 5), video, train=False)
  np.testing.assert_array_equal(out["csm"], expected)
  w = csm_lib.selection_weights(jnp.asarray(expected), jnp.argmax(out["logits_un"], -1))
  np.testing.assert_allclose(out["mask_weights"], w)
  # warm-up not over: identity CSM, the predicted class alone
  out = model.apply(_set_stats(variables, sp, counts, 4), video, train=False)
  np.testing.assert_array_equal(out["csm"], np.eye(M))
  np.testing.assert_allclose(out["mask_weights"], jax.nn.one_hot(jnp.argmax(out["logits_un"], -1), M))


@pytest.mark.parametrize("variant", ["oracle", "simple", "soft_csm"])
def test_variant_selection(video, variant):
  model = build_model(_cfg(csm_alpha=0.5, variant=variant), M)
  variables = _fast_init(model, video)
  c = variables["u2s_stats"]["class_sparsity"].shape[1]
  sp, counts, expected = _designed_stats(c)
  lab = jnp.array([0, 5], jnp.int32)
  out = model.apply(_set_stats(variables, sp, counts, 1), video, train=False, labels=lab)
  pred = np.argmax(out["logits_un"], -1)
  if variant == "oracle":       # ground truth guides: class 0 -> {0, 1}; class 5 -> no confusing class
    ref = np.zeros((2, M))
    ref[0, :2] = 0.5
    ref[1, 5] = 1.0
  elif variant == "simple":
    ref = np.eye(M)[pred]
  else:
    col = np.asarray(out["similarity"])[:, pred].T
    ref = col / col.sum(-1, keepdims=True)
  np.testing.assert_allclose(out["mask_weights"], ref, rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------- w_regular (Eq. 4-6)

def test_w_regular_numpy():
  rng = np.random.default_rng(2)
  w = rng.normal(size=(16, 6)).astype(np.float32)
  c = np.eye(6, dtype=np.float32)
  for i, j in ((0, 1), (0, 4), (2, 3)):
    c[i, j] = c[j, i] = 1.0
  wn = w / np.linalg.norm(w, axis=0, keepdims=True)
  sw = np.maximum(wn.T @ wn, 0.0)
  mm = c - np.eye(6)
  ref = (mm * sw).sum() / mm.sum()
  np.testing.assert_allclose(csm_lib.w_regular(jnp.asarray(w), jnp.asarray(c)), ref, rtol=1e-5)
  ref_shift = (mm * 0.5 * (1 + wn.T @ wn)).sum() / mm.sum()
  np.testing.assert_allclose(csm_lib.w_regular(jnp.asarray(w), jnp.asarray(c), "shifted_cosine"),
                             ref_shift, rtol=1e-5)
  assert float(csm_lib.w_regular(jnp.asarray(w), jnp.eye(6))) == 0.0   # no pair -> 0


def test_loss_terms(u2s_model, video, labels):
  model, variables = u2s_model
  out, _ = model.apply(variables, video, train=True, labels=labels, mutable=MUTABLE)
  lcfg = ml_collections.ConfigDict(dict(name="u2s", w_regular_weight=0.5))
  terms = LOSSES.get("u2s")(out, labels, lcfg, variables["params"])
  assert set(terms) == {"un", "csn", "mn", "w_regular"}
  ce = lambda l: -np.mean(np.asarray(jax.nn.log_softmax(l))[np.arange(B), labels])  # noqa: E731
  for name, key in (("un", "logits_un"), ("csn", "logits_csn"), ("mn", "logits_mn")):
    np.testing.assert_allclose(terms[name], ce(out[key]), rtol=1e-5)
  kernel = variables["params"]["mask_net"]["mask_conv"]["kernel"]
  np.testing.assert_allclose(terms["w_regular"], 0.5 * csm_lib.w_regular(kernel, out["csm"]),
                             rtol=1e-6)
  # wrapped params tree works too
  assert set(LOSSES.get("u2s")(out, labels, lcfg, {"params": variables["params"]})) == set(terms)


# ---------------------------------------------------------------- shared Res2D and gradients

@pytest.mark.slow
def test_res2d_shared_once_and_gets_both_gradients(u2s_model, video, labels):
  model, variables = u2s_model
  params = variables["params"]
  assert set(params) == {"res2d", "un_top", "csn_top", "un_head", "csn_head", "mask_net"}
  paths = ["/".join(str(k.key) for k in p) for p, _ in jax.tree_util.tree_leaves_with_path(params)]
  assert sum(p.endswith("stem/conv/kernel") for p in paths) == 1
  assert all(not p.startswith("res2d") or "group2" not in p and "group3" not in p for p in paths)
  assert jax.tree_util.tree_structure(params["un_top"]) == jax.tree_util.tree_structure(
      params["csn_top"])
  lcfg = ml_collections.ConfigDict(dict(name="u2s"))

  def terms(p):  # [L_U, L_C]
    out, _ = model.apply({**variables, "params": p}, video, train=True, labels=labels, mutable=MUTABLE)
    t = LOSSES.get("u2s")(out, labels, lcfg, p)
    return jnp.stack([t["un"], t["csn"]])

  jac = jax.jit(jax.jacrev(terms))(params)
  grads = {n: jax.tree_util.tree_map(lambda g, i=i: g[i], jac) for i, n in enumerate(("un", "csn"))}
  norm = lambda tree: float(sum(jnp.abs(x).sum() for x in jax.tree_util.tree_leaves(tree)))  # noqa
  assert norm(grads["un"]["res2d"]) > 0 and norm(grads["csn"]["res2d"]) > 0
  assert norm(grads["csn"]["csn_top"]) > 0 and norm(grads["csn"]["mask_net"]) > 0
  assert norm(grads["un"]["csn_top"]) == 0 and norm(grads["un"]["mask_net"]) == 0


# ---------------------------------------------------------------- statistics

def test_update_class_stats_numpy():
  rng = np.random.default_rng(3)
  mean = rng.uniform(size=(4, 3)).astype(np.float32)
  count = np.array([0, 2, 5, 1], np.int32)
  xi = rng.uniform(size=(6, 3)).astype(np.float32)
  lab = np.array([0, 0, 1, 3, 3, 3])
  # cumulative mean
  new, cnt = csm_lib.update_class_stats(jnp.asarray(mean), jnp.asarray(count), jnp.asarray(xi),
                                        jnp.asarray(lab), None)
  ref, rc = mean.copy(), count.copy()
  for x, y in zip(xi, lab):
    ref[y] = (ref[y] * rc[y] + x) / (rc[y] + 1)
    rc[y] += 1
  np.testing.assert_allclose(new, ref, rtol=1e-5)
  np.testing.assert_array_equal(cnt, rc)
  # per-class EMA; a class seen for the first time takes the batch mean
  mu = 0.9
  new, cnt = csm_lib.update_class_stats(jnp.asarray(mean), jnp.asarray(count), jnp.asarray(xi),
                                        jnp.asarray(lab), mu)
  ref = mean.copy()
  for m in np.unique(lab):
    bm = xi[lab == m].mean(0)
    ref[m] = bm if count[m] == 0 else mu * mean[m] + (1 - mu) * bm
  np.testing.assert_allclose(new, ref, rtol=1e-5)
  np.testing.assert_array_equal(cnt, rc)


def test_csm_pass_average_over_all_samples_numpy():
  """The CSM pass (``procedures.u2s.csm_pass``) folds every video into fresh statistics at once: the exact
  per-class mean of Eq. 1 over all samples of the class (Sec. III-A)."""
  rng = np.random.default_rng(6)
  xi = rng.uniform(size=(40, 5)).astype(np.float32)
  lab = rng.integers(0, 6, size=40)
  lab[lab == 4] = 5                                    # class 4 has no sample
  mean, count = csm_lib.update_class_stats(jnp.zeros((6, 5)), jnp.zeros((6,), jnp.int32), jnp.asarray(xi),
                                           jnp.asarray(lab), None)
  for m in range(6):
    ref = xi[lab == m].mean(0) if (lab == m).any() else np.zeros(5)
    np.testing.assert_allclose(mean[m], ref, rtol=1e-5, atol=1e-7)
  np.testing.assert_array_equal(count, np.bincount(lab, minlength=6))


def test_model_stats_update_and_checkpoint_round_trip(u2s_model, video, labels, tmp_path):
  import orbax.checkpoint as ocp
  model, variables = u2s_model
  out, state = model.apply(variables, video, train=True, labels=labels, mutable=MUTABLE)
  stats = state["u2s_stats"]
  xi = np.asarray(out["sparsity"])
  ref = np.zeros_like(np.asarray(stats["class_sparsity"]))
  ref[np.asarray(labels)] = xi                        # first sighting of each class: its value
  np.testing.assert_allclose(stats["class_sparsity"], ref, rtol=1e-6)
  assert int(stats["updates"]) == 1 and int(stats["class_count"].sum()) == B
  # evaluation leaves the statistics alone
  _, frozen = model.apply({**variables, **state}, video, train=False, labels=labels, mutable=MUTABLE)
  chex.assert_trees_all_equal(frozen["u2s_stats"], stats)

  trained = {**variables, **state}
  ckptr = ocp.StandardCheckpointer()
  ckptr.save(tmp_path / "ckpt", trained)
  ckptr.wait_until_finished()
  restored = ckptr.restore(tmp_path / "ckpt", jax.tree_util.tree_map(np.zeros_like, trained))
  chex.assert_trees_all_equal(jax.tree_util.tree_map(np.asarray, restored["u2s_stats"]),
                              jax.tree_util.tree_map(np.asarray, stats))
  assert restored["u2s_stats"]["class_count"].dtype == np.int32


# ---------------------------------------------------------------- temporal shift

def test_temporal_shift_numpy():
  x = np.random.default_rng(4).normal(size=(2, 5, 3, 3, 16)).astype(np.float32)
  fold = 16 // 8
  ref = x.copy()
  for t in range(5):
    ref[:, t, ..., :fold] = x[:, t + 1, ..., :fold] if t + 1 < 5 else 0.0
    ref[:, t, ..., fold:2 * fold] = x[:, t - 1, ..., fold:2 * fold] if t > 0 else 0.0
  np.testing.assert_array_equal(u2s.temporal_shift(jnp.asarray(x), 8), ref)


# ---------------------------------------------------------------- shapes of every variant

def _check_outputs(out, variant, c):
  chex.assert_shape([out["logits"], out["logits_un"]], (B, M))
  chex.assert_shape(out["features_un"], (B, c))
  if variant == "one_pass":
    np.testing.assert_array_equal(out["logits"], out["logits_un"])
    assert "logits_csn" not in out
    return
  chex.assert_shape(out["logits_csn"], (B, M))
  chex.assert_shape(out["features_csn"], (B, c))
  if variant in u2s.MN_VARIANTS:
    chex.assert_shape([out["logits_mn"], out["mask_weights"]], (B, M))
    chex.assert_shape(out["sparsity"], (B, c))
    chex.assert_shape([out["csm"], out["similarity"]], (M, M))
    assert out["mask"].shape[:2] == (B, T) and out["mask"].shape[-1] == 1
  else:
    assert "mask" not in out and "csm" not in out
  # combined prediction (Table I's best row): log of the mean softmax of universal (+ bridge) + specific
  heads = ["logits_un", "logits_csn"] + (["logits_mn"] if variant in u2s.MN_VARIANTS else [])
  p = sum(jax.nn.softmax(out[h]) for h in heads) / len(heads)
  np.testing.assert_allclose(out["logits"], np.log(p), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("variant", u2s.VARIANTS)
def test_shapes_top_heavy(video, labels, variant):
  model = build_model(_cfg(variant=variant), M)
  variables = _fast_init(model, video)
  out, state = model.apply(variables, video, train=True, labels=labels, mutable=MUTABLE)
  _check_outputs(out, variant, 64)
  chex.assert_shape(out.get("mask", jnp.zeros((B, T, 1, 1, 1))), (B, T, 1, 1, 1))
  assert ("u2s_stats" in state) == (variant in u2s.MN_VARIANTS)
  lcfg = ml_collections.ConfigDict(dict(name="u2s"))
  terms = LOSSES.get("u2s")(out, labels, lcfg, variables["params"])
  expected = {"one_pass": {"un"}, "no_mn": {"un", "csn"}, "non_local": {"un", "csn"}}
  assert set(terms) == expected.get(variant, {"un", "csn", "mn", "w_regular"})


@pytest.mark.parametrize("variant,depth", [("u2s", 18), ("one_pass", 50)])
def test_shapes_tsm(video, labels, variant, depth):
  model = build_model(_cfg(base="tsm", depth=depth, variant=variant), M)
  variables = _fast_init(model, video)
  out, _ = model.apply(variables, video, train=True, labels=labels, mutable=MUTABLE)
  _check_outputs(out, variant, 8 * 8 * (4 if depth == 50 else 1))
  if variant == "u2s":
    chex.assert_shape(out["mask"], (B, T, 1, 1, 1))
    assert "bn_in" not in variables["params"]["res2d"]["group0_block1"]   # post-activation blocks


def test_sum_logits_combine_mn_softmax_mask(video, labels):
  model = build_model(_cfg(combine="sum_logits", combine_mn=True, mask_norm="softmax"), M)
  variables = _fast_init(model, video)
  out = model.apply(variables, video, train=False, labels=labels)
  np.testing.assert_allclose(out["logits"], out["logits_un"] + out["logits_mn"] + out["logits_csn"],
                             rtol=1e-5)
  chex.assert_shape(out["mask"], (B, T, 1, 1, 1))
  np.testing.assert_allclose(np.asarray(out["mask"]).sum((1, 2, 3, 4)), 1.0, rtol=1e-5)


def test_default_mask_is_context_gating(video, labels):
  """The default mask can suppress CSN's features (sigma(m) * F); the residual option cannot."""
  for norm, suppressed in ((None, True), ("sigmoid_residual", False)):
    model = build_model(_cfg(**({} if norm is None else {"mask_norm": norm})), M)
    variables = _fast_init(model, video)
    params = jax.tree.map(lambda x: x, variables["params"])
    params["mask_net"]["mask_conv"]["bias"] = jnp.full((M,), -50.0)   # every mask ~ -50
    params["mask_net"]["mask_conv"]["kernel"] = jnp.zeros_like(params["mask_net"]["mask_conv"]["kernel"])
    out = model.apply({**variables, "params": params}, video, train=False, labels=labels)
    bias = np.broadcast_to(np.asarray(params["csn_head"]["bias"]), (B, M))
    np.testing.assert_allclose(out["mask"], 1 / (1 + np.exp(50.0)), rtol=1e-4)
    if suppressed:
      np.testing.assert_allclose(out["logits_csn"], bias, atol=1e-5)
    else:
      assert not np.allclose(out["logits_csn"], bias, atol=1e-3)


def test_frozen_statistics_are_used_and_never_updated(video, labels):
  model = build_model(_cfg(csm_alpha=0.5, csm_warmup_steps=10 ** 6, csm_frozen=True), M)
  variables = _fast_init(model, video)
  c = variables["u2s_stats"]["class_sparsity"].shape[1]
  sp, counts, expected = _designed_stats(c)
  variables = _set_stats(variables, sp, counts, 0)
  out, state = model.apply(variables, video, train=True, labels=labels, mutable=MUTABLE)
  np.testing.assert_array_equal(out["csm"], expected)          # used although updates < warm-up
  chex.assert_trees_all_equal(state["u2s_stats"], variables["u2s_stats"])


def test_unknown_variant_raises(video):
  with pytest.raises(ValueError, match="variant"):
    build_model(_cfg(variant="nope"), M).init(jax.random.PRNGKey(0), video)
