"""Model registry: ``MODELS.get(config.model.name)(config.model, num_classes)`` builds a Flax module.

Each paper model lives in its own module and registers a ``build(cfg, num_classes)`` function.
"""
from __future__ import annotations

import importlib
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections


from vidrec.errors import UserError
from vidrec.registry import Registry

MODELS: Registry[Callable[[ml_collections.ConfigDict, int], nn.Module]] = Registry("model.name")

# Modules that register models; importing them fills MODELS.
_MODEL_MODULES = ("resnet3d", "resnet2d", "sgn", "u2s", "fstcn", "atw", "joint_lstm")


def _import_all() -> None:
  for name in _MODEL_MODULES:
    try:
      importlib.import_module(f"vidrec.models.{name}")
    except ModuleNotFoundError as e:
      if e.name != f"vidrec.models.{name}":
        raise


def build_model(cfg: ml_collections.ConfigDict, num_classes: int) -> nn.Module:
  """Builds the model named ``cfg.name``."""
  _import_all()
  return MODELS.get(cfg.name)(cfg, num_classes)


def dtype_of(name: str) -> jnp.dtype:
  """'float32' / 'bfloat16' / 'float16' -> jnp dtype; 'auto' -> bfloat16 on GPU/TPU, float32 on CPU
  (the default compute dtype, ``config.model.dtype``); a clear error otherwise."""
  if name == "auto":
    name = "float32" if jax.default_backend() == "cpu" else "bfloat16"
  try:
    return {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}[name]
  except KeyError:
    raise UserError(f"Unknown dtype {name!r}: use 'auto', 'float32', 'bfloat16' or 'float16'.") from None
