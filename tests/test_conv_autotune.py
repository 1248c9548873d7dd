"""VIDREC_CONV3D=auto (vidrec.models.conv_autotune): per-shape choice by measurement, cached on disk."""
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
  return path


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
  monkeypatch.setattr(conv_autotune, "measure", lambda conv, impl, *a: seconds[impl])
  assert conv_autotune.choose(layers.conv_nd, (1, 4, 6, 6, 3), (3, 3, 3, 3, 5), (1, 1, 1), PAD,
                              jnp.float32) == "temporal_sum"
  onednn = ("onednn",) if conv_onednn.available() else ()   # installed: a candidate on CPU
  assert conv_autotune.candidates(2) == ("native", "gemm") + onednn
  assert conv_autotune.candidates(3) == ("native", "temporal_sum", "gemm") + onednn
  assert list(json.loads(cache.read_text()).values()) == ["temporal_sum"]
