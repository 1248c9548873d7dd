"""FstCN's training stages (paper 004, Sec. 2.3), as the procedure ``fstcn_stages``.

  python train.py --config configs/fstcn_ucf101.py --workdir W        # config.procedure = "fstcn_stages"

"In practice, we first use ImageNet to pre-train this auxiliary network, and use randomly sampled
training video frames to fine-tune it [...]. We follow the advice in [11] by only fine-tuning the last
three layers of the auxiliary network as well. Finally the whole FstCN network is globally trained via
back-propagation, using sampled pairs of video clips as inputs."

0. ImageNet pre-training: the converted auxiliary network, ``config.init_from`` (``vggm_imagenet``,
   docs/pretrained.md).
1. ``W/aux``: the auxiliary network alone (``model.paths=scl``: lower SCLs, conv5, fc6, fc7 and its
   classifier, on one random frame of each training clip) for ``stages.steps[0]`` steps, everything but
   its last three layers frozen (``stages.frozen``: the lower SCLs and conv5); from scratch
   (``from_scratch``, or a synthetic setting without ``init_from``) nothing is frozen, as there are no
   pretrained layers to keep.
2. ``W``: the whole network (both paths, nothing frozen) for ``stages.steps[1]`` steps, initialised from
   the ``W/aux`` run (the TCL path and the fusion layers start fresh). ``eval_config`` evaluates it.

Each stage is an ordinary trainer run in its own workdir: re-running the command resumes the stage that
was interrupted and skips the finished one.
"""
from __future__ import annotations

import ml_collections

from vidrec import config as config_lib
from vidrec import fs, trainer
from vidrec.errors import UserError

AUX_DIR = "aux"


def check(config: ml_collections.ConfigDict) -> None:
  """Errors, before anything trains, for configs the staged schedule cannot run."""
  if config.model.name != "fstcn":
    raise UserError(f"procedure 'fstcn_stages' trains FstCN models, not {config.model.name!r}.")
  if config.model.get("paths", "both") != "both":
    raise UserError("procedure 'fstcn_stages' ends with both paths; for Table 2's path-only rows use "
                    "--config.procedure=single.")
  steps = tuple(config.stages.steps)
  if len(steps) != 2 or min(steps) <= 0:
    raise UserError(f"stages.steps must be two positive step counts (auxiliary fine-tuning, global), got {steps}.")


def stage_config(config: ml_collections.ConfigDict, stage: int, workdir: str) -> ml_collections.ConfigDict:
  """The trainer config of ``stage`` (1: auxiliary network, 2: global)."""
  st = config.stages
  if stage == 1:
    return config_lib.with_overrides(config, {
        "model.paths": "scl", "num_train_steps": st.steps[0], "optimizer.frozen": st.frozen if config.init_from else "",
        "loss.aux_weight": 0.0, "loss.tcl_weight": 0.0})
  return config_lib.with_overrides(config, {
      "num_train_steps": st.steps[1], "optimizer.frozen": "", "init_from": str(fs.path(workdir) / AUX_DIR),
      "init_skip": "", "init_prefix": "", "init_adapt": ""})


def stages(config: ml_collections.ConfigDict, workdir: str) -> list[tuple[str, str, ml_collections.ConfigDict]]:
  """(what, workdir, trainer config) of each stage, for ``train.py --dry_run``."""
  return [("1: auxiliary network, last three layers", str(fs.path(workdir) / AUX_DIR),
           stage_config(config, 1, workdir)),
          ("2: whole network", str(fs.path(workdir)), stage_config(config, 2, workdir))]


def eval_config(config: ml_collections.ConfigDict, workdir: str) -> ml_collections.ConfigDict:
  """The config of the global stage, which the workdir's own checkpoints hold."""
  return stage_config(config, 2, workdir)


def train(config: ml_collections.ConfigDict, workdir: str, allow_config_change: bool = False) -> None:
  """Runs (or resumes) the two stages."""
  check(config)
  trainer.train(stage_config(config, 1, workdir), str(fs.path(workdir) / AUX_DIR), allow_config_change)
  trainer.train(stage_config(config, 2, workdir), workdir, allow_config_change)
