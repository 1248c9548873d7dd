"""What the figure tools share: a trained run's model, state and apply function, and the first test view
of chosen videos."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import ml_collections
import numpy as np

from vidrec.errors import UserError


def restore(config: ml_collections.ConfigDict, workdir: str, step: int | None = None,
            num_classes: int | None = None) -> tuple[Any, Any]:
  """(trainer.Setup, TrainState at ``step``; default ``config.eval.checkpoint_step``, else the latest);
  with ``num_classes`` the dataset is not opened (``trainer.setup``). Raises ``MissingDataError`` when
  the run has no checkpoint, or none of ``step``."""
  from vidrec import recovery, trainer  # pylint: disable=g-import-not-at-top
  s = trainer.setup(config, num_classes)
  mngr = trainer.checkpoint_manager(workdir, config)
  if step is None and config.eval.get("checkpoint_step", -1) >= 0:
    step = config.eval.checkpoint_step
  try:
    ts, _ = trainer.restore(mngr, s.abstract_state, recovery.check_step(mngr, step, workdir))
  except UserError:             # no checkpoint (of that step)
    raise
  except ValueError as e:       # orbax: a stored shape or tree that is not this config's model
    raise UserError(f"The checkpoint in {workdir} does not fit the model this config builds "
                    f"({str(e).strip().splitlines()[0][:200]}): use the config it was trained with "
                    f"(WORKDIR/config.json), without overrides of model keys.") from e
  finally:
    mngr.close()
  return s, ts


def load(config: ml_collections.ConfigDict, workdir: str,
         step: int | None = None) -> tuple[Any, Any, Callable]:
  """:func:`restore` and a jitted ``apply(variables, uint8 views)`` in eval mode."""
  import jax  # pylint: disable=g-import-not-at-top
  from vidrec.data import modalities  # pylint: disable=g-import-not-at-top
  s, ts = restore(config, workdir, step)
  apply = jax.jit(lambda var, x: s.model.apply(var, modalities.model_input(x, config.input), train=False))
  return s, ts, apply


def first_test_views(s: Any, config: ml_collections.ConfigDict, videos: Sequence[int],
                     split: str | None = None) -> tuple[dict[int, tuple[np.ndarray, int]], list[str]]:
  """({video index: (its first evaluation view, label)} for each of ``videos`` of ``split`` (default the
  eval split), the class names).

  Raises ValueError naming the videos the split does not have."""
  from vidrec.data import pipeline  # pylint: disable=g-import-not-at-top
  split = split or config.dataset.eval_split
  source = pipeline.VideoSource(s.builder, split)
  ds = pipeline.eval_dataset(source, config.input, global_batch=config.eval.batch_size)
  wanted, found = set(videos), {}
  for batch in ds.as_numpy_iterator():
    for i, v in enumerate(batch["video_index"]):
      if int(v) in wanted and int(v) not in found:
        found[int(v)] = (batch["video"][i], int(batch["label"][i]))
    if len(found) == len(wanted):
      break
  if missing := wanted - set(found):
    raise ValueError(f"--videos {sorted(missing)} not in the {split} split "
                     f"({len(source)} videos)")
  return found, source.class_names
