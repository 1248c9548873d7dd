"""Preemption-safe training: a SIGTERM (a Cloud TPU / preemptible-VM notice) or Ctrl-C becomes
"finish the step, checkpoint, exit with status 75" at a step every process agrees on.

Single process: Python handlers for SIGTERM and SIGINT set a flag, read after every step. A second
Ctrl-C interrupts at once (KeyboardInterrupt).
Several processes (``jax.distributed``): JAX's preemption sync manager already catches SIGTERM (in C++)
and propagates the notice to every process; ``reached_preemption(step)`` (orbax's wrapper of
``multihost_utils.reached_preemption_sync_point``), asked after every step on every process, is true at
the same step everywhere (one past the largest step any process had reached). SIGINT is forwarded to
that SIGTERM handler so Ctrl-C on a multi-process job stops the same way.
"""
from __future__ import annotations

import signal
import types
from typing import Callable

import jax
from absl import logging
from jax._src import distributed


class Preempted(Exception):
  """Training stopped at ``step`` on a preemption notice, after writing that step's checkpoint."""

  def __init__(self, step: int, signal_name: str):
    super().__init__(f"Preempted ({signal_name}): stopped after step {step} and wrote its checkpoint. "
                     f"Re-run the same command to resume from step {step}.")
    self.step = step


def _sync_manager_active() -> bool:
  return jax.process_count() > 1 and distributed.global_state.preemption_sync_manager is not None


class PreemptionGuard:
  """Installed around the training loop; ``reached(step)`` says whether to stop after ``step``.

  ``sync_point`` is ``CheckpointManager.reached_preemption`` (used only with several processes; it must
  be asked at every step, by every process, with the same step numbers).
  """

  def __init__(self, sync_point: Callable[[int], bool]):
    self._sync_point = sync_point
    self._multi = _sync_manager_active()
    self._off = jax.process_count() > 1 and not self._multi   # a stop on one process only would hang
    if self._off:
      logging.warning("JAX's preemption service is off (jax_enable_preemption_service): SIGTERM will "
                      "not checkpoint this multi-process run.")
    self.signal_name: str | None = None
    self._previous: dict[int, object] = {}

  def _on_signal(self, signum: int, frame: types.FrameType | None) -> None:
    del frame
    name = signal.Signals(signum).name
    if signum == signal.SIGINT and self.signal_name is not None:
      raise KeyboardInterrupt   # a second Ctrl-C: stop now, without the checkpoint
    self.signal_name = name
    logging.warning("%s received: finishing this step, then checkpointing and stopping "
                    "(Ctrl-C again to stop at once).", name)
    if self._multi:
      signal.raise_signal(signal.SIGTERM)   # -> JAX's notifier, which tells every process

  def install(self) -> "PreemptionGuard":
    handled = () if self._off else (signal.SIGINT,) if self._multi else (signal.SIGINT, signal.SIGTERM)
    try:
      self._previous = {s: signal.signal(s, self._on_signal) for s in handled}
    except ValueError:          # not the main thread: signals cannot be handled here
      self._previous = {}
    return self

  def uninstall(self) -> None:
    for s, handler in self._previous.items():
      signal.signal(s, handler)

  def reached(self, step: int) -> bool:
    """True when training must stop after ``step`` (the same answer on every process)."""
    if self._multi:
      if self._sync_point(step):
        self.signal_name = self.signal_name or "SIGTERM"
        return True
      return False
    return self.signal_name is not None
