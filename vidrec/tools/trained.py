"""What the figure tools share: a trained run's model, state and apply function, and the first test view
of chosen videos."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import ml_collections
import numpy as np


def load(config: ml_collections.ConfigDict, workdir: str) -> tuple[Any, Any, Callable]:
  """(trainer.Setup, restored TrainState, jitted ``apply(variables, uint8 views)`` in eval mode)."""
  import jax  # pylint: disable=g-import-not-at-top
  from vidrec import trainer  # pylint: disable=g-import-not-at-top
  from vidrec.data import modalities  # pylint: disable=g-import-not-at-top
  s = trainer.setup(config)
  mngr = trainer.checkpoint_manager(workdir, config)
  if mngr.latest_step() is None:
    raise FileNotFoundError(f"No checkpoint in {workdir}/checkpoints: train first.")
  ts, _ = trainer.restore(mngr, s.abstract_state)
  mngr.close()
  apply = jax.jit(lambda var, x: s.model.apply(var, modalities.model_input(x, config.input), train=False))
  return s, ts, apply


def first_test_views(s: Any, config: ml_collections.ConfigDict,
                     videos: Sequence[int]) -> tuple[dict[int, tuple[np.ndarray, int]], list[str]]:
  """({video index: (its first evaluation view, label)} for each of ``videos``, the class names).

  Raises ValueError naming the videos the eval split does not have."""
  from vidrec.data import pipeline  # pylint: disable=g-import-not-at-top
  source = pipeline.VideoSource(s.builder, config.dataset.eval_split)
  ds = pipeline.eval_dataset(source, config.input, global_batch=config.eval.batch_size)
  wanted, found = set(videos), {}
  for batch in ds.as_numpy_iterator():
    for i, v in enumerate(batch["video_index"]):
      if int(v) in wanted and int(v) not in found:
        found[int(v)] = (batch["video"][i], int(batch["label"][i]))
    if len(found) == len(wanted):
      break
  if missing := wanted - set(found):
    raise ValueError(f"--videos {sorted(missing)} not in the {config.dataset.eval_split} split "
                     f"({len(source)} videos)")
  return found, source.class_names
