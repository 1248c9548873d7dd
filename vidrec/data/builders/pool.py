"""An ordered, bounded, crash-tolerant process-pool map (:func:`ordered_parallel_map`): the builders
decode videos with it, one video per task."""
from __future__ import annotations

import collections
import concurrent.futures
from concurrent.futures.process import BrokenProcessPool
import multiprocessing
import sys
from typing import Callable, Iterable, Iterator, TypeVar

from absl import logging

_T = TypeVar("_T")
_R = TypeVar("_R")


def _mp_context() -> multiprocessing.context.BaseContext:
  # fork: workers start instantly and do not re-import TensorFlow; they only run PyAV/PIL.
  method = "fork" if sys.platform.startswith("linux") else "spawn"
  return multiprocessing.get_context(method)


def _run_isolated(fn: Callable[[_T], _R], item: _T,
                  on_crash: Callable[[_T], _R]) -> _R:
  with concurrent.futures.ProcessPoolExecutor(1, mp_context=_mp_context()) as ex:
    try:
      return ex.submit(fn, item).result()
    except BrokenProcessPool:
      return on_crash(item)


def ordered_parallel_map(fn: Callable[[_T], _R], items: Iterable[_T], workers: int,
                         on_crash: Callable[[_T], _R],
                         max_in_flight: int | None = None) -> Iterator[tuple[_T, _R]]:
  """Yields ``(item, fn(item))`` in input order, computing ``fn`` in ``workers`` processes.

  At most ``max_in_flight`` items (default 4 per worker) are submitted but not yet
  yielded, so memory stays bounded however slow the consumer. If a worker process dies
  (a decoder segfault, the OOM killer), the items that were in flight are re-run one by
  one in fresh processes; the one that kills its process again gets ``on_crash(item)``
  and the map carries on. ``workers <= 1`` runs ``fn`` in this process.
  """
  if workers <= 1:
    for item in items:
      yield item, fn(item)
    return
  max_in_flight = max_in_flight or 4 * workers
  iterator = iter(items)
  pending: collections.deque = collections.deque()
  executor = concurrent.futures.ProcessPoolExecutor(workers, mp_context=_mp_context())
  try:
    exhausted = False
    while True:
      while not exhausted and len(pending) < max_in_flight:
        try:
          item = next(iterator)
        except StopIteration:
          exhausted = True
          break
        pending.append((item, executor.submit(fn, item)))
      if not pending:
        break
      item, future = pending.popleft()
      try:
        result = future.result()
      except BrokenProcessPool:
        logging.warning("A decoding worker died; re-running %d in-flight videos one by "
                        "one to find the culprit.", len(pending) + 1)
        executor.shutdown(wait=True, cancel_futures=True)
        redo = [item] + [it for it, _ in pending]
        pending.clear()
        for it in redo:
          yield it, _run_isolated(fn, it, on_crash)
        executor = concurrent.futures.ProcessPoolExecutor(workers, mp_context=_mp_context())
        continue
      yield item, result
  finally:
    executor.shutdown(wait=True, cancel_futures=True)
