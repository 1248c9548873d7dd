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
