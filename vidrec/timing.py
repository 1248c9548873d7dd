"""Wall-clock timing shared by the benchmarks and the convolution autotuner. Standard library only:
``vidrec/tools/torch_r3d.py`` loads this file by path in a process that must not import vidrec (whose
package import loads TensorFlow, which crashes next to PyTorch here)."""
from __future__ import annotations

import statistics
import time
from typing import Callable


def median_seconds(fn: Callable[[], object], steps: int) -> float:
  """Median wall time of ``steps`` calls of ``fn`` after one warm-up call (``fn`` must block until done)."""
  fn()
  times = []
  for _ in range(steps):
    t = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t)
  return statistics.median(times)
