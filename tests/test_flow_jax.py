"""TV-L1 in JAX (vidrec.data.flow_jax): its building blocks against numpy / OpenCV, whole flows against
OpenCV's DualTVL1OpticalFlow with the same parameters, bad input, and the batched backend's padding."""
from __future__ import annotations

import chex
import jax.numpy as jnp
import numpy as np
import pytest

from vidrec.data import flow, flow_jax as fj

cv2 = pytest.importorskip("cv2", reason="the flow extra is not installed")

# Few scales and iterations keep each compile to a few seconds; OpenCV gets the same parameters.
SMALL = fj.Params(nscales=2, warps=2, outer_iterations=2, inner_iterations=10)


def _opencv(params: fj.Params):
  return cv2.optflow.DualTVL1OpticalFlow_create(
      tau=params.tau, lambda_=params.lambda_, theta=params.theta, nscales=params.nscales,
      warps=params.warps, epsilon=params.epsilon, innnerIterations=params.inner_iterations,
      outerIterations=params.outer_iterations, scaleStep=params.scale_step, gamma=0.0,
      medianFiltering=params.median, useInitialFlow=False)


def _texture(size: int = 64, seed: int = 0) -> np.ndarray:
  rng = np.random.default_rng(seed)
  tex = cv2.GaussianBlur(rng.uniform(0, 255, (size, size)).astype(np.float32), (0, 0), 1.5)
  return (255 * (tex - tex.min()) / (tex.max() - tex.min())).astype(np.uint8)


def test_params_are_opencvs_defaults():
  p = fj.Params()
  assert (p.tau, p.lambda_, p.theta, p.nscales, p.warps, p.epsilon, p.inner_iterations,
          p.outer_iterations, p.scale_step, p.median) == (0.25, 0.15, 0.3, 5, 5, 0.01, 30, 10, 0.8, 5)
  with pytest.raises(ValueError, match="median"):
    fj.Params(median=3)


def test_pyramid_shapes_follow_opencv():
  # round(0.8 x) per level, stopping before a side under 16 px.
  assert fj.pyramid_shapes(256, 340) == [(256, 340), (205, 272), (164, 218), (131, 174), (105, 139)]
  assert fj.pyramid_shapes(32, 32) == [(32, 32), (26, 26), (21, 21), (17, 17)]
  assert fj.pyramid_shapes(19, 64) == [(19, 64)]
  assert len(fj.pyramid_shapes(64, 64, SMALL)) == 2


def test_resize_matches_opencv_bilinear():
  img = np.random.default_rng(0).uniform(0, 255, (21, 26)).astype(np.float32)
  down = cv2.resize(img, None, fx=0.8, fy=0.8, interpolation=cv2.INTER_LINEAR)
  assert down.shape == (17, 21)
  np.testing.assert_allclose(fj._resize(jnp.asarray(img), down.shape, (1.25, 1.25)), down, atol=1e-3)
  up = cv2.resize(img, (33, 26), interpolation=cv2.INTER_LINEAR)
  np.testing.assert_allclose(fj._resize(jnp.asarray(img), (26, 33), (21 / 26, 26 / 33)), up, atol=1e-3)
  np.testing.assert_allclose(fj.resize_matrix(5, 4, 1.25).sum(1), 1.0, atol=1e-6)   # rows average


def test_centered_gradient_by_hand():
  img = np.float32([[0, 1, 4], [9, 16, 25], [36, 49, 64]])
  dx, dy = fj.centered_gradient(jnp.asarray(img))
  # Inside (I[x+1] - I[x-1]) / 2; on the border half the one-sided difference, as OpenCV does.
  np.testing.assert_allclose(dx, [[0.5, 2, 1.5], [3.5, 8, 4.5], [6.5, 14, 7.5]])
  np.testing.assert_allclose(dy, [[4.5, 7.5, 10.5], [18, 24, 30], [13.5, 16.5, 19.5]])


def test_forward_gradient_and_divergence_are_adjoint():
  rng = np.random.default_rng(0)
  u, p1, p2 = (jnp.asarray(rng.normal(size=(6, 7)).astype(np.float32)) for _ in range(3))
  ux, uy = fj.forward_gradient(u)
  np.testing.assert_allclose(ux, np.pad(np.diff(u, axis=1), ((0, 0), (0, 1))))
  np.testing.assert_allclose(uy[-1], 0.0)
  # <grad u, p> = -<u, div p> for p as the dual step leaves it: zero where the
  # forward gradient is (last column of p1, last row of p2).
  p1, p2 = p1.at[:, -1].set(0.0), p2.at[-1].set(0.0)
  np.testing.assert_allclose(jnp.sum(ux * p1 + uy * p2), -jnp.sum(u * fj.divergence(p1, p2)), rtol=1e-4)


def test_threshold_step_by_hand():
  # grad = |I1w'|^2 = 1 with I1wx = 1, I1wy = 0; l_t = 0.1: rho < -0.1 -> +0.1, > 0.1 -> -0.1,
  # else -rho / grad; zero gradient -> no step.
  u = jnp.zeros(5)
  ix = jnp.float32([1, 1, 1, 0, 1])
  grad = ix ** 2
  rho_c = jnp.float32([-1.0, 1.0, 0.05, 3.0, -0.02])
  v1, v2 = fj.threshold(u, u, ix, jnp.zeros(5), grad, rho_c, 0.1)
  np.testing.assert_allclose(v1, [0.1, -0.1, -0.05, 0.0, 0.02], atol=1e-7)
  np.testing.assert_allclose(v2, 0.0)


def test_remap_and_median_match_opencv():
  rng = np.random.default_rng(1)
  img = rng.uniform(0, 255, (20, 23)).astype(np.float32)
  mx = (np.arange(23)[None] + rng.uniform(-3, 3, (20, 23))).astype(np.float32)
  my = (np.arange(20)[:, None] + rng.uniform(-3, 3, (20, 23))).astype(np.float32)
  want = cv2.remap(img, mx, my, cv2.INTER_CUBIC)     # zero outside, as in TV-L1
  got = fj.remap_cubic(jnp.asarray(img)[None], jnp.asarray(mx), jnp.asarray(my))[0]
  np.testing.assert_allclose(got, want, atol=2e-3)
  np.testing.assert_array_equal(fj.median5(jnp.asarray(img)), cv2.medianBlur(img, 5))
  for n in (5, 25):   # the sorting network sorts
    keys = list(rng.permutation(n))
    for a, b in fj._batcher_pairs(n):
      keys[a], keys[b] = min(keys[a], keys[b]), max(keys[a], keys[b])
    assert keys == list(range(n))


@pytest.mark.slow   # two compiles (uint8 and float input): 17 s wall at a load average of 20
def test_flow_matches_opencv_on_a_batch():
  tex = _texture(64)
  prev = np.stack([tex[10:34, 10:38], tex[20:44, 20:48]])                 # [2, 24, 28]
  nxt = np.stack([tex[11:35, 8:36], tex[19:43, 21:49]])                   # (+2, -1) and (-1, +1) px
  got = np.asarray(fj.tvl1(prev, nxt, params=SMALL))
  chex.assert_shape(got, (2, 24, 28, 2))
  assert got.dtype == np.float32
  solver = _opencv(SMALL)
  for i, (dx, dy) in enumerate([(2, -1), (-1, 1)]):
    want = solver.calc(prev[i], nxt[i], None)
    assert np.linalg.norm(got[i] - want, axis=-1).mean() < 0.01
    np.testing.assert_allclose(np.median(got[i, 6:-6, 6:-6], axis=(0, 1)), [dx, dy], atol=0.3)
  # Float frames are taken in 0..1, as OpenCV does.
  as_float = np.asarray(fj.tvl1(prev / np.float32(255), nxt / np.float32(255), params=SMALL))
  np.testing.assert_allclose(as_float, got, atol=1e-3)


def test_blank_frames_give_zero_flow_and_batches_are_padded():
  tex = _texture(32)[:16, :16]
  black, white = np.zeros((16, 16), np.uint8), np.full((16, 16), 255, np.uint8)
  prev = np.stack([black, white, np.full((16, 16), 77, np.uint8), tex, black])
  nxt = np.stack([black, white, np.full((16, 16), 77, np.uint8), np.roll(tex, 1, 1), white])
  out = flow.tvl1_pairs(prev, nxt, "jax")                 # 5 pairs, padded to flow.jax_batch (64)
  assert flow.jax_batch(16, 16) == 64 and flow.jax_batch(128, 128) == 1
  chex.assert_shape(out, (5, 16, 16, 2))
  assert np.all(np.isfinite(out))
  np.testing.assert_array_equal(out[:3], 0.0)
  assert np.abs(out[4]).max() < 1.0                        # a flash is not motion
  single = flow.BACKENDS["jax"](prev[3:4], nxt[3:4], batch=2)
  np.testing.assert_allclose(out[3], single[0], atol=1e-5)  # the padding does not leak into a pair
  np.testing.assert_allclose(out[3], flow.tvl1(prev[3], nxt[3]), atol=0.05)


def test_bad_input_names_the_video():
  frames = np.zeros((1, 16, 16, 3), np.uint8)
  with pytest.raises(ValueError, match="v_single.*at least 2 frames"):
    flow.extract(frames, backend="jax", name="v_single")
  with pytest.raises(ValueError, match="v_tiny.*too small"):
    flow.extract(np.zeros((3, 2, 16, 3), np.uint8), name="v_tiny")
  with pytest.raises(ValueError, match="backend"):
    flow.extract(np.zeros((3, 16, 16, 3), np.uint8), backend="cuda")
  with pytest.raises(ValueError, match="same shape"):
    flow.tvl1_pairs(np.zeros((2, 16, 16), np.uint8), np.zeros((2, 16, 17), np.uint8), "jax")
  with pytest.raises(ValueError, match="one shape"):
    fj.tvl1(np.zeros((2, 16, 16), np.uint8), np.zeros((2, 16, 17), np.uint8))


def test_synthetic_flow_jax_config_matches_opencvs():
  from vidrec.data import synthetic  # pylint: disable=g-import-not-at-top
  cfgs = {b: synthetic.SyntheticActionsConfig(name=b, resolution=16, min_frames=3, max_frames=3, flow="tvl1",
                                               warped_flow=True, flow_backend=b) for b in ("opencv", "jax")}
  # The jax config's workers leave the flow to the parent (JAX stays out of forked processes).
  worker = synthetic.generate_example(cfgs["jax"], "train", 1)
  assert "flow_x" not in worker
  examples = {b: synthetic._parent_flow(c, synthetic.generate_example(c, "train", 1)) for b, c in cfgs.items()}
  for key in ("flow_x", "flow_y", "warped_flow_x", "warped_flow_y"):
    a, b = (examples[k][key].astype(np.float32) for k in ("jax", "opencv"))
    chex.assert_shape(a, (2, 16, 16, 1))
    assert np.abs(a - b).mean() < 0.5      # quantised: 0.16 px per level
