"""VIDREC_CONV3D=auto (vidrec.models.conv_autotune): per-shape choice by measurement, cached on disk."""
import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from vidrec.models import conv_autotune, conv_onednn, layers

PAD = ((1, 1), (1, 1), (1, 1))


@pytest.fixture
def cache(tmp_path, monkeypatch):
  path = tmp_path / "conv_autotune.json"
  monkeypatch.setenv("VIDREC_CONV_CACHE", str(path))
  monkeypatch.setattr(conv_autotune, "_CHOICES", {})
  monkeypatch.setattr(conv_autotune, "REPEATS", 1)
  monkeypatch.setattr(conv_autotune, "MIN_MEASURED_GFLOPS", 0.0)   # the tiny shapes here are measured
  return path


@pytest.fixture
def fresh_onednn_check():
  conv_onednn.usable.cache_clear()
  yield
  conv_onednn.usable.cache_clear()


def _inputs(dtype=jnp.float32):
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal((2, 4, 6, 6, 3)), dtype)
  k = jnp.asarray(rng.standard_normal((3, 3, 3, 3, 5)), dtype)
  return x, k


def test_auto_inside_jit_equals_native_and_records_its_choice(cache, monkeypatch):
  monkeypatch.setenv("VIDREC_CONV3D", "auto")
  x, k = _inputs()
  fwd = lambda x, k: layers.conv_nd(x, k, (1, 1, 1), PAD)
  y, grads = jax.jit(lambda x, k: (fwd(x, k), jax.grad(lambda a, b: jnp.sum(fwd(a, b) ** 2), (0, 1))(x, k)))(x, k)
  ref = lambda x, k: lax.conv_general_dilated(x, k, (1, 1, 1), PAD, dimension_numbers=("NDHWC", "DHWIO", "NDHWC"))
  ref_grads = jax.grad(lambda a, b: jnp.sum(ref(a, b) ** 2), (0, 1))(x, k)
  np.testing.assert_allclose(y, ref(x, k), rtol=1e-4, atol=1e-4)
  for g, r in zip(grads, ref_grads):
    np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-3)
  table = json.loads(cache.read_text())
  key = conv_autotune.shape_key(x.shape, k.shape, (1, 1, 1), PAD, jnp.float32)
  assert "x(2, 4, 6, 6, 3)" in key and "float32" in key
  assert table == {key: table[key]} and table[key] in conv_autotune.candidates(3)


def test_choice_is_read_back_from_the_cache_without_measuring(cache, monkeypatch):
  x, k = _inputs(jnp.bfloat16)
  key = conv_autotune.shape_key(x.shape, k.shape, (1, 1, 1), PAD, jnp.bfloat16)
  cache.write_text(json.dumps({key: "gemm"}))

  def fail(*args, **kwargs):
    raise AssertionError("measured although the cache holds the shape")

  monkeypatch.setattr(conv_autotune, "measure", fail)
  assert conv_autotune.choose(layers.conv_nd, x.shape, k.shape, (1, 1, 1), PAD, x.dtype) == "gemm"
  # another dtype is another shape: measured (here: fails)
  with pytest.raises(AssertionError, match="measured"):
    conv_autotune.choose(layers.conv_nd, x.shape, k.shape, (1, 1, 1), PAD, jnp.float32)


def test_fastest_candidate_wins_and_a_corrupt_cache_counts_as_empty(cache, monkeypatch):
  cache.write_text("{not json")
  seconds = {"native": 3.0, "temporal_sum": 1.0, "gemm": 2.0, "onednn": 1.5}
  monkeypatch.setattr(conv_autotune, "measure", lambda conv, impl, *a, **kw: seconds[impl])
  assert conv_autotune.choose(layers.conv_nd, (1, 4, 6, 6, 3), (3, 3, 3, 3, 5), (1, 1, 1), PAD,
                              jnp.float32) == "temporal_sum"
  onednn = ("onednn",) if conv_onednn.available() else ()   # installed: a candidate on CPU
  assert conv_autotune.candidates(2) == onednn + ("native", "gemm")
  assert conv_autotune.candidates(3) == onednn + ("native", "temporal_sum", "gemm")
  assert list(json.loads(cache.read_text()).values()) == ["temporal_sum"]


def test_auto_is_the_cpu_default_and_tiny_shapes_are_not_measured(monkeypatch, tmp_path):
  monkeypatch.delenv("VIDREC_CONV3D", raising=False)
  monkeypatch.setenv("VIDREC_CONV_CACHE", str(tmp_path / "c.json"))
  monkeypatch.setattr(conv_autotune, "_CHOICES", {})
  assert layers.conv3d_impl() == "auto"

  def fail(*args, **kwargs):
    raise AssertionError("measured a shape under MIN_MEASURED_GFLOPS")

  monkeypatch.setattr(conv_autotune, "measure", fail)
  x, k = _inputs()
  # 2 * 2*4*6*6 outputs * 3*3*3*3*5 taps = 0.00023 GFLOPs
  assert conv_autotune.forward_gflops(x.shape, k.shape, (1, 1, 1), PAD) == pytest.approx(2 * 288 * 405 / 1e9)
  y = jax.jit(lambda x, k: layers.conv_nd(x, k, (1, 1, 1), PAD))(x, k)
  ref = lax.conv_general_dilated(x, k, (1, 1, 1), PAD, dimension_numbers=("NDHWC", "DHWIO", "NDHWC"))
  np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4)
  assert conv_autotune.choose(layers.conv_nd, x.shape, k.shape, (1, 1, 1), PAD, x.dtype) == "temporal_sum"
  assert conv_autotune.choose(layers.conv_nd, (2, 6, 6, 3), k.shape[1:], (1, 1), PAD[1:], x.dtype) == "native"
  assert not (tmp_path / "c.json").exists()


def test_a_failed_onednn_build_is_one_warning_and_no_candidate(cache, monkeypatch, fresh_onednn_check, caplog):
  def broken_build():
    raise RuntimeError("building onednn_conv.cc failed: g++ ...\nerror: simulated")

  monkeypatch.setattr(conv_onednn, "available", lambda: True)
  monkeypatch.setattr(conv_onednn, "_build", broken_build)
  # a fresh once-per-process cache, so that this test neither sees nor spoils a real earlier build
  monkeypatch.setattr(conv_onednn, "_register", functools.cache(conv_onednn._register.__wrapped__))
  seconds = {"native": 2.0, "temporal_sum": 1.0, "gemm": 3.0}
  monkeypatch.setattr(conv_autotune, "measure", lambda conv, impl, *a, **kw: seconds[impl])
  x, k = _inputs()
  key = conv_autotune.shape_key(x.shape, k.shape, (1, 1, 1), PAD, x.dtype)
  cache.write_text(json.dumps({key: "onednn"}))   # chosen when oneDNN ran: measured again without it
  with caplog.at_level("WARNING"):
    assert conv_autotune.candidates(3) == ("native", "temporal_sum", "gemm")
    assert conv_autotune.choose(layers.conv_nd, x.shape, k.shape, (1, 1, 1), PAD, x.dtype) == "temporal_sum"
    assert conv_autotune.candidates(2) == ("native", "gemm")
  warnings = [r for r in caplog.records if r.levelname == "WARNING"]
  assert len(warnings) == 1 and "\n" not in warnings[0].getMessage()
  assert "oneDNN convolutions unavailable" in warnings[0].getMessage() and "simulated" not in warnings[0].getMessage()
  assert json.loads(cache.read_text())[key] == "temporal_sum"


def test_a_candidate_whose_first_call_is_far_slower_is_not_repeated(cache, monkeypatch):
  x, k = _inputs()
  monkeypatch.setattr(conv_autotune, "REPEATS", 3)
  timed = lambda best: conv_autotune.measure(layers.conv_nd, "native", x.shape, k.shape, (1, 1, 1), PAD, x.dtype, best)
  assert timed(float("inf")) > 0
  monkeypatch.setattr(conv_autotune.statistics, "median", lambda *a: pytest.fail("repeated a screened candidate"))
  assert timed(0.0) > 0     # any first call is over 1.5 x 0 s: stops after it


def test_model_init_measures_nothing_and_apply_does(cache, monkeypatch):
  monkeypatch.setenv("VIDREC_CONV3D", "auto")
  measured = []
  monkeypatch.setattr(conv_autotune, "measure", lambda conv, impl, *a, **kw: measured.append(impl) or 1.0)
  conv = layers.Conv(5, (3, 3, 3), use_bias=False)
  x, _ = _inputs()
  variables = conv.init(jax.random.key(0), x)
  assert measured == [] and not cache.exists()
  conv.apply(variables, x)
  assert measured == list(conv_autotune.candidates(3))
