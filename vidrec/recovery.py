"""Recovery from faults found at start-up or while training: unreadable checkpoints, unreadable videos,
and the checks a checkpoint's metadata allows (steps, classes).

Orbax writes each checkpoint into a temporary directory and renames it into place when complete, and
deletes old checkpoints (``keep_checkpoints``) only after a newer one is complete, so a crash while
saving leaves at worst a temporary directory that is never listed. A listed checkpoint can still be
unreadable (a disk fault, a truncated copy, a hand-edited file): ``restore_newest_readable`` then warns,
moves it to ``WORKDIR/checkpoints_unreadable/`` (so a new save of that step can happen and nothing is
deleted) and restores the one before it.
"""
from __future__ import annotations

import time
from typing import Any, Callable

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging
from jax.experimental import multihost_utils

from vidrec import fs
from vidrec.errors import MissingDataError, UserError


def restore_newest_readable(mngr: ocp.CheckpointManager, restore: Callable[[int], Any]) -> Any:
  """``restore(step)`` for the newest step that restores; None when there is no checkpoint."""
  failed: list[tuple[int, Exception]] = []
  for step in sorted(mngr.all_steps(), reverse=True):
    try:
      result = restore(step)
    except Exception as e:  # pylint: disable=broad-except  (any fault of the files: orbax, tensorstore, json)
      logging.warning("Checkpoint step %d in %s is unreadable (%s: %s); trying the one before it.",
                      step, mngr.directory, type(e).__name__, _first_line(e))
      failed.append((step, e))
      continue
    if failed:
      set_aside(mngr, [s for s, _ in failed])
      logging.warning("Resuming from step %d; unreadable checkpoint(s) %s were moved to %s.", step,
                      [s for s, _ in failed], _aside_dir(mngr))
    return result
  if failed:
    raise UserError(
        f"None of the checkpoints in {mngr.directory} (steps {[s for s, _ in failed]}) can be restored "
        f"into this model; the newest fails with {type(failed[0][1]).__name__}: {_first_line(failed[0][1])}. "
        f"If the model config changed, use a new --workdir; to start over, move the checkpoints away.")
  return None


def _first_line(e: BaseException) -> str:
  return (str(e).strip().splitlines() or [""])[0][:300]


def _aside_dir(mngr: ocp.CheckpointManager):
  return fs.path(mngr.directory).parent / "checkpoints_unreadable"


def set_aside(mngr: ocp.CheckpointManager, steps: list[int]) -> None:
  """Moves the given step directories out of the checkpoint directory (process 0), then reloads."""
  if jax.process_index() == 0:
    aside = _aside_dir(mngr)
    aside.mkdir(parents=True, exist_ok=True)
    for step in steps:
      source = fs.path(mngr.directory) / str(step)
      target = aside / str(step)
      if target.exists():
        target = aside / f"{step}.{int(time.time())}"
      source.rename(target)
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices("vidrec_set_aside_unreadable_checkpoints")
  mngr.reload()


def check_step(mngr: ocp.CheckpointManager, step: int | None, workdir: str) -> int:
  """The step to evaluate: ``step`` if it exists, else the latest; a clear error when there is none."""
  steps = mngr.all_steps()
  if not steps:
    raise MissingDataError(f"No checkpoint in {mngr.directory}: train first "
                           f"(python train.py --config ... --workdir {workdir}).")
  if step is None:
    return max(steps)
  if step not in steps:
    raise MissingDataError(f"There is no checkpoint of step {step} in {mngr.directory}; it holds steps "
                           f"{sorted(steps)}. Pass one of those as --step (or none for the latest).")
  return step


def check_classes(saved: list[str] | None, class_names: list[str], dataset: str) -> None:
  """Stops when the dataset's classes are not the ones the checkpoint was trained on."""
  if saved is None or list(saved) == list(class_names):
    return
  diff = [f"{i}: {a!r} != {b!r}" for i, (a, b) in enumerate(zip(saved, class_names)) if a != b][:5]
  raise UserError(
      f"The checkpoint was trained on {len(saved)} classes and dataset {dataset!r} has {len(class_names)}"
      f"{' (first differences: ' + '; '.join(diff) + ')' if diff else ''}: the label indices would mean "
      f"other classes. Evaluate on the dataset the model was trained on (--config.dataset.name).")


class UnreadableVideos:
  """Counts the training videos the pipeline replaced (``unreadable`` column of a batch, -1 = none)
  and stops once more than ``max_fraction`` of the dataset's videos turned out unreadable."""

  def __init__(self, num_videos: int, max_fraction: float, video_id: Callable[[int], str]):
    self.limit = int(max_fraction * num_videos)
    self.num_videos, self.video_id = num_videos, video_id
    self.seen: set[int] = set()
    self.replaced = 0                 # examples replaced since the last ``counts`` (this process)

  def add(self, unreadable: np.ndarray) -> None:
    bad = unreadable[unreadable >= 0]
    self.replaced += len(bad)
    self.seen.update(int(i) for i in bad)

  def counts(self) -> dict[str, float]:
    """Logged scalars (over all processes); raises when too many videos are unreadable."""
    replaced, seen = self.replaced, sorted(self.seen)
    if jax.process_count() > 1:   # a fixed-size gather: every process must take part
      ids = np.full(self.limit + 1, -1, np.int64)
      ids[:min(len(seen), self.limit + 1)] = seen[:self.limit + 1]
      gathered = multihost_utils.process_allgather(np.concatenate([[replaced], ids]))
      replaced = int(gathered[:, 0].sum())
      seen = sorted(set(int(i) for i in gathered[:, 1:].ravel() if i >= 0))
    self.replaced = 0
    if len(seen) > self.limit:
      names = ", ".join(f"#{i} ({self.video_id(i)})" for i in seen[:20])
      raise UserError(
          f"{len(seen)} training videos have frames that do not decode, more than "
          f"dataset.max_unreadable_fraction of {self.num_videos}: {names}. Re-prepare the dataset "
          f"(python -m vidrec.data.prepare skips unreadable videos) or raise "
          f"--config.dataset.max_unreadable_fraction.")
    return {"data/replaced_examples": replaced, "data/unreadable_videos": len(seen)}
