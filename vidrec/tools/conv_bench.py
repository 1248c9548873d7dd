"""Micro-benchmark of one convolution per CPU formulation: forward and backward GFLOP/s.

  python -m vidrec.tools.conv_bench --shape 8,16,56,56,64 --kernel 3,3,3 --features 64 [--dtype bfloat16]

Times (median of ``--repeats`` after one warm-up) the forward and forward+backward (input and kernel
gradients) of ``lax.conv_general_dilated`` (native), the temporal sum of 2D convolutions (3D kernels),
oneDNN (``conv_onednn``, when installed) and ``conv_gemm`` for every (split, chunks) plan; prints one
JSON line per formulation. Backward GFLOP/s counts the two gradient convolutions (2x the forward
FLOPs) over (fwd+bwd time - fwd time).
"""
from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
from absl import flags

from vidrec import cli
from vidrec.models import conv_gemm, conv_onednn, layers
from vidrec.timing import median_seconds

_SHAPE = flags.DEFINE_list("shape", ["8", "16", "56", "56", "64"], "Input N,*spatial,C.")
_KERNEL = flags.DEFINE_list("kernel", ["3", "3", "3"], "Kernel size per spatial axis.")
_FEATURES = flags.DEFINE_integer("features", 64, "Output channels.")
_STRIDES = flags.DEFINE_list("strides", None, "Strides per spatial axis (default 1).")
_DTYPE = flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"], "Compute dtype.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed calls (median) after one warm-up.")
_ONLY = flags.DEFINE_list("only", None, "Formulations to run (names as printed), default all.")


def formulations(x_shape, k_shape, strides, itemsize) -> dict:
  """name -> conv(x, k) for every formulation of this shape."""
  nd = len(k_shape) - 2
  padding = layers.same_padding(k_shape[:nd])

  def env(impl):
    def conv(x, k):
      with layers.using_conv_impl(impl):
        return layers.conv_nd(x, k, strides, padding)
    return conv

  out = {"native": env("native")}
  if nd == 3:
    out["temporal_sum"] = env("temporal_sum")
  if conv_onednn.available():
    out["onednn"] = env("onednn")
  n = x_shape[0]
  for split in range(nd + 1):
    for chunks in sorted({1, n, conv_gemm.plan(x_shape, k_shape, strides, itemsize).chunks}):
      p = conv_gemm.Plan(split, chunks)
      out[f"gemm_split{split}_chunks{chunks}"] = lambda x, k, p=p: conv_gemm.conv_gemm(x, k, strides, padding, p)
  return out


def main(argv):
  del argv
  x_shape = tuple(map(int, _SHAPE.value))
  kernel = tuple(map(int, _KERNEL.value))
  strides = tuple(map(int, _STRIDES.value)) if _STRIDES.value else (1,) * len(kernel)
  dtype = jnp.dtype(_DTYPE.value)
  k_shape = kernel + (x_shape[-1], _FEATURES.value)
  x = jax.random.normal(jax.random.key(0), x_shape, dtype)
  k = (jax.random.normal(jax.random.key(1), k_shape) * 0.05).astype(dtype)
  out_spatial = [-(-d // s) for d, s in zip(x_shape[1:-1], strides)]
  flops = 2 * x_shape[0] * math.prod(out_spatial) * math.prod(k_shape)
  plan = conv_gemm.plan(x_shape, k_shape, strides, dtype.itemsize)
  for name, conv in formulations(x_shape, k_shape, strides, dtype.itemsize).items():
    if _ONLY.value and name not in _ONLY.value:
      continue
    fwd = jax.jit(conv)
    # A random cotangent: with sum(y) XLA sees a cotangent of ones and may simplify the native gradients.
    proj = jax.random.normal(jax.random.key(2), jax.eval_shape(conv, x, k).shape)
    fwd_bwd = jax.jit(jax.grad(lambda a, b, p, conv=conv: (conv(a, b).astype(jnp.float32) * p).sum(),
                               argnums=(0, 1)))
    t_f = median_seconds(lambda: jax.block_until_ready(fwd(x, k)), _REPEATS.value)
    t_fb = median_seconds(lambda: jax.block_until_ready(fwd_bwd(x, k, proj)), _REPEATS.value)
    print(json.dumps({"formulation": name, "dtype": _DTYPE.value, "shape": x_shape, "kernel": k_shape,
                      "strides": strides, "plan": name == f"gemm_split{plan.split}_chunks{plan.chunks}",
                      "fwd_s": round(t_f, 4), "fwd_bwd_s": round(t_fb, 4),
                      "fwd_gflops": round(flops / t_f / 1e9, 1),
                      "bwd_gflops": round(2 * flops / max(t_fb - t_f, 1e-9) / 1e9, 1)}), flush=True)


if __name__ == "__main__":
  cli.run(main)
