"""Optical-flow speed of both TV-L1 backends: frame pairs per second and per CPU-second.

  python -m vidrec.tools.flow_speed --sizes 32,64,128,256 --pairs 16 --backend both --batches 1,16,64 [--warped]

Frames: a ``synthetic_actions`` video resized to each square size. Prints one JSON line per (backend,
size, batch). OpenCV runs one pair at a time on one thread; JAX runs ``batch`` pairs per jit call (its
compile time is reported apart, ``compile_s``). ``--warped``: ``flow.extract_many`` of the flow and the
warped flow (SIFT, RANSAC and a second TV-L1 per pair; JAX in batches of ``flow.jax_batch``).
Pairs per CPU-second counts every thread of this process, so it does not depend on other jobs on
the machine; ``load`` is the 1-minute load average.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from vidrec.data import flow, synthetic


def _frames(size: int, pairs: int) -> np.ndarray:
  cv2 = flow.require_cv2()
  video = synthetic.render_video(0, np.random.default_rng(0), 64, pairs + 1)
  return flow.grey(np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_CUBIC) for f in video]))


def benchmark(backend: str, size: int, pairs: int, batch: int = 1, warped: bool = False) -> dict:
  """Pairs per CPU-second and per wall-second of ``backend`` on ``pairs`` pairs of ``size`` px."""
  grey = _frames(size, pairs)
  prev, nxt = grey[:-1], grey[1:]
  if warped:
    batch = flow.jax_batch(size, size)
    run = lambda a, b: flow.extract_many([np.concatenate([a, b[-1:]])], warped=True, backend=backend)
  else:
    run = (flow.BACKENDS["opencv"] if backend == "opencv" else
           lambda a, b: flow.BACKENDS["jax"](a, b, batch=batch))
  blank = np.zeros((batch, size, size), np.uint8)    # converges at once: the warm-up is the compile
  start = time.perf_counter()
  run(blank, blank)                    # warm-up: the solver (OpenCV), the compile (JAX)
  compile_s = time.perf_counter() - start
  start, cpu_start = time.perf_counter(), time.process_time()
  run(prev, nxt)
  seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
  return {"backend": backend, "size": size, "batch": batch if backend == "jax" else 1, "pairs": pairs,
          "warped": warped,
          "wall_s": round(seconds, 3), "cpu_s": round(cpu_seconds, 3),
          "pairs_per_cpu_s": round(pairs / cpu_seconds, 3), "pairs_per_wall_s": round(pairs / seconds, 3),
          **({"compile_s": round(compile_s, 1)} if backend == "jax" else {}),
          "load": round(os.getloadavg()[0], 2)}


def main(argv: list[str] | None = None) -> None:
  p = argparse.ArgumentParser(prog="python -m vidrec.tools.flow_speed", description=benchmark.__doc__)
  p.add_argument("--sizes", default="32,64,128,256", help="square frame sizes, comma-separated")
  p.add_argument("--pairs", type=int, default=16, help="pairs timed per (size, batch)")
  p.add_argument("--backend", default="both", choices=("jax", "opencv", "both"))
  p.add_argument("--batches", default="1,16,64", help="JAX batch sizes, comma-separated")
  p.add_argument("--warped", action="store_true", help="also the warped flow (2 TV-L1 per pair)")
  args = p.parse_args(argv)
  backends = ("opencv", "jax") if args.backend == "both" else (args.backend,)
  for size in (int(s) for s in args.sizes.split(",")):
    for backend in backends:
      batches = [int(b) for b in args.batches.split(",")] if backend == "jax" and not args.warped else [1]
      for batch in batches:
        print(json.dumps(benchmark(backend, size, max(args.pairs, batch), batch, args.warped)), flush=True)


if __name__ == "__main__":
  main()
