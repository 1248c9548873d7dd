"""optimizer.frozen: frozen subtrees get no step, no weight decay and no optimizer state."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from vidrec import config as config_lib
from vidrec import optim
from vidrec.errors import UserError


def _cfg(**kw) -> ml_collections.ConfigDict:
  cfg = config_lib.base_config().optimizer
  cfg.update({"lr": 0.1, "weight_decay": 0.5, **kw})
  return cfg


def _params():
  return {"vgg": {"conv1_1": {"kernel": jnp.ones((3, 3, 3, 4)), "bias": jnp.ones((4,))}},
          "fc": {"kernel": jnp.ones((4, 2)), "bias": jnp.ones((2,))}}


def _run(tx, params, steps=3):
  state = tx.init(params)
  grads = jax.tree.map(jnp.ones_like, params)
  for _ in range(steps):
    updates, state = tx.update(grads, state, params)
    params = optax.apply_updates(params, updates)
  return params


def test_frozen_subtree_is_untouched_and_the_rest_matches_the_plain_optimizer():
  params = _params()
  frozen, _ = optim.make_optimizer(_cfg(frozen="vgg/*"), 100)
  plain, _ = optim.make_optimizer(_cfg(), 100)
  got, ref = _run(frozen, params), _run(plain, params)
  for leaf in jax.tree.leaves(got["vgg"]):
    np.testing.assert_array_equal(leaf, 1.0)          # gradient and weight decay both ignored
  # SGD momentum 0.9, lr 0.1, decay 0.5 on the kernel: by hand, g = 1 + 0.5 w each step.
  w, m = 1.0, 0.0
  for _ in range(3):
    m = 0.9 * m + (1 + 0.5 * w)
    w -= 0.1 * m
  np.testing.assert_allclose(got["fc"]["kernel"], w, rtol=1e-6)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), got["fc"], ref["fc"])


def test_clipping_counts_only_trainable_gradients():
  params = {"vgg": {"kernel": jnp.zeros((2, 2))}, "fc": {"kernel": jnp.zeros((2, 2))}}
  tx, _ = optim.make_optimizer(_cfg(weight_decay=0.0, momentum=0.0, grad_clip_norm=1.0, frozen="vgg/*"), 10)
  grads = {"vgg": {"kernel": jnp.full((2, 2), 100.0)}, "fc": {"kernel": jnp.full((2, 2), 0.25)}}
  updates, _ = tx.update(grads, tx.init(params), params)
  # ||fc grad|| = 0.5 < 1: unclipped; were the frozen grads counted it would be scaled by ~1/200.
  np.testing.assert_allclose(updates["fc"]["kernel"], -0.1 * 0.25, rtol=1e-6)
  np.testing.assert_array_equal(updates["vgg"]["kernel"], 0.0)


@pytest.mark.parametrize("frozen", ["", "vgg/*"])
def test_module_scope_clips_each_top_level_module_by_its_own_norm(frozen):
  params = {"vgg": {"k": jnp.zeros((2, 2))}, "conv3d": {"k": jnp.zeros((2, 2)), "b": jnp.zeros(2)},
            "lstm": {"k": jnp.zeros((3,))}}
  grads = {"vgg": {"k": jnp.full((2, 2), 0.1)}, "conv3d": {"k": jnp.full((2, 2), 12.0), "b": jnp.full(2, 9.0)},
           "lstm": {"k": jnp.full((3,), 0.5)}}
  cfg = _cfg(weight_decay=0.0, momentum=0.0, lr=1.0, grad_clip_norm=10.0, frozen=frozen)
  module, _ = optim.make_optimizer(ml_collections.ConfigDict({**cfg.to_dict(), "grad_clip_scope": "module"}), 10)
  updates, _ = module.update(grads, module.init(params), params)
  # ||conv3d|| = sqrt(4 * 144 + 2 * 81) = sqrt(738) > 10: scaled to norm 10; lstm (0.87) and vgg (0.2) as they are.
  np.testing.assert_allclose(updates["conv3d"]["k"], -12.0 * 10 / np.sqrt(738), rtol=1e-6)
  np.testing.assert_allclose(updates["conv3d"]["b"], -9.0 * 10 / np.sqrt(738), rtol=1e-6)
  np.testing.assert_allclose(updates["lstm"]["k"], -0.5, rtol=1e-6)
  np.testing.assert_allclose(updates["vgg"]["k"], 0.0 if frozen else -0.1, rtol=1e-6)
  glob, _ = optim.make_optimizer(cfg, 10)                         # one norm over everything shrinks the LSTM too
  updates, _ = glob.update(grads, glob.init(params), params)
  total = np.sqrt(738 + 0.75 + (0.0 if frozen else 0.04))
  np.testing.assert_allclose(updates["lstm"]["k"], -0.5 * 10 / total, rtol=1e-6)


def test_a_pattern_matching_nothing_is_a_user_error():
  tx, _ = optim.make_optimizer(_cfg(frozen="vgg/*,backbone/*"), 10)
  with pytest.raises(UserError, match="backbone"):
    tx.init(_params())


def test_zero_frozen_zeroes_frozen_gradients_and_xla_drops_their_backward_pass():
  rng = np.random.default_rng(0)
  params = {"vgg": {"kernel": jnp.asarray(rng.standard_normal((64, 64)), jnp.float32)},
            "fc": {"kernel": jnp.asarray(rng.standard_normal((64, 10)), jnp.float32)}}
  x = jnp.asarray(rng.standard_normal((256, 64)), jnp.float32)

  def loss(p):
    return jnp.sum(jnp.tanh(x @ p["vgg"]["kernel"]) @ p["fc"]["kernel"])

  def flops(patterns):
    fn = jax.jit(lambda p: optax.global_norm(optim.zero_frozen(jax.grad(loss)(p), patterns)))
    cost = fn.lower(params).compile().cost_analysis()
    return float((cost[0] if isinstance(cost, (list, tuple)) else cost)["flops"])

  grads = optim.zero_frozen(jax.grad(loss)(params), ("vgg/*",))
  np.testing.assert_array_equal(grads["vgg"]["kernel"], 0.0)
  np.testing.assert_allclose(grads["fc"]["kernel"], jax.grad(loss)(params)["fc"]["kernel"])
  # The frozen kernel's gradient x^T @ dh (2 * 256 * 64 * 64 FLOPs) is no longer computed.
  assert flops(()) - flops(("vgg/*",)) >= 2 * 256 * 64 * 64
