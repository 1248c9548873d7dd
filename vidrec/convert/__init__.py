"""Pretrained weights: torchvision checkpoints -> vidrec modules and variables (docs/pretrained.md).

  python -m vidrec.convert torchvision --arch r3d_18 --checkpoint r3d_18-b3b3357e.pth --out pretrained/r3d_18

  module, variables = vidrec.convert.load_torchvision("r3d_18", "r3d_18-b3b3357e.pth")
  logits = module.apply(variables, video, train=False)["logits"]     # video [N, T, H, W, 3]

Checkpoints are read from files the user has (``.pth`` with torch, from the optional ``[torch]``
extra, or ``.safetensors`` with the ``safetensors`` numpy API, no torch); nothing is downloaded.
"""
from __future__ import annotations

import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from vidrec import fs, init_from
from vidrec.convert.torchvision_map import ARCHS, num_classes_of, tensor_map, to_torch, to_vidrec, with_copies

__all__ = ["ARCHS", "load_torchvision", "read_state_dict", "convert_torchvision", "to_torch", "to_vidrec"]


def read_state_dict(path: str) -> dict[str, np.ndarray]:
  """A torchvision state dict as float32 numpy arrays, from ``.safetensors`` or a torch pickle."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f"No checkpoint file {path!r}")
  if path.endswith(".safetensors"):
    from safetensors.numpy import load_file  # pylint: disable=g-import-not-at-top
    return {k.removeprefix("module."): v for k, v in load_file(path).items()}  # nn.DataParallel's prefix
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise ImportError(f"Reading {path!r} needs torch: pip install 'vidrec[torch]', or save the state dict "
                      f"as .safetensors (safetensors.torch.save_file) where torch is installed.") from None
  state = torch.load(path, map_location="cpu", weights_only=True)
  if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
    state = state["state_dict"]
  if not isinstance(state, dict):
    raise ValueError(f"{path!r} holds a {type(state).__name__}, not a state dict: save model.state_dict().")
  state = {k.removeprefix("module."): v for k, v in state.items()}  # nn.DataParallel's prefix
  return {k: v.detach().float().numpy() for k, v in state.items() if hasattr(v, "detach")}


def load_torchvision(arch: str, path: str, num_classes: int | None = None) -> tuple[nn.Module, dict]:
  """(module, variables) for torchvision's ``arch`` checkpoint at ``path`` (``ARCHS``).

  ``module.apply(variables, x, train=False)["logits"]`` on channels-last float32 ``x`` ([N, T, H, W, 3]
  for the video models, [N, H, W, 3] for vgg16 / resnet18 / resnet50) equals torchvision's
  ``model(x_channels_first)``. With ``num_classes`` other than the checkpoint's, the classifier is
  freshly initialised (``nn.Dense``'s default, seed 0) and everything else loaded."""
  state = read_state_dict(path)
  variables = to_vidrec(arch, state)
  spec = ARCHS.get(arch)
  if num_classes not in (None, num_classes_of(arch, state)):
    classifier = next(m.vidrec for m in spec.modules() if m.torch == spec.classifier)
    in_features = variables["params"][classifier]["kernel"].shape[0]
    head = nn.Dense(num_classes).init(jax.random.key(0), jnp.zeros((1, in_features)))["params"]
    variables["params"][classifier] = jax.tree.map(np.asarray, head)
  return spec.build(num_classes or num_classes_of(arch, state)), variables


def convert_torchvision(arch: str, path: str, out: str) -> dict:
  """Converts ``path`` into an ``init_from`` directory ``out`` (with the arch's ``copies`` made); returns
  the summary the CLI prints."""
  state = read_state_dict(path)
  variables = to_vidrec(arch, state)
  spec = ARCHS.get(arch)
  variables = with_copies(arch, variables)
  num_classes = num_classes_of(arch, state)
  module = type(spec.build(num_classes))
  init_from.save_variables(out, variables, {
      "arch": arch, "source": os.path.abspath(path), "num_classes": num_classes,
      "config_model": spec.config_model, "module": f"{module.__module__}.{module.__qualname__}",
      "copies": [list(c) for c in spec.copies]})
  count = lambda coll: sum(int(np.prod(v.shape)) for v in jax.tree.leaves(variables.get(coll, {})))  # noqa: E731
  return {"arch": arch, "num_classes": num_classes, "params": count("params"), "batch_stats": count("batch_stats"),
          "out": str(fs.path(out)), "mapped": {t: v for t, v, _, _ in tensor_map(arch)}}
