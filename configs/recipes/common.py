"""Config pieces shared by several papers' configs: variant parsing and the CPU-sized dense-clip setting.

Imported by config files as ``from configs.recipes import common`` (the repository root is on
``sys.path`` under ``python train.py``, ``python -m vidrec.tools.<name>`` and pytest).
"""
from __future__ import annotations

from typing import Callable

import ml_collections

from vidrec import pretrained
from vidrec.errors import UserError


def parse_variant(arg: str, allowed: tuple[str, ...]) -> set[str]:
  """``"synthetic,fusion"`` -> {"synthetic", "fusion"}; unknown options are an error listing the known."""
  options = {a.strip() for a in arg.split(",") if a.strip()}
  if unknown := options - set(allowed):
    raise UserError(f"Unknown config variant(s) {sorted(unknown)}; combine any of {list(allowed)} "
                     f"with commas, e.g. ':{allowed[0]}'.")
  return options


def hard(c: ml_collections.ConfigDict) -> None:
  """``:hard``: a ``:synthetic`` setting moved to ``synthetic_actions/hard`` (24 classes, issue 16) for
  twice its steps (U2S: every stage doubled). At the synthetic step count most seeds leave the ln 24
  plateau too late to learn (ResNet3D 25.5 +- 10.1% at 1,200 steps, 3 seeds; docs/experiments.md,
  "Harder synthetic benchmark")."""
  c.dataset.name = "synthetic_actions/hard"
  if "stages" in c:
    c.stages.steps = tuple(2 * s for s in c.stages.steps)
  c.num_train_steps *= 2


def synthetic_variants(c: ml_collections.ConfigDict, options: set[str],
                       setting: Callable[[ml_collections.ConfigDict], None]) -> None:
  """``synthetic``: a recipe's CPU-sized ``setting``, from scratch; ``hard``: the same setting moved by
  :func:`hard`."""
  if options & {"synthetic", "hard"}:
    pretrained.clear(c)
    setting(c)
  if "hard" in options:
    hard(c)


def synthetic_clips(c: ml_collections.ConfigDict, steps: int = 1200) -> None:
  """The CPU-sized dense-clip setting of every ResNet3D-family ``:synthetic`` config: width 8,
  8-frame clips (stride 4; one random window per video visit) of 40x40 on ``synthetic_actions``, 3
  test clips, SGD lr 0.02 with cosine decay (lr 0.1 sat at chance for 500+ steps on some seeds;
  docs/experiments.md)."""
  c.model.update(width=8)
  c.dataset.update(name="synthetic_actions", train_split="train", eval_split="test")
  c.input.update(sampler="dense", clip_len=8, stride=4, num_test_clips=3, resize=(46,), crop=40,
                 scale_jitter=(40, 52))
  c.optimizer.update(lr=0.02, schedule="cosine", warmup_steps=100, weight_decay=1e-4)
  c.batch_size = 16
  c.num_train_steps = steps
  c.log_every_steps = 50
  c.checkpoint_every_steps = 500
  c.eval.aggregation = "mean_softmax"
