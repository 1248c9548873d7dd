"""Run a model exported by ``python -m vidrec.tools.export`` with jax and numpy alone (no vidrec, flax or
TensorFlow): copy this file anywhere.

  python export_loader.py EXPORT_DIR VIEWS.npy      # views uint8 [V, T, H, W, C], as preprocess.json says

prints the top-5 classes (aggregated output) or each view's top class (``--per_view`` exports).
"""
import json
import os
import sys

import jax
import numpy as np


def load(export_dir: str):
  """(the deserialised ``jax.export.Exported``, class names, preprocess.json as a dict)."""
  with open(os.path.join(export_dir, "model.jaxexport"), "rb") as f:
    exported = jax.export.deserialize(bytearray(f.read()))
  with open(os.path.join(export_dir, "classes.json")) as f:
    classes = json.load(f)
  with open(os.path.join(export_dir, "preprocess.json")) as f:
    preprocess = json.load(f)
  return exported, classes, preprocess


def probabilities(exported, views: np.ndarray) -> np.ndarray:
  """uint8 views [V, T, H, W, C] -> float32 [C] (or [V, C] for a per-view export)."""
  return np.asarray(exported.call(np.asarray(views, np.uint8)))


def main(export_dir: str, views_path: str) -> None:
  exported, classes, preprocess = load(export_dir)
  probs = probabilities(exported, np.load(views_path))
  for row in (probs[None] if probs.ndim == 1 else probs):
    top = np.argsort(-row, kind="stable")[:5]
    print("  ".join(f"{classes[c]} {row[c]:.4f}" for c in top))
  print(f"({preprocess['output']}; model {preprocess['model']}, step {preprocess['checkpoint_step']})")


if __name__ == "__main__":
  main(*sys.argv[1:3])
