"""Preview the ``synthetic_actions`` classes: a PNG frame grid and an animated GIF per class.

    python -m vidrec.tools.preview --out /tmp/preview [--config hard] [--per_class 3] [--seed 0]

Renders with ``synthetic.render_class`` directly (no dataset build), as builder config ``--config``
does (``default``, ``hard``, ...: its scenes, resolution and video lengths unless
``--resolution`` / ``--min_frames`` / ``--max_frames`` are given). Per class ``c`` it writes
``class_<c>.png`` (a contact sheet: rows = videos, columns = evenly spaced frames, titled with the
class name) and ``class_<c>.gif`` (the videos side by side, looping).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import zlib
from typing import Sequence

import numpy as np

from vidrec import cli
from vidrec.data import synthetic
from vidrec.errors import UserError
from vidrec.tools import plotting


def builder_config(name: str, **overrides) -> synthetic.SyntheticActionsConfig:
  """The ``synthetic_actions`` builder config ``name`` with the non-None ``overrides`` applied."""
  configs = {c.name: c for c in synthetic.SyntheticActions.BUILDER_CONFIGS}
  if name not in configs:
    raise UserError(f"--config {name!r}: use one of {sorted(configs)}")
  return dataclasses.replace(configs[name], **{k: v for k, v in overrides.items() if v is not None})


def sample_videos(class_id: int, per_class: int, cfg: synthetic.SyntheticActionsConfig,
                  seed: int) -> list[np.ndarray]:
  """``per_class`` videos of ``class_id`` as ``cfg`` renders them (deterministic for ``seed``)."""
  videos = []
  for i in range(per_class):
    rng = np.random.default_rng(np.random.SeedSequence(
        [seed, zlib.crc32(b"preview"), class_id, i]))
    num_frames = int(rng.integers(cfg.min_frames, cfg.max_frames + 1))
    videos.append(synthetic.render_class(cfg, class_id, rng, num_frames))
  return videos


def frame_indices(num_frames: int, num_columns: int) -> np.ndarray:
  """``num_columns`` evenly spaced frame indices, first and last included."""
  return np.round(np.linspace(0, num_frames - 1, num_columns)).astype(int)


def save_grid(videos: Sequence[np.ndarray], title: str, path: str, columns: int = 8) -> None:
  """PNG grid: one row per video, ``columns`` evenly spaced frames."""
  plt = plotting.pyplot()
  rows = len(videos)
  fig, axes = plt.subplots(rows, columns, figsize=(1.3 * columns, 1.3 * rows + 0.5),
                           squeeze=False)
  for r, video in enumerate(videos):
    for c, t in enumerate(frame_indices(len(video), columns)):
      ax = axes[r, c]
      ax.imshow(video[t], interpolation="nearest")
      ax.set_xticks([])
      ax.set_yticks([])
      ax.set_title(f"t={t}/{len(video) - 1}", fontsize=6, pad=2)
  fig.suptitle(title, fontsize=10)
  fig.tight_layout()
  plotting.save_figure(fig, path, dpi=100)


def save_gif(videos: Sequence[np.ndarray], path: str, scale: int = 3, fps: float = 12.0) -> None:
  """Animated GIF of the videos side by side (shorter ones hold their last frame)."""
  from PIL import Image

  length = max(len(v) for v in videos)
  gap = np.full((videos[0].shape[1], 2, 3), 255, np.uint8)
  frames = []
  for t in range(length):
    tiles = []
    for v in videos:
      tiles += [v[min(t, len(v) - 1)], gap]
    frame = np.concatenate(tiles[:-1], axis=1)
    frame = frame.repeat(scale, axis=0).repeat(scale, axis=1)
    frames.append(Image.fromarray(frame))
  frames[0].save(path, save_all=True, append_images=frames[1:],
                 duration=int(1000 / fps), loop=0)


@cli.returns_status
def main(argv: Sequence[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--out", required=True, help="output directory")
  parser.add_argument("--config", default="default",
                      help="synthetic_actions builder config (default, hard, ...)")
  parser.add_argument("--per_class", type=int, default=3, help="videos per class")
  parser.add_argument("--resolution", type=int, default=None, help="default: the config's")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--min_frames", type=int, default=None, help="default: the config's")
  parser.add_argument("--max_frames", type=int, default=None, help="default: the config's")
  parser.add_argument("--columns", type=int, default=8, help="frames per grid row")
  args = parser.parse_args(argv)
  cfg = builder_config(args.config, resolution=args.resolution, min_frames=args.min_frames,
                       max_frames=args.max_frames)
  os.makedirs(args.out, exist_ok=True)
  for c, name in enumerate(synthetic.class_names(cfg)):
    videos = sample_videos(c, args.per_class, cfg, args.seed)
    save_grid(videos, f"{c}: {name}", os.path.join(args.out, f"class_{c:02d}.png"),
              args.columns)
    save_gif(videos, os.path.join(args.out, f"class_{c:02d}.gif"))
    print(f"class {c:2d} {name}: wrote class_{c:02d}.png/.gif")


if __name__ == "__main__":
  sys.exit(main())
