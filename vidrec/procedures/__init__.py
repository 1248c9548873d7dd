"""Training procedures by name (``config.procedure``): how a config becomes a trained workdir.

``single`` (the default, and every config without the key): one ``trainer.train`` run. ``u2s_stages``:
U2S's three stages with the CSM pass between the first two (``vidrec.procedures.u2s``). Paper-specific
schedules live in this package, one module each. ``eval_config`` is the config that evaluates the
workdir's final checkpoint (for staged runs, the last stage's).
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import ml_collections

from vidrec import trainer
from vidrec.procedures import u2s
from vidrec.registry import Registry


class Procedure(NamedTuple):
  train: Callable[[ml_collections.ConfigDict, str, bool], object]
  eval_config: Callable[[ml_collections.ConfigDict, str], ml_collections.ConfigDict]


PROCEDURES: Registry[Procedure] = Registry("procedure")
PROCEDURES.add("single", Procedure(trainer.train, lambda config, workdir: config))
PROCEDURES.add("u2s_stages", Procedure(u2s.train, u2s.eval_config))


def _get(config: ml_collections.ConfigDict) -> Procedure:
  return PROCEDURES.get(config.get("procedure", "single"))


def train(config: ml_collections.ConfigDict, workdir: str, allow_config_change: bool = False) -> None:
  """Trains (or resumes) ``workdir`` with the config's procedure."""
  _get(config).train(config, workdir, allow_config_change)


def eval_config(config: ml_collections.ConfigDict, workdir: str) -> ml_collections.ConfigDict:
  """The config whose model and keys match the final checkpoint of ``workdir``."""
  return _get(config).eval_config(config, workdir)
