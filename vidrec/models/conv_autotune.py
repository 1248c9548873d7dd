"""``VIDREC_CONV3D=auto``: each convolution shape runs the formulation that measured fastest on this machine.

The first time a shape (input, kernel, strides, padding, dtype) is traced, every candidate of
:func:`candidates` (XLA's ``native`` convolution, ``temporal_sum`` for 3D kernels, ``gemm``, and
``onednn`` on CPU where it is installed) is compiled
on its own and timed on random data: the median of ``REPEATS`` calls of forward + both gradients
(training dominates; the first layer's unused input gradient is timed too). The winner is kept in memory
and in a JSON cache (``$VIDREC_CONV_CACHE``, default ``~/.cache/vidrec/conv_autotune.json``), keyed by
backend, device kind and shape, so later runs on the same machine skip the measurement. Delete the file
to re-measure (e.g. after a jax upgrade, or when it was filled on a busy machine: the choice is only as
good as the quiet of the machine at measuring time).

Under ``jit`` with a sharded batch the traced shape is the global one; the measurement runs it on one
device, which ranks the formulations of a per-device shape ``num_devices`` times smaller only
approximately.
"""
from __future__ import annotations

import json
import os
import pathlib
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from vidrec.models import conv_onednn
from vidrec.timing import median_seconds

REPEATS = 3
_CHOICES: dict[str, str] = {}


def cache_path() -> pathlib.Path:
  return pathlib.Path(os.environ.get("VIDREC_CONV_CACHE")
                      or pathlib.Path.home() / ".cache" / "vidrec" / "conv_autotune.json")


def shape_key(x_shape: Sequence[int], kernel_shape: Sequence[int], strides: Sequence[int],
              padding: Sequence[tuple[int, int]], dtype) -> str:
  device = jax.devices()[0]
  return "|".join([jax.default_backend(), device.device_kind, f"x{tuple(x_shape)}", f"k{tuple(kernel_shape)}",
                   f"s{tuple(strides)}", f"p{tuple(tuple(p) for p in padding)}", jnp.dtype(dtype).name])


def candidates(nd: int) -> tuple[str, ...]:
  onednn = ("onednn",) if jax.default_backend() == "cpu" and conv_onednn.available() else ()
  return (("native", "temporal_sum", "gemm") if nd == 3 else ("native", "gemm")) + onednn


def _load() -> dict[str, str]:
  try:
    return json.loads(cache_path().read_text())
  except (FileNotFoundError, json.JSONDecodeError):
    return {}


def _store(key: str, impl: str) -> None:
  path = cache_path()
  path.parent.mkdir(parents=True, exist_ok=True)
  table = {**_load(), key: impl}
  tmp = path.with_suffix(f".{os.getpid()}.tmp")
  tmp.write_text(json.dumps(table, indent=1, sort_keys=True))
  tmp.replace(path)     # atomic: concurrent runs never read a half-written file


def measure(conv: Callable[..., jnp.ndarray], impl: str, x_shape, kernel_shape, strides, padding,
            dtype) -> float:
  """Median seconds of forward + input and kernel gradients of ``conv(x, k, strides, padding, impl)``."""
  def loss(x, k):
    return jnp.sum(conv(x, k, strides, padding, impl).astype(jnp.float32))

  specs = [jax.ShapeDtypeStruct(tuple(s), dtype) for s in (x_shape, kernel_shape)]
  step = jax.jit(jax.grad(loss, argnums=(0, 1))).lower(*specs).compile()
  rng = np.random.default_rng(0)
  with jax.ensure_compile_time_eval():   # concrete arrays, also when called while tracing a model
    x, k = (jax.device_put(rng.standard_normal(s.shape, np.float32).astype(s.dtype)) for s in specs)
  return median_seconds(lambda: jax.block_until_ready(step(x, k)), REPEATS)


def choose(conv: Callable[..., jnp.ndarray], x_shape, kernel_shape, strides, padding, dtype) -> str:
  """The fastest of :func:`candidates` for this shape: from memory, the cache file, or measured now.

  ``conv(x, kernel, strides, padding, impl)`` is ``layers.conv_nd``."""
  key = shape_key(x_shape, kernel_shape, strides, padding, dtype)
  if key not in _CHOICES:
    stored = _load().get(key)
    if stored is None:
      times = {impl: measure(conv, impl, x_shape, kernel_shape, strides, padding, dtype)
               for impl in candidates(len(kernel_shape) - 2)}
      stored = min(times, key=times.get)
      _store(key, stored)
    _CHOICES[key] = stored
  return _CHOICES[key]
