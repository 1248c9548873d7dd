"""Does JointLSTM's attention (J6) fall on the actor? A number for the ``synthetic_actions`` runs.

  python -m vidrec.tools.joint_lstm_attention --config configs/joint_lstm_ucf101.py:synthetic --workdir W

For every test clip and step t, the attention mass on the actor's box, ``sum_i att_t,i * overlap_i``
(``overlap_i`` the fraction of grid cell i inside the box), against what a uniform attention (K^-2 per
cell) puts there, ``sum_i overlap_i / K2`` (the box's share of the frame); likewise for each branch's
normalised convnet energy (J10's map). The box is the renderer's support of the actor (``1.25 r + 2``
pixels around its centre, pieces included: nothing of the actor lies outside it), re-derived from the
video's seed; steps where the actor is mostly transparent (alpha < 0.5: appear/disappear) are skipped.
Prints the means over all clips and steps, their ratio and the share of steps whose most-attended
cell touches the box (against the share of cells that do).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from vidrec.data import synthetic
from vidrec.tools import trained


def actor_boxes(cfg: synthetic.SyntheticActionsConfig, split: str, index: int) -> np.ndarray:
  """[T, 5] per frame of example ``index``: (x0, y0, x1, y1) in [0, 1] frame units, alpha."""
  rng = synthetic.example_rng(cfg.seed, split, index)
  label = index % synthetic.NUM_CLASSES
  num_frames = int(rng.integers(cfg.min_frames, cfg.max_frames + 1))   # as generate_example draws it
  actor = synthetic.sample_scene(label, rng, cfg.resolution, num_frames).actor
  ext, res = synthetic._support(actor), cfg.resolution   # pylint: disable=protected-access
  cx, cy = actor.cx + res / 2, actor.cy + res / 2
  return np.stack([(cx - ext) / res, (cy - ext) / res, (cx + ext) / res, (cy + ext) / res, actor.alpha], -1)


def cell_overlap(boxes: np.ndarray, side: int) -> np.ndarray:
  """boxes [..., 4] (x0, y0, x1, y1 in frame units) -> [..., side**2]: the fraction of each cell of a
  ``side x side`` grid (row-major, as the model's K2 positions) inside the box."""
  edges = np.arange(side + 1) / side
  lo, hi = edges[:-1], edges[1:]
  ov = lambda a, b: np.clip(np.minimum(hi, b[..., None]) - np.maximum(lo, a[..., None]), 0, None) * side
  fx, fy = ov(boxes[..., 0], boxes[..., 2]), ov(boxes[..., 1], boxes[..., 3])   # [..., side]
  return (fy[..., :, None] * fx[..., None, :]).reshape(boxes.shape[:-1] + (side * side,))


def actor_mass(maps: np.ndarray, overlap: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                np.ndarray]:
  """maps, overlap [S, K2] -> per step (mass on the box, uniform share, argmax cell touches the box,
  share of cells touching it)."""
  mass = (maps * overlap).sum(-1)
  share = overlap.mean(-1)
  hit = np.take_along_axis(overlap, maps.argmax(-1)[:, None], -1)[:, 0] > 0
  return mass, share, hit, (overlap > 0).mean(-1)


def summarise(maps: np.ndarray, overlap: np.ndarray) -> dict[str, float]:
  mass, share, hit, touch = actor_mass(maps, overlap)
  return {"mass": float(mass.mean()), "uniform": float(share.mean()), "ratio": float(mass.mean() / share.mean()),
          "argmax_hit": float(hit.mean()), "argmax_chance": float(touch.mean())}


def collect(config, workdir: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """Runs the trained model on every test clip: {map name: (maps [S, K2], overlap [S, K2])}."""
  from vidrec import trainer  # pylint: disable=g-import-not-at-top
  from vidrec.data import pipeline  # pylint: disable=g-import-not-at-top
  s, ts, apply = trained.load(config, workdir)
  if not isinstance(s.builder.builder_config, synthetic.SyntheticActionsConfig):
    raise ValueError(f"{config.dataset.name} has no actor boxes: this measure needs synthetic_actions.")
  if config.input.crop != config.input.resize[0] or len(config.input.resize) != 2:
    raise ValueError("the boxes assume whole frames: set input.resize=(S, S) and input.crop=S.")
  source = pipeline.VideoSource(s.builder, config.dataset.eval_split)
  sampler = pipeline.make_sampler(config.input)
  boxes: dict[int, tuple[np.ndarray, np.ndarray]] = {}
  got: dict[str, list] = {}
  ds = pipeline.eval_dataset(source, config.input, global_batch=config.eval.batch_size)
  for batch in pipeline.padded_batches(ds, config.eval.batch_size):
    out = apply(trainer.variables_of(ts), batch["video"])
    names = ["attention"] + sorted(k for k in out if k.startswith("energy_"))
    for row in np.flatnonzero(batch["mask"]):
      v = int(batch["video_index"][row])
      if v not in boxes:
        ex = source.parse(source.read(v))
        gen_index = int(ex["video_id"].numpy().decode().rsplit("_", 1)[1])
        box = actor_boxes(s.builder.builder_config, config.dataset.eval_split, gen_index)
        boxes[v] = (box, sampler.test(len(box)))
      box, clips = boxes[v]
      frames = clips[int(batch["view_index"][row])]
      keep = box[frames, 4] >= 0.5
      side = int(round(out["attention"].shape[-1] ** 0.5))
      overlap = cell_overlap(box[frames, :4], side)[keep]
      for name in names:
        got.setdefault(name, []).append((np.asarray(out[name][row])[keep], overlap))
  return {k: (np.concatenate([m for m, _ in v]), np.concatenate([o for _, o in v])) for k, v in got.items()}


def main(argv: Sequence[str]) -> None:
  del argv
  for name, (maps, overlap) in collect(_CONFIG.value, flags.FLAGS.workdir).items():
    r = summarise(maps, overlap)
    print(f"{name}: mass on the actor box {r['mass']:.4f} vs uniform {r['uniform']:.4f} (x{r['ratio']:.2f}); "
          f"argmax cell touches the box {r['argmax_hit']:.3f} vs chance {r['argmax_chance']:.3f} "
          f"({len(maps)} steps)")


if __name__ == "__main__":
  from absl import app, flags  # pylint: disable=g-import-not-at-top
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top
  _CONFIG = config_flags.DEFINE_config_file("config", None, "Config of the trained run.", lock_config=True)
  flags.DEFINE_string("workdir", None, "Workdir of the trained run.")
  flags.mark_flags_as_required(["config", "workdir"])
  app.run(main)
