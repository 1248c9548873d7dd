"""Export a trained run's inference function, to run without vidrec (``docs/export.md``):

  python -m vidrec.tools.export --workdir W --out DIR [--step N] [--head logits] [--per_view]
      [--platforms cpu,cuda] [--example VIDEO] [--saved_model]

``DIR/model.jaxexport``: ``jax.export``'s serialised StableHLO of ``f(views) -> probabilities``, views
uint8 [V, T, H, W, C] (0-255, as ``predict.py`` builds them; the normalisation is inside), V symbolic,
the weights inside. It returns float32 [C], the V views of one video aggregated by the run's
``eval.aggregation`` (the rules of ``AGGREGATE``), or [V, C] softmax per view with ``--per_view``
(the only choice for a rule not in ``AGGREGATE``). ``DIR/classes.json``: the class names;
``DIR/preprocess.json``: what the views are (frames, crop, short side, sampler, crops, flips) and what
the output is. ``--example VIDEO`` also writes that file's views (``example_views.npy``) and their
probabilities (``example_probabilities.npy``); ``vidrec/tools/export_loader.py`` runs the export with jax
and numpy alone. ``--saved_model`` adds a TF SavedModel (``DIR/saved_model``, jax2tf, for TF Serving).
"""
from __future__ import annotations

import json
import os
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from vidrec.data import modalities
from vidrec.errors import UserError
from vidrec.models import layers
from vidrec.registry import Registry

# The aggregation rules of vidrec.aggregations in jax.numpy, for inside the exported function (logits
# [V, C] -> [C]); tests/test_export.py checks each against its numpy rule.
AGGREGATE: Registry[Callable[[jax.Array], jax.Array]] = Registry("eval.aggregation (inside an export)")
AGGREGATE.add("mean_softmax", lambda logits: jax.nn.softmax(logits).mean(0))
AGGREGATE.add("mean_logits", lambda logits: logits.mean(0))
AGGREGATE.add("max", lambda logits: jax.nn.softmax(logits).max(0))
AGGREGATE.add("majority_vote", lambda logits: (jax.nn.one_hot(logits.argmax(-1), logits.shape[-1]).sum(0)
                                               + jax.nn.softmax(logits).mean(0)))


def inference_fn(p, head: str, per_view: bool) -> Callable[[jax.Array], jax.Array]:
  """``views uint8 [V, T, H, W, C] -> float32 [C]`` (or [V, C]) of a ``vidrec.tools.predict.Predictor``."""
  rule = p.config.eval.aggregation
  if not per_view and rule not in AGGREGATE:
    raise UserError(f"eval.aggregation={rule!r} cannot go inside the exported function (it can: "
                    f"{', '.join(AGGREGATE.names())}): pass --per_view and aggregate the [V, C] output "
                    f"as vidrec.aggregations does.")

  def f(views: jax.Array) -> jax.Array:
    out = p.model.apply(p.variables, modalities.model_input(views, p.config.input), train=False,
                        labels=jnp.zeros(views.shape[:1], jnp.int32))
    logits = out[head].astype(jnp.float32)
    return jax.nn.softmax(logits) if per_view else AGGREGATE.get(rule)(logits)
  return f


def preprocess_record(p, head: str, per_view: bool, view_shape: Sequence[int]) -> dict:
  """``preprocess.json``: how ``predict.py`` makes the views the function takes, and what it returns."""
  from vidrec import evaluate  # pylint: disable=g-import-not-at-top
  cfg = p.config.input
  return {
      "input": "uint8 views [V, T, H, W, C], 0-255 (normalised inside), RGB for rgb models",
      "frames_per_view": int(view_shape[0]), "crop": int(view_shape[1]), "channels": int(view_shape[3]),
      "modality": cfg.get("modality", "rgb"), "decode_short_side": p.short_side,
      "resize": list(cfg.resize), "sampler": cfg.sampler,
      "sampler_keys": {k: cfg.get(k) for k in ("clip_len", "stride", "num_test_clips", "num_segments",
                                                "frames_per_segment", "num_test_segments", "test_clip_stride",
                                                "diff_offset", "short_video") if k in cfg},
      "test_spatial": cfg.test_spatial, "test_flip": bool(cfg.test_flip),
      "crops_per_clip": evaluate.num_test_crops(cfg),
      "view_order": "clip-major: view = clip * crops_per_clip + crop",
      "aggregation": p.config.eval.aggregation, "aggregated_inside": not per_view,
      "output": "float32 [V, C] softmax per view" if per_view else
                f"float32 [C]: {p.config.eval.aggregation} over the V views",
      "head": head, "checkpoint_step": p.step, "model": p.config.model.name,
      "mean": list(cfg.mean), "std": list(cfg.std)}


def export(config, workdir: str, out: str, *, step: int | None = None, head: str | None = None,
           per_view: bool = False, platforms: Sequence[str] | None = None, example: str | None = None,
           saved_model: bool = False) -> dict:
  """Writes the export into ``out``; returns ``preprocess.json``'s content."""
  from vidrec import trainer  # pylint: disable=g-import-not-at-top
  from vidrec.tools import predict  # pylint: disable=g-import-not-at-top
  p = predict.load(config, workdir, step)
  head = head or p.heads[0]
  if head not in p.heads:
    raise UserError(f"--head {head!r} is not among the run's scored heads {list(p.heads)} "
                    f"(set --config.eval.heads to score it).")
  view_shape = trainer.input_shape(p.config, 1, test=True)[1:]
  f = inference_fn(p, head, per_view)
  spec = jax.ShapeDtypeStruct(jax.export.symbolic_shape("v") + tuple(view_shape), jnp.uint8)
  with layers.using_conv_impl("native"):     # XLA's own convolution: no custom call, any platform
    exported = jax.export.export(jax.jit(f), platforms=platforms)(spec)
  os.makedirs(out, exist_ok=True)
  with open(os.path.join(out, "model.jaxexport"), "wb") as fh:
    fh.write(exported.serialize())
  record = preprocess_record(p, head, per_view, view_shape)
  record["platforms"] = list(exported.platforms)
  with open(os.path.join(out, "classes.json"), "w") as fh:
    json.dump(p.class_names, fh, indent=1)
  with open(os.path.join(out, "preprocess.json"), "w") as fh:
    json.dump(record, fh, indent=1)
  if example:
    views = predict.file_views(example, p)
    np.save(os.path.join(out, "example_views.npy"), views)
    np.save(os.path.join(out, "example_probabilities.npy"), np.asarray(exported.call(views)))
  if saved_model:
    with layers.using_conv_impl("native"):
      write_saved_model(f, view_shape, os.path.join(out, "saved_model"))
  return record


def write_saved_model(f: Callable, view_shape: Sequence[int], path: str) -> None:
  """A TF SavedModel of ``f`` through ``jax2tf.convert`` (native serialisation: the same StableHLO inside
  one ``XlaCallModule`` op), signature ``serving_default(views uint8 [None, ...])``."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from jax.experimental import jax2tf  # pylint: disable=g-import-not-at-top
  module = tf.Module()
  module.f = tf.function(jax2tf.convert(f, polymorphic_shapes=["(v, ...)"], with_gradient=False),
                         input_signature=[tf.TensorSpec([None, *view_shape], tf.uint8, name="views")],
                         autograph=False)
  tf.saved_model.save(module, path, signatures={"serving_default": module.f})


def main(argv) -> None:
  del argv
  from absl import flags  # pylint: disable=g-import-not-at-top
  from vidrec.tools import predict  # pylint: disable=g-import-not-at-top
  f = flags.FLAGS
  config = predict.run_config(f.workdir)
  record = export(config, f.workdir, f.out, step=f.step, head=f.head, per_view=f.per_view,
                  platforms=f.platforms or None, example=f.example, saved_model=f.saved_model)
  print(f"wrote {f.out}/model.jaxexport, classes.json, preprocess.json"
        f"{', example_views.npy, example_probabilities.npy' if f.example else ''}"
        f"{', saved_model/' if f.saved_model else ''}: {record['output']}, "
        f"views uint8 [V, {record['frames_per_view']}, {record['crop']}, {record['crop']}, "
        f"{record['channels']}], "
        f"platforms {record['platforms']}")


if __name__ == "__main__":
  from absl import flags  # pylint: disable=g-import-not-at-top

  from vidrec import cli  # pylint: disable=g-import-not-at-top
  flags.DEFINE_string("workdir", None, "The trained run's workdir.")
  flags.DEFINE_string("out", None, "Folder to write the export into.")
  flags.DEFINE_integer("step", None, "Checkpoint step (default: latest).")
  flags.DEFINE_string("head", None, "Output head to export (default: the first of eval.heads).")
  flags.DEFINE_bool("per_view", False, "Return softmax per view [V, C] instead of aggregating the views.")
  flags.DEFINE_list("platforms", [], "Platforms to lower for, e.g. cpu,cuda (default: this machine's).")
  flags.DEFINE_string("example", None, "A video file whose views and probabilities to save beside it.")
  flags.DEFINE_bool("saved_model", False, "Also write a TF SavedModel (jax2tf) for TF Serving.")
  flags.mark_flags_as_required(["workdir", "out"])
  cli.run(main)
