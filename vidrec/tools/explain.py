"""``predict.py --explain DIR``: per predicted file, the figure its model's paper draws, on the file's first
test view, drawn by the ``vidrec.tools.visualize_*`` plotting:

- ``sgn``: the alpha maps of every SGB over the frames (paper 000, Fig. 8; ``visualize_sgn``);
- ``joint_lstm``: the soft attention over the frames (paper 001, Fig. 4; ``visualize_joint_lstm``);
- ``atw``: the attention weights of the snippets, the most and least attended ones (paper 002, Fig. 3;
  ``visualize_atw``);
- ``u2s``: the mask network's mask over the segments (paper 003, Fig. 5; ``u2s_plots``).

Models by name (``EXPLAINERS``); a model without a figure is refused before anything is decoded.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Iterator, Mapping, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from vidrec.data import modalities
from vidrec.errors import UserError
from vidrec.registry import Registry

# (first view uint8 [T, H, W, C], the model's outputs for it (batch of one), title, png path, config) -> path
Explainer = Callable[[np.ndarray, Mapping[str, Any], str, str, ml_collections.ConfigDict], str]
EXPLAINERS: Registry[Explainer] = Registry("model.name (for --explain)")


@EXPLAINERS.register("sgn")
def _sgn(view, outputs, title, path, config) -> str:
  from vidrec.tools import visualize_sgn  # pylint: disable=g-import-not-at-top
  alphas = visualize_sgn.alphas_from_outputs(outputs)
  if not alphas:
    raise UserError("--explain: this SGN has no semantic guided modules (model.sgm_blocks is empty), so "
                    "there are no alpha maps to draw.")
  return visualize_sgn.render_alpha_grid(view, alphas, path, title=title)


@EXPLAINERS.register("joint_lstm")
def _joint_lstm(view, outputs, title, path, config) -> str:
  from vidrec.tools import visualize_joint_lstm  # pylint: disable=g-import-not-at-top
  visualize_joint_lstm.render_attention([view.astype(np.float32)], [np.asarray(outputs["attention"][0])],
                                        [title], path)
  return path


@EXPLAINERS.register("atw")
def _atw(view, outputs, title, path, config) -> str:
  from vidrec.tools import visualize_atw  # pylint: disable=g-import-not-at-top
  images = visualize_atw.snippet_images(view, config.input.get("modality", "rgb"))
  return visualize_atw.render_attention([images], [np.asarray(outputs["attention"][0])], [title], path)


@EXPLAINERS.register("u2s")
def _u2s(view, outputs, title, path, config) -> str:
  from vidrec.tools import u2s_plots  # pylint: disable=g-import-not-at-top
  if "mask" not in outputs:
    raise UserError("--explain: this U2S variant has no mask network output ('mask').")
  return u2s_plots.plot_pair_masks([u2s_plots.MaskRow(title, view, np.asarray(outputs["mask"][0]))], path)


def check(config: ml_collections.ConfigDict) -> None:
  """Refuses ``--explain`` for a model without a figure, naming the ones that have one."""
  if config.model.name not in EXPLAINERS:
    raise UserError(f"--explain: model {config.model.name!r} has no explanation figure; the models with one "
                    f"are {', '.join(EXPLAINERS.names())}. Leave --explain out.")


def write(p, results: Sequence, out_dir: str) -> Iterator[str]:
  """One PNG per predicted file (``p``: a ``vidrec.tools.predict.Predictor``): ``<k>_<file name>.png``, k its
  position among ``results`` (files of one name in several folders stay apart)."""
  os.makedirs(out_dir, exist_ok=True)
  explainer = EXPLAINERS.get(p.config.model.name)
  apply = jax.jit(lambda v, x: p.model.apply(v, modalities.model_input(x, p.config.input), train=False,
                                             labels=jnp.zeros((1,), jnp.int32)))
  for k, r in enumerate(results):
    outputs = apply(p.variables, r.first_view[None])
    scores = r.scores[p.heads[0]]
    title = f"{os.path.basename(r.file)}: {p.class_names[int(np.argmax(scores))]} ({scores.max():.3f})"
    name = os.path.splitext(os.path.basename(r.file))[0]
    yield explainer(r.first_view, outputs, title, os.path.join(out_dir, f"{k:04d}_{name}.png"), p.config)
