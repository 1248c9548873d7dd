"""JointLSTM figures (paper 001): attention maps over the frames (Fig. 6) and LSTM-loss curves with and
without the attention regulariser (Fig. 5).

  python -m vidrec.tools.visualize_joint_lstm --config configs/joint_lstm_ucf101.py:synthetic \
      --workdir W --out DIR [--videos 0,5,9] [--curves W_no_reg:"lambda=0" ...]

``DIR/attention.png``: per test video two rows, the first clip's frames with the attention att_t (J6)
upsampled bilinearly and overlaid (brighter = more attention), then the raw frames; the title gives the
true and predicted class. ``DIR/lstm_loss.png``: ``loss/lstm`` of ``metrics.jsonl`` against the step
for ``--workdir`` (labelled by its config's lambda) and every ``--curves WORKDIR:LABEL``.
"""
from __future__ import annotations

import json
import os
from typing import Sequence

import numpy as np

from vidrec.tools import trained


def upsample(att: np.ndarray, size: tuple[int, int]) -> np.ndarray:
  """att [T, K2] (a square grid) -> [T, H, W] bilinear, normalised to [0, 1] per clip."""
  import jax  # pylint: disable=g-import-not-at-top
  side = int(round(att.shape[-1] ** 0.5))
  grid = att.reshape(att.shape[0], side, side)
  up = np.asarray(jax.image.resize(grid, (att.shape[0],) + tuple(size), "bilinear"))
  return (up - up.min()) / (up.max() - up.min() + 1e-12)


def render_attention(clips: Sequence[np.ndarray], atts: Sequence[np.ndarray], titles: Sequence[str],
                     path: str, max_frames: int = 8) -> None:
  """clips: uint8-range frames [T, H, W, 3]; atts: [T, K2]; one pair of rows per clip."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  cols = min(max_frames, clips[0].shape[0])
  fig = plt.figure(figsize=(1.3 * cols, 3.0 * len(clips)), layout="constrained")
  for sub, clip, att, title in zip(np.atleast_1d(fig.subfigures(len(clips), 1)), clips, atts, titles):
    sub.suptitle(title, fontsize=8, x=0.01, ha="left")
    axes = sub.subplots(2, cols, squeeze=False)
    steps = np.linspace(0, clip.shape[0] - 1, cols).round().astype(int)
    heat = upsample(att, clip.shape[1:3])
    for j, t in enumerate(steps):
      frame = np.clip(clip[t] / 255.0, 0, 1)
      axes[0, j].imshow(frame * (0.15 + 0.85 * heat[t][..., None]))
      axes[1, j].imshow(frame)
      axes[0, j].set_title(f"t={t}", fontsize=7)
      for a in axes[:, j]:
        a.axis("off")
  fig.savefig(path, dpi=110)
  plt.close(fig)


def read_curve(workdir: str, key: str = "loss/lstm") -> tuple[np.ndarray, np.ndarray]:
  """(steps, values) of ``key`` in ``workdir/metrics.jsonl``."""
  rows = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
  rows = [r for r in rows if key in r]
  if not rows:
    raise ValueError(f"{workdir}/metrics.jsonl has no {key!r}: was it trained with loss.name=joint_lstm?")
  return np.array([r["step"] for r in rows]), np.array([r[key] for r in rows])


def render_curves(curves: Sequence[tuple[str, str]], path: str) -> None:
  """curves: (workdir, label) pairs -> the LSTM loss against the step (Fig. 5)."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, ax = plt.subplots(figsize=(5, 3.2))
  for workdir, label in curves:
    ax.plot(*read_curve(workdir), label=label)
  ax.set_xlabel("step")
  ax.set_ylabel("LSTM loss (cross-entropy)")
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def attention_of_run(config, workdir: str, videos: Sequence[int]) -> tuple[list, list, list]:
  """First test clip of each video in ``videos``: (frames 0-255, attention [T, K2], title)."""
  from vidrec import trainer  # pylint: disable=g-import-not-at-top
  s, ts, apply = trained.load(config, workdir)
  found, class_names = trained.first_test_views(s, config, videos)
  clips, atts, titles = [], [], []
  for v in videos:
    video, label = found[v]
    out = apply(trainer.variables_of(ts), video[None])
    clips.append(video.astype(np.float32))
    atts.append(np.asarray(out["attention"][0]))
    pred = int(np.argmax(out["logits"][0]))
    titles.append(f"video {v}: {class_names[label]} -> predicted {class_names[pred]}")
  return clips, atts, titles


def main(argv: Sequence[str]) -> None:
  del argv
  from absl import flags  # pylint: disable=g-import-not-at-top
  f = flags.FLAGS
  os.makedirs(f.out, exist_ok=True)
  config = _CONFIG.value
  clips, atts, titles = attention_of_run(config, f.workdir, [int(v) for v in f.videos.split(",")])
  render_attention(clips, atts, titles, os.path.join(f.out, "attention.png"))
  curves = [(f.workdir, f"lambda={config.loss.get('lambda_att', 1000.0):g}")]
  curves += [tuple(c.split(":", 1)) for c in f.curves]
  render_curves(curves, os.path.join(f.out, "lstm_loss.png"))
  print(f"wrote {f.out}/attention.png and {f.out}/lstm_loss.png")


if __name__ == "__main__":
  from absl import app, flags  # pylint: disable=g-import-not-at-top
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top
  _CONFIG = config_flags.DEFINE_config_file("config", None, "Config of the trained run.", lock_config=True)
  flags.DEFINE_string("workdir", None, "Workdir of the trained run.")
  flags.DEFINE_string("out", None, "Output folder.")
  flags.DEFINE_string("videos", "0,1,2,3", "Test video indices.")
  flags.DEFINE_multi_string("curves", [], "More LSTM-loss curves: WORKDIR:LABEL.")
  flags.mark_flags_as_required(["config", "workdir", "out"])
  app.run(main)
