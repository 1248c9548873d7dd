"""Metrics: accuracy helpers and a writer that logs to ``metrics.jsonl``, TensorBoard and the console."""
from __future__ import annotations

import json
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from vidrec import fs


def topk_correct(logits: jnp.ndarray, labels: jnp.ndarray, k: int) -> jnp.ndarray:
  """1.0 where the label is among the k highest logits, per row."""
  k = min(k, logits.shape[-1])
  label_logit = jnp.take_along_axis(logits, labels[:, None], axis=-1)
  return (jnp.sum(logits > label_logit, axis=-1) < k).astype(jnp.float32)


class MetricWriter:
  """Writes scalars to ``DIR/metrics.jsonl`` (one JSON object per line, with "step") and to
  TensorBoard event files in ``DIR/tensorboard``; only process 0 writes."""

  def __init__(self, workdir: str, total_steps: int):
    self.active = jax.process_index() == 0
    self.total_steps = total_steps
    self._t0, self._step0 = time.time(), None
    if self.active:
      self._jsonl = fs.AppendFile(fs.path(workdir) / "metrics.jsonl")
      self._tb = fs.tensorboard_writer(fs.path(workdir) / "tensorboard")

  def write(self, step: int, scalars: dict[str, float]) -> None:
    if not self.active:
      return
    scalars = {k: float(v) for k, v in scalars.items()}
    self._jsonl.write(json.dumps({"step": step, **scalars}) + "\n")
    self._jsonl.flush()
    for k, v in scalars.items():
      self._tb.add_scalar(k, v, step)
    self._tb.flush()

  def progress(self, step: int, scalars: dict[str, float]) -> None:
    """One console line: step/total, key metrics and ETA."""
    if not self.active:
      return
    if self._step0 is None:
      self._step0, self._t0 = step, time.time()
      eta = "?"
    else:
      rate = (step - self._step0) / max(time.time() - self._t0, 1e-9)
      eta = _fmt_time((self.total_steps - step) / rate) if rate > 0 else "?"
    shown = " ".join(f"{k}={v:.4g}" for k, v in scalars.items()
                     if k in ("loss", "top1", "top5", "lr", "clips_per_sec"))
    print(f"[{step:>7d}/{self.total_steps}] {shown} eta={eta}", file=sys.stderr, flush=True)

  def close(self) -> None:
    if self.active:
      self._jsonl.close()
      self._tb.close()


def _fmt_time(seconds: float) -> str:
  m, s = divmod(int(seconds), 60)
  h, m = divmod(m, 60)
  return f"{h}:{m:02d}:{s:02d}"


def mean_metrics(history: list[dict[str, jax.Array]]) -> dict[str, float]:
  """Averages a list of per-step metric dicts (fetched once, at log time)."""
  stacked = jax.device_get(history)
  return {k: float(np.mean([h[k] for h in stacked])) for k in stacked[0]}
