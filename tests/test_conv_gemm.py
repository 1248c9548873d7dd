"""conv_gemm equals lax.conv_general_dilated: forward, input gradient and kernel gradient, for every
formulation (split, chunks), strides, paddings, factorised and 2D/1D kernels, odd sizes; the plan rule;
the layers.conv_nd switch."""
import sys
from pathlib import Path

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from vidrec.models import conv_gemm, layers

sys.path.insert(0, str(Path(__file__).parent))
import conv_cases  # noqa: E402  pylint: disable=g-import-not-at-top

_SPATIAL = {1: "W", 2: "HW", 3: "DHW"}


def _native(x, k, strides, padding):
  s = _SPATIAL[k.ndim - 2]
  return lax.conv_general_dilated(x, k, tuple(strides), tuple(padding),
                                  dimension_numbers=(f"N{s}C", f"{s}IO", f"N{s}C"),
                                  precision=lax.Precision.HIGHEST)


def _value_and_grads(conv, x, k, cot):
  y, vjp = jax.vjp(conv, x, k)
  return (y,) + vjp(cot)


CASES = conv_cases.CASES


@pytest.mark.parametrize("xs,ks,strides,padding", CASES)
def test_every_formulation_matches_native_conv_and_gradients(xs, ks, strides, padding):
  kx, kk, kc = jax.random.split(jax.random.key(0), 3)
  x, k = jax.random.normal(kx, xs), jax.random.normal(kk, ks)
  y_ref = _native(x, k, strides, padding)
  cot = jax.random.normal(kc, y_ref.shape)
  ref = _value_and_grads(lambda a, b: _native(a, b, strides, padding), x, k, cot)
  nd = len(ks) - 2
  plans = [conv_gemm.Plan(split, 1) for split in range(nd + 1)] + [conv_gemm.Plan(min(nd, 1), xs[0])]
  got = jax.jit(lambda a, b, c: [_value_and_grads(
      lambda a, b, f=f: conv_gemm.conv_gemm(a, b, strides, padding, f), a, b, c) for f in plans])(x, k, cot)
  for f, g_f in zip(plans, got):
    for name, g, r in zip(("y", "dx", "dk"), g_f, ref):
      chex.assert_shape(g, r.shape)
      np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-4, err_msg=f"{name} {f}")


def test_bfloat16_inputs_give_bfloat16_outputs_close_to_float32():
  x = jax.random.normal(jax.random.key(0), (2, 4, 6, 6, 8))
  k = jax.random.normal(jax.random.key(1), (3, 3, 3, 8, 8)) * 0.1
  pad = ((1, 1),) * 3
  y32 = _native(x, k, (1, 1, 1), pad)
  y, (dx, dk) = jax.value_and_grad(lambda a, b: conv_gemm.conv_gemm(a, b, (1, 1, 1), pad).astype(
      jnp.float32).sum(), argnums=(0, 1))(x.astype(jnp.bfloat16), k.astype(jnp.bfloat16))
  y16 = conv_gemm.conv_gemm(x.astype(jnp.bfloat16), k.astype(jnp.bfloat16), (1, 1, 1), pad)
  assert y16.dtype == dx.dtype == dk.dtype == jnp.bfloat16
  np.testing.assert_allclose(np.asarray(y16, np.float32), y32, rtol=0.05, atol=0.05)
  dk_ref = jax.grad(lambda b: _native(x, b, (1, 1, 1), pad).sum())(k)
  np.testing.assert_allclose(np.asarray(dk, np.float32), dk_ref, rtol=0.02, atol=0.5)


def test_plan_chunks_divide_the_batch_and_bound_the_patch_buffer():
  # 8 x 16 x 56 x 56 x 64 -> 3x3x3: whole-kernel patches are 8 * 50176 * 1728 * 4 B = 2.8 GB.
  for itemsize in (4, 2):
    p = conv_gemm.plan((8, 16, 56, 56, 64), (3, 3, 3, 64, 64), (1, 1, 1), itemsize)
    cols = {0: 27 * 64, 1: 9 * 64, 2: 3 * 64, 3: 64}[p.split]
    assert 8 % p.chunks == 0 and p.chunks > 1
    assert 8 // p.chunks * 16 * 56 * 56 * cols * itemsize <= conv_gemm.PATCH_BUDGET_BYTES
  assert conv_gemm.plan((2, 4, 8, 8, 3), (3, 3, 3, 3, 8), (1, 1, 1), 4) == conv_gemm.Plan(0, 1)


def test_bad_shapes_are_a_clear_error():
  with pytest.raises(ValueError, match="disagree"):
    conv_gemm.conv_gemm(jnp.zeros((1, 4, 4, 4, 3)), jnp.zeros((3, 3, 3, 2, 4)), (1, 1, 1), ((1, 1),) * 3)
  with pytest.raises(ValueError, match="must divide"):
    conv_gemm.conv_gemm(jnp.zeros((3, 4, 4, 4, 3)), jnp.zeros((3, 3, 3, 3, 4)), (1, 1, 1), ((1, 1),) * 3,
                        conv_gemm.Plan(1, 2))


def test_conv_nd_switch(monkeypatch):
  x = jax.random.normal(jax.random.key(0), (2, 4, 6, 5, 3))
  k = jax.random.normal(jax.random.key(1), (3, 3, 3, 3, 4))
  pad = layers.same_padding(k.shape[:3])
  monkeypatch.setenv("VIDREC_CONV3D", "gemm")
  np.testing.assert_allclose(layers.conv_nd(x, k, (1, 2, 2), pad), _native(x, k, (1, 2, 2), pad),
                             rtol=1e-4, atol=1e-4)
  monkeypatch.setenv("VIDREC_CONV3D", "im2col")
  with pytest.raises(ValueError, match="VIDREC_CONV3D must be one of"):
    layers.conv_nd(x, k, (1, 1, 1), pad)
