"""conv_onednn equals lax.conv_general_dilated inside jit: forward, input gradient and kernel gradient for
strides, paddings, factorised, stem-like, 2D and 1D kernels, odd sizes, and bfloat16; the conv_nd
switch; the error when oneDNN is missing. Skipped where oneDNN is not installed."""
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from vidrec.models import conv_onednn, layers

sys.path.insert(0, str(Path(__file__).parent))
import conv_cases  # noqa: E402  pylint: disable=g-import-not-at-top

if not conv_onednn.available():
  pytest.skip(f"oneDNN not installed ({conv_onednn.INSTALL_HINT})", allow_module_level=True)

_SPATIAL = {1: "W", 2: "HW", 3: "DHW"}


def _normal(seed, shape, scale=1.0):
  """Random data from numpy (jax.random would compile a program per shape)."""
  return jnp.asarray(np.random.default_rng(seed).standard_normal(shape, np.float32) * scale)


def _native(x, k, strides, padding):
  s = _SPATIAL[k.ndim - 2]
  return lax.conv_general_dilated(x, k, tuple(strides), tuple(padding),
                                  dimension_numbers=(f"N{s}C", f"{s}IO", f"N{s}C"),
                                  precision=lax.Precision.HIGHEST)


def _value_and_grads(conv, x, k, strides, padding, proj):
  """y and the gradients of <y, proj> w.r.t. x and k."""
  y = conv(x, k, strides, padding)
  dx, dk = jax.grad(lambda a, b: jnp.sum(conv(a, b, strides, padding).astype(jnp.float32) * proj),
                    argnums=(0, 1))(x, k)
  return y, dx, dk


CASES = conv_cases.CASES + [  # and: a plain 1x1x1, the r3d stem, a 7x7x7 stem
    ((2, 4, 6, 6, 4), (1, 1, 1, 4, 6), (1, 1, 1), ((0, 0),) * 3),
    ((1, 4, 13, 12, 3), (3, 7, 7, 3, 4), (1, 2, 2), ((1, 1), (3, 3), (3, 3))),
    ((1, 7, 9, 8, 3), (7, 7, 7, 3, 4), (1, 2, 2), ((3, 3),) * 3),
]


@pytest.mark.parametrize("xs,ks,strides,padding", CASES)
def test_matches_native_conv_and_gradients_inside_jit(xs, ks, strides, padding):
  x, k = _normal(0, xs), _normal(1, ks)
  proj = _normal(2, jax.eval_shape(lambda a, b: _native(a, b, strides, padding), x, k).shape)
  got, ref = jax.jit(lambda a, b, p: [_value_and_grads(conv, a, b, strides, padding, p)
                                      for conv in (conv_onednn.conv_onednn, _native)])(x, k, proj)
  for name, g, r in zip(("y", "dx", "dk"), got, ref):
    assert g.shape == r.shape and g.dtype == r.dtype, name
    np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-4, err_msg=name)


def test_bfloat16_inputs_give_bfloat16_outputs_close_to_float32():
  x, k, proj = _normal(0, (2, 4, 6, 6, 8)), _normal(1, (3, 3, 3, 8, 8), 0.1), _normal(2, (2, 4, 3, 3, 8))
  strides, pad = (1, 2, 2), ((1, 1),) * 3
  got, ref = jax.jit(lambda a, b, p: (
      _value_and_grads(conv_onednn.conv_onednn, a.astype(jnp.bfloat16), b.astype(jnp.bfloat16), strides, pad, p),
      _value_and_grads(_native, a, b, strides, pad, p)))(x, k, proj)
  for name, g, r in zip(("y", "dx", "dk"), got, ref):
    assert g.dtype == jnp.bfloat16, name
    scale = float(jnp.abs(r).max())
    np.testing.assert_allclose(np.asarray(g, np.float32), r, rtol=0.03, atol=0.02 * scale, err_msg=name)


def test_conv_nd_switch(monkeypatch):
  x, k = _normal(0, (2, 4, 6, 5, 3)), _normal(1, (3, 3, 3, 3, 4))
  pad = layers.same_padding(k.shape[:3])
  ref = _native(x, k, (1, 2, 2), pad)
  np.testing.assert_allclose(layers.conv_nd(x, k, (1, 2, 2), pad, impl="onednn"), ref, rtol=1e-4, atol=1e-4)
  monkeypatch.setenv("VIDREC_CONV3D", "onednn")
  np.testing.assert_allclose(jax.jit(lambda a, b: layers.conv_nd(a, b, (1, 2, 2), pad))(x, k), ref,
                             rtol=1e-4, atol=1e-4)


def test_bad_arguments_are_a_clear_error():
  with pytest.raises(ValueError, match="disagree"):
    conv_onednn.conv_onednn(jnp.zeros((1, 4, 4, 4, 3)), jnp.zeros((3, 3, 3, 2, 4)), (1, 1, 1), ((1, 1),) * 3)
  with pytest.raises(TypeError, match="float32 or bfloat16"):
    conv_onednn.conv_onednn(jnp.zeros((1, 4, 3), jnp.float16), jnp.zeros((3, 3, 4), jnp.float16), (1,),
                            ((1, 1),))


def test_missing_onednn_names_the_fix(monkeypatch):
  monkeypatch.setattr(conv_onednn, "available", lambda: False)
  with pytest.raises(RuntimeError, match=r'pip install -e "\.\[onednn\]"'):
    conv_onednn._build()
