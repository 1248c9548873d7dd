"""Optical-flow extraction speed: frame pairs per second per core of ``vidrec.data.flow.extract``.

  python -m vidrec.tools.flow_speed --sizes 32,64,256 --pairs 20 [--warped]

Frames: a ``synthetic_actions`` video resized to each square size. Prints one JSON line per size.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from vidrec.data import flow, synthetic


def benchmark(size: int, pairs: int, warped: bool) -> dict:
  """Frame pairs per second per core (OpenCV single-threaded) on synthetic_actions frames: per CPU
  second of this process (independent of other jobs on the machine) and per wall second."""
  cv2 = flow.require_cv2()
  video = synthetic.render_video(0, np.random.default_rng(0), 64, pairs + 1)
  video = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_CUBIC) for f in video])
  flow.extract(video[:2], warped=warped)   # warm-up (solver construction)
  start, cpu_start = time.perf_counter(), time.process_time()
  flow.extract(video, warped=warped)
  seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
  return {"size": size, "pairs": pairs, "warped": warped, "wall_s": round(seconds, 3),
          "cpu_s": round(cpu_seconds, 3), "pairs_per_cpu_s": round(pairs / cpu_seconds, 2),
          "pairs_per_wall_s": round(pairs / seconds, 2)}


def main(argv: list[str] | None = None) -> None:
  p = argparse.ArgumentParser(prog="python -m vidrec.tools.flow_speed", description=benchmark.__doc__)
  p.add_argument("--sizes", default="32,64,256", help="square frame sizes, comma-separated")
  p.add_argument("--pairs", type=int, default=20)
  p.add_argument("--warped", action="store_true", help="also compute the warped flow (2 TV-L1 per pair)")
  args = p.parse_args(argv)
  for size in (int(s) for s in args.sizes.split(",")):
    print(json.dumps(benchmark(size, args.pairs, args.warped)), flush=True)


if __name__ == "__main__":
  main()
