"""``VIDREC_CONV3D=auto`` (the CPU default): each convolution shape runs the formulation that measured
fastest on this machine.

The first time a shape (input, kernel, strides, padding, dtype) is traced, every candidate of
:func:`candidates` (XLA's ``native`` convolution, ``temporal_sum`` for 3D kernels, ``gemm``, and
``onednn`` on CPU where the ``[onednn]`` extra is installed and its handlers build) is compiled
on its own and timed on random data: the median of ``REPEATS`` calls of forward + both gradients
(training dominates; the first layer's unused input gradient is timed too), after a first call that
screens: a candidate whose first call takes over ``SCREEN`` x the best median so far stops there
(``onednn``, usually the fastest at full width, goes first). The winner is kept in memory
and in a JSON cache (``$VIDREC_CONV_CACHE``, default ``~/.cache/vidrec/conv_autotune.json``), keyed by
backend, device kind and shape, so later runs on the same machine skip the measurement. Delete the file
to re-measure (e.g. after a jax upgrade, or when it was filled on a busy machine: the choice is only as
good as the quiet of the machine at measuring time).

Shapes whose forward pass is under ``MIN_MEASURED_GFLOPS`` are not measured: they take
:func:`unmeasured_choice` (``temporal_sum`` for 3D kernels, ``native`` otherwise, the CPU default before
``auto``), which keeps tiny models (tests, the synthetic demo at width 8) free of measuring cost; their
convolutions take milliseconds whatever the formulation. A cached choice that is no longer a candidate
(``onednn`` uninstalled) is measured again.

Under ``jit`` with a sharded batch the traced shape is the global one; the measurement runs it on one
device, which ranks the formulations of a per-device shape ``num_devices`` times smaller only
approximately.
"""
from __future__ import annotations

import json
import os
import pathlib
import statistics
import time
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from vidrec.models import conv_onednn

REPEATS = 3
SCREEN = 1.5
# Forward GFLOPs below which a shape is not measured. ResNet3D-18's 3x3x3 convolutions at 8 x 16 x 112^2
# are 5.5-89 GFLOPs; the largest of any model's :synthetic config (batch 16) 0.46 (docs/performance.md).
MIN_MEASURED_GFLOPS = 2.0
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
  """The formulations measured for an ``nd``-D kernel; ``onednn`` on CPU where ``conv_onednn.usable()``
  (building its handlers on the first call; a failed build is one warning line and no candidate)."""
  onednn = ("onednn",) if jax.default_backend() == "cpu" and conv_onednn.usable() else ()
  return onednn + (("native", "temporal_sum", "gemm") if nd == 3 else ("native", "gemm"))


def unmeasured_choice(nd: int) -> str:
  """The formulation of shapes under ``MIN_MEASURED_GFLOPS``."""
  return "temporal_sum" if nd == 3 else "native"


def forward_gflops(x_shape: Sequence[int], kernel_shape: Sequence[int], strides: Sequence[int],
                   padding: Sequence[tuple[int, int]]) -> float:
  """Multiply-adds x 2 of the forward convolution, in GFLOPs."""
  out = [(d + lo + hi - k) // s + 1 for d, k, s, (lo, hi) in zip(x_shape[1:-1], kernel_shape[:-2], strides, padding)]
  return 2 * x_shape[0] * float(np.prod(out)) * float(np.prod(kernel_shape)) / 1e9


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
            dtype, best: float = float("inf")) -> float:
  """Median seconds of forward + input and kernel gradients of ``conv(x, k, strides, padding, impl)``
  over ``REPEATS`` calls after a first one, or that first call's seconds if over ``SCREEN * best``."""
  def loss(x, k):
    return jnp.sum(conv(x, k, strides, padding, impl).astype(jnp.float32))

  specs = [jax.ShapeDtypeStruct(tuple(s), dtype) for s in (x_shape, kernel_shape)]
  step = jax.jit(jax.grad(loss, argnums=(0, 1))).lower(*specs).compile()
  rng = np.random.default_rng(0)
  with jax.ensure_compile_time_eval():   # concrete arrays, also when called while tracing a model
    x, k = (jax.device_put(rng.standard_normal(s.shape, np.float32).astype(s.dtype)) for s in specs)
  def seconds() -> float:
    t = time.perf_counter()
    jax.block_until_ready(step(x, k))
    return time.perf_counter() - t

  first = seconds()
  return first if first > SCREEN * best else statistics.median(seconds() for _ in range(REPEATS))


def choose(conv: Callable[..., jnp.ndarray], x_shape, kernel_shape, strides, padding, dtype) -> str:
  """The fastest of :func:`candidates` for this shape: from memory, the cache file, or measured now
  (``unmeasured_choice`` under ``MIN_MEASURED_GFLOPS``).

  ``conv(x, kernel, strides, padding, impl)`` is ``layers.conv_nd``."""
  nd = len(kernel_shape) - 2
  if forward_gflops(x_shape, kernel_shape, strides, padding) < MIN_MEASURED_GFLOPS:
    return unmeasured_choice(nd)
  key = shape_key(x_shape, kernel_shape, strides, padding, dtype)
  if key not in _CHOICES:
    stored = _load().get(key)
    if stored not in candidates(nd):
      times = {}
      for impl in candidates(nd):
        times[impl] = measure(conv, impl, x_shape, kernel_shape, strides, padding, dtype,
                              min(times.values(), default=float("inf")))
      stored = min(times, key=times.get)
      _store(key, stored)
    _CHOICES[key] = stored
  return _CHOICES[key]
