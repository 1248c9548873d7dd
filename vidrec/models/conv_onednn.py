"""Channels-last convolution on CPU by oneDNN (what PyTorch runs on CPU), as an XLA FFI custom call.

``conv_onednn(x, kernel, strides, padding)`` takes vidrec's layouts (x [N, *spatial, C], kernel
[*k, C, O], 1 to 3 spatial axes, explicit (lo, hi) padding) in float32 or bfloat16 and has a custom VJP
whose input and kernel gradients are oneDNN's backward-data and backward-weights primitives.

The handlers (``onednn_conv.cc``) are compiled at first use with ``$CXX`` (default ``g++``) against the
oneDNN of the ``onednn`` / ``onednn-devel`` wheels (headers and ``libdnnl.so`` under ``sys.prefix``;
``pip install -e ".[onednn]"``) into ``$VIDREC_ONEDNN_BUILD_DIR`` (default ``~/.cache/vidrec``), one
file per hash of the source, the jax version and the oneDNN headers, so a rebuild happens only when one
of them changes. oneDNN runs its own thread pool (TBB or OpenMP, as the wheel was built; all CPUs by
default) next to XLA's.
"""
from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import pathlib
import re
import shutil
import subprocess
import sys
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

Padding = Sequence[tuple[int, int]]

SOURCE = pathlib.Path(__file__).with_name("onednn_conv.cc")
INSTALL_HINT = 'pip install -e ".[onednn]"'
_TARGETS = {"fwd": "vidrec_onednn_conv_fwd", "bwd_data": "vidrec_onednn_conv_bwd_data",
            "bwd_weights": "vidrec_onednn_conv_bwd_weights"}
# Whether each primitive picks its own (blocked) memory formats, with reorders to and from the
# channels-last buffers, or computes on them directly: the faster per primitive on a 3x3x3 64 -> 64
# convolution of 8 x 16 x 56 x 56 on an AVX2 CPU (``vidrec.tools.conv_bench``).
ANY_LAYOUT = {"fwd": True, "bwd_data": True, "bwd_weights": False}


def _prefix() -> pathlib.Path:
  return pathlib.Path(sys.prefix)


def available() -> bool:
  """Whether oneDNN's headers and library are installed and a C++ compiler is on the PATH."""
  p = _prefix()
  return ((p / "include" / "oneapi" / "dnnl" / "dnnl.hpp").is_file() and (p / "lib" / "libdnnl.so").exists()
          and shutil.which(os.environ.get("CXX", "g++")) is not None)


def build_dir() -> pathlib.Path:
  """Where the compiled handlers are kept: ``$VIDREC_ONEDNN_BUILD_DIR``, default ``~/.cache/vidrec``."""
  return pathlib.Path(os.environ.get("VIDREC_ONEDNN_BUILD_DIR") or pathlib.Path.home() / ".cache" / "vidrec")


def _build() -> pathlib.Path:
  """The compiled handlers' path, compiling them first unless this source/jax/oneDNN was built before."""
  if not available():
    raise RuntimeError(f"conv_onednn (VIDREC_CONV3D=onednn) needs oneDNN's headers and library under "
                       f"{_prefix()} and a C++ compiler (g++ or $CXX): {INSTALL_HINT}")
  prefix = _prefix()
  include, lib = prefix / "include", prefix / "lib"
  cxx = os.environ.get("CXX", "g++")
  headers = include / "oneapi" / "dnnl"
  key = hashlib.sha256(b"\0".join([SOURCE.read_bytes(), jax.__version__.encode(), cxx.encode(),
                                   (headers / "dnnl_version.h").read_bytes(),
                                   (headers / "dnnl_config.h").read_bytes()])).hexdigest()[:16]
  out = build_dir() / f"onednn_conv-{key}.so"
  if out.exists():
    return out
  out.parent.mkdir(parents=True, exist_ok=True)
  tmp = out.with_suffix(f".{os.getpid()}.tmp")
  # DT_RPATH (not RUNPATH) so that libdnnl's own dependencies (libtbb, ...) are found in lib/ too.
  cmd = [cxx, "-O3", "-shared", "-fPIC", "-std=c++17", str(SOURCE), f"-I{jax.ffi.include_dir()}", f"-I{include}",
         f"-L{lib}", "-ldnnl", f"-Wl,--disable-new-dtags,-rpath,{lib}", "-o", str(tmp)]
  result = subprocess.run(cmd, capture_output=True, text=True)
  if result.returncode:
    tmp.unlink(missing_ok=True)
    raise RuntimeError(f"building {SOURCE.name} failed: {' '.join(cmd)}\n{result.stderr}")
  tmp.replace(out)     # atomic: a concurrent process loads either no file or a whole one
  return out


@functools.cache
def _register() -> ctypes.CDLL:
  """Builds (if needed), loads and registers the three FFI targets, once per process."""
  path = _build()
  config = (_prefix() / "include" / "oneapi" / "dnnl" / "dnnl_config.h").read_text()
  if re.search(r"#define DNNL_CPU_RUNTIME DNNL_RUNTIME_SYCL\b", config):
    # A SYCL build (the ``onednn`` wheel) runs CPU primitives on a SYCL CPU device: the Intel OpenCL CPU
    # runtime that the wheel pulls in (intel-opencl-rt), which no ICD file registers. Read when oneDNN
    # creates its engine, at the first convolution.
    os.environ.setdefault("OCL_ICD_FILENAMES", str(_prefix() / "lib" / "libintelocl.so"))
  lib = ctypes.cdll.LoadLibrary(str(path))
  for name in _TARGETS.values():
    jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(getattr(lib, name)), platform="cpu")
  return lib


@functools.cache
def usable() -> bool:
  """Whether the oneDNN path runs here: ``available()``, its handlers built and loaded and a tiny
  convolution computed. Otherwise (a failed build, a runtime that does not start) it logs one warning
  line and returns False; ``VIDREC_CONV3D=auto`` then leaves oneDNN out, where ``=onednn`` raises."""
  if not available():
    return False
  try:
    _register()
    with jax.ensure_compile_time_eval():   # concrete, also when first called while tracing a model
      x, w = jnp.ones((1, 3, 1), jnp.float32), jnp.ones((1, 1, 1), jnp.float32)
    spec = [jax.ShapeDtypeStruct(a.shape, a.dtype) for a in (x, w)]
    jax.jit(lambda x, w: conv_onednn(x, w, (1,), ((0, 0),))).lower(*spec).compile()(x, w).block_until_ready()
  except Exception as e:  # pylint: disable=broad-except   (any failure means: run without oneDNN)
    logging.warning("oneDNN convolutions unavailable, running without them (%s: %s)", type(e).__name__,
                    (str(e).splitlines() or [""])[0])
    return False
  return True


@functools.cache
def native_bfloat16() -> bool:
  """Whether oneDNN has (non-reference) bfloat16 convolutions on this CPU; where not, bfloat16 operands
  are converted to float32 by XLA around the custom call."""
  fn = _register().vidrec_onednn_native_bf16
  fn.restype = ctypes.c_bool
  return bool(fn())


def _call(kind: str, out_shape: Sequence[int], a: jnp.ndarray, b: jnp.ndarray, strides: tuple[int, ...],
          padding: tuple[tuple[int, int], ...]) -> jnp.ndarray:
  _register()
  dtype = a.dtype if a.dtype == jnp.float32 or native_bfloat16() else jnp.float32
  y = jax.ffi.ffi_call(_TARGETS[kind], jax.ShapeDtypeStruct(tuple(out_shape), dtype))(
      a.astype(dtype), b.astype(dtype), strides=np.array(strides, np.int64),
      pad_lo=np.array([p[0] for p in padding], np.int64), pad_hi=np.array([p[1] for p in padding], np.int64),
      any_layout=ANY_LAYOUT[kind])
  return y.astype(a.dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _conv(x: jnp.ndarray, w: jnp.ndarray, strides: tuple[int, ...],
          padding: tuple[tuple[int, int], ...]) -> jnp.ndarray:
  out = [(d + lo + hi - k) // s + 1 for d, k, s, (lo, hi) in zip(x.shape[1:-1], w.shape[:-2], strides, padding)]
  return _call("fwd", (x.shape[0], *out, w.shape[-1]), x, w, strides, padding)


def _conv_fwd(x, w, strides, padding):
  return _conv(x, w, strides, padding), (x, w)


def _conv_bwd(strides, padding, res, dy):
  x, w = res
  dy = dy.astype(x.dtype)
  return (_call("bwd_data", x.shape, dy, w, strides, padding),
          _call("bwd_weights", w.shape, x, dy, strides, padding))


_conv.defvjp(_conv_fwd, _conv_bwd)


def conv_onednn(x: jnp.ndarray, kernel: jnp.ndarray, strides: Sequence[int], padding: Padding) -> jnp.ndarray:
  """Channels-last convolution of x [N, *spatial, C] (float32 or bfloat16; 1 to 3 spatial axes) with
  kernel [*k, C, O] (cast to x's dtype), explicit non-negative (lo, hi) padding, by oneDNN on CPU."""
  nd = kernel.ndim - 2
  strides = tuple(int(s) for s in strides)
  padding = tuple((int(lo), int(hi)) for lo, hi in padding)
  if (not 1 <= nd <= 3 or x.ndim != nd + 2 or x.shape[-1] != kernel.shape[-2] or len(strides) != nd
      or len(padding) != nd or min(strides) < 1 or min(min(p) for p in padding) < 0):
    raise ValueError(f"conv_onednn: x {x.shape}, kernel {kernel.shape}, strides {strides} and padding "
                     f"{padding} disagree (want x [N, *spatial, C], kernel [*k, C, O] with 1-3 spatial axes, "
                     f"one stride >= 1 and one non-negative (lo, hi) pad per spatial axis)")
  if x.dtype not in (jnp.float32, jnp.bfloat16):
    raise TypeError(f"conv_onednn: float32 or bfloat16 input, got {x.dtype}")
  if any(d + lo + hi < k for d, k, (lo, hi) in zip(x.shape[1:-1], kernel.shape[:-2], padding)):
    raise ValueError(f"conv_onednn: kernel {kernel.shape[:-2]} larger than the padded input {x.shape[1:-1]}")
  return _conv(x, kernel.astype(x.dtype), strides, padding)
