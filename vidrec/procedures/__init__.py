"""Training procedures by name (``config.procedure``): how a config becomes a trained workdir.

``single`` (the default, and every config without the key): one ``trainer.train`` run. ``u2s_stages``:
U2S's three stages with the CSM pass between the first two (``vidrec.procedures.u2s``).
``fstcn_stages``: FstCN's auxiliary-network fine-tuning, then global training (``vidrec.procedures.fstcn``).
Paper-specific schedules live in this package, one module each. Every procedure starts from the
weights ``vidrec.pretrained.resolve`` allows (refusing a real-data recipe without its pretrained weights).
``eval_config`` is the config that evaluates the workdir's final checkpoint (for staged runs, the last
stage's); ``stages`` lists (what, workdir, trainer config) per stage (``train.py --dry_run``).
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import ml_collections

from vidrec import pretrained, trainer
from vidrec.procedures import fstcn, u2s
from vidrec.registry import Registry

Stages = list[tuple[str, str, "ml_collections.ConfigDict | None"]]


class Procedure(NamedTuple):
  train: Callable[[ml_collections.ConfigDict, str, bool], object]
  eval_config: Callable[[ml_collections.ConfigDict, str], ml_collections.ConfigDict]
  stages: Callable[[ml_collections.ConfigDict, str], Stages]


PROCEDURES: Registry[Procedure] = Registry("procedure")
PROCEDURES.add("single", Procedure(trainer.train, lambda config, workdir: config,
                                   lambda config, workdir: [("single run", workdir, config)]))
PROCEDURES.add("u2s_stages", Procedure(u2s.train, u2s.eval_config, u2s.stages))
PROCEDURES.add("fstcn_stages", Procedure(fstcn.train, fstcn.eval_config, fstcn.stages))


def get(config: ml_collections.ConfigDict) -> Procedure:
  return PROCEDURES.get(config.get("procedure", "single"))


def train(config: ml_collections.ConfigDict, workdir: str, allow_config_change: bool = False) -> None:
  """Trains (or resumes) ``workdir`` with the config's procedure, from the weights the config allows."""
  get(config).train(pretrained.resolve(config), workdir, allow_config_change)


def eval_config(config: ml_collections.ConfigDict, workdir: str) -> ml_collections.ConfigDict:
  """The config whose model and keys match the final checkpoint of ``workdir``."""
  return get(config).eval_config(config, workdir)
