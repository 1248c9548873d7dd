"""Profiling a training run: ``--config.profile_steps=a,b`` writes a ``jax.profiler`` trace of steps
a..b (1-based, inclusive) into ``WORKDIR/profile`` (TensorBoard's profile plugin reads the
``.xplane.pb``; ``perfetto_trace.json.gz`` opens in ui.perfetto.dev). The trainer also says on the
console when the train step's compilation starts and ends (``compile_step``), so the first logged
clips/s measures steps only.
"""
from __future__ import annotations

import sys
import time
from typing import Any, Callable

import jax

from vidrec import fs
from vidrec.errors import UserError


def parse_steps(spec: str) -> tuple[int, int] | None:
  """"a,b" -> (a, b) with 1 <= a <= b; "" -> None (no trace)."""
  if not spec:
    return None
  try:
    a, b = (int(v) for v in spec.split(","))
  except ValueError:
    a = b = 0
  if not 1 <= a <= b:
    raise UserError(f"profile_steps must be 'a,b' with 1 <= a <= b (steps a..b are traced), got {spec!r}")
  return a, b


def say(message: str) -> None:
  """A console line (process 0), beside the trainer's progress lines."""
  if jax.process_index() == 0:
    print(message, file=sys.stderr, flush=True)


def compile_step(step_fn: Callable, *args) -> Callable:
  """``step_fn`` (a ``jax.jit`` function) lowered and compiled for ``args``, saying when that starts
  and ends; the compiled function is what the loop calls (same shapes every step)."""
  say("Compiling the train step ...")
  t = time.time()
  compiled = step_fn.lower(*args).compile()
  say(f"Compiled the train step in {time.time() - t:.1f} s")
  return compiled


class StepTrace:
  """Starts a ``jax.profiler`` trace before step ``a`` and stops it once step ``b`` has finished."""

  def __init__(self, spec: str, workdir: str):
    self.steps = parse_steps(spec)
    self.dir = str(fs.path(workdir) / "profile")
    self.active = False

  def before(self, step: int) -> None:
    """Called before running step ``step`` (1-based)."""
    if self.steps and step == self.steps[0]:
      jax.profiler.start_trace(self.dir, create_perfetto_trace=True)
      self.active = True
      say(f"Tracing steps {self.steps[0]}..{self.steps[1]} into {self.dir}")

  def after(self, step: int, outputs: Any) -> None:
    """Called after dispatching step ``step``; waits for ``outputs`` so the trace holds the step."""
    if self.active and step == self.steps[1]:
      self.stop(outputs)

  def stop(self, outputs: Any = None) -> None:
    if self.active:
      jax.block_until_ready(outputs)
      jax.profiler.stop_trace()
      self.active = False
      say(f"Wrote the trace to {self.dir}")
