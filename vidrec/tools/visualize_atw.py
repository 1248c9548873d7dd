"""ATW's attention over the snippets of a video (paper 002, Fig. 3: the most and least attended snippets).

  python -m vidrec.tools.visualize_atw --config configs/atw_ucf101.py:flow,synthetic \
      --config.dataset.data_dir=/work/tfds_atw --workdir W --out DIR [--videos 0,5,9] [--k 4]

``DIR/atw_attention.png``: per test video (one view: the config's test snippets, 80, centre crop) a bar
plot of the attention weights w_i (Eq. 3) over the snippets in temporal order, the k most attended
snippets with their weights (green) and the k least attended ones (red); the title gives the true and
predicted class. RGB snippets show their frame; flow snippets the magnitude of their first flow field
(brighter = faster), since a stack of 2L channels has no RGB picture.
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from vidrec.tools import plotting, trained


def top_bottom(weights: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
  """Indices of the ``k`` largest weights (largest first) and of the ``k`` smallest among the rest
  (smallest first); ties keep temporal order; ``k`` is capped at half the snippets."""
  w = np.asarray(weights)
  k = max(1, min(k, len(w) // 2))
  top = np.argsort(-w, kind="stable")[:k]
  rest = [i for i in np.argsort(w, kind="stable") if i not in set(top.tolist())]
  return top, np.asarray(rest[:k])


def snippet_images(video: np.ndarray, modality: str) -> np.ndarray:
  """A view [T, H, W, C] as the pipeline ships it (0-255) -> displayable [T, H, W, 3] in [0, 1]: RGB
  scaled, flow (x, y interleaved, zero motion at 128) as the magnitude of the first field, min-max over
  the video."""
  video = np.asarray(video, np.float32)
  if modality == "rgb":
    return np.clip(video / 255.0, 0.0, 1.0)
  magnitude = np.hypot(video[..., 0] - 128.0, video[..., 1] - 128.0)
  return np.repeat(plotting.minmax(magnitude)[..., None], 3, axis=-1)


def render_attention(images: Sequence[np.ndarray], weights: Sequence[np.ndarray], titles: Sequence[str],
                     path: str, k: int = 4) -> str:
  """images: [T, H, W, 3] in [0, 1] per video; weights: [T] per video; three rows per video."""
  plt = plotting.pyplot()
  k = max(1, min(k, min(len(w) for w in weights) // 2))
  cols = max(2 * k, 4)
  fig = plt.figure(figsize=(1.3 * cols, 3.6 * len(images)))
  grid = fig.add_gridspec(3 * len(images), cols, height_ratios=[1.3, 1, 1] * len(images))
  for r, (imgs, w, title) in enumerate(zip(images, weights, titles)):
    w = np.asarray(w)
    top, bottom = top_bottom(w, k)
    bars = fig.add_subplot(grid[3 * r, :])
    colours = np.array(["0.6"] * len(w), dtype=object)
    colours[top], colours[bottom] = "tab:green", "tab:red"
    bars.bar(np.arange(len(w)), w, color=list(colours), width=1.0)
    bars.axhline(1.0 / len(w), color="k", lw=0.6, ls="--")     # uniform weights (average consensus)
    bars.set_xlim(-0.5, len(w) - 0.5)
    bars.set_title(title, fontsize=8)
    bars.set_ylabel("w_i", fontsize=7)
    bars.tick_params(labelsize=6)
    for row, (indices, colour) in enumerate([(top, "tab:green"), (bottom, "tab:red")], start=1):
      for j, t in enumerate(indices):
        ax = fig.add_subplot(grid[3 * r + row, j])
        ax.imshow(imgs[t])
        ax.set_title(f"#{t}: {w[t]:.3f}", fontsize=7, color=colour)
        ax.axis("off")
  fig.tight_layout()
  return plotting.save_figure(fig, path, dpi=110)


def attention_of_run(config, workdir: str, videos: Sequence[int]) -> tuple[list, list, list]:
  """One test view of each video in ``videos``: (display images [T, H, W, 3], weights [T], title)."""
  from vidrec import trainer  # pylint: disable=g-import-not-at-top
  if config.model.name != "atw":
    raise ValueError(f"visualize_atw needs an ATW config (model.name='atw'), got {config.model.name!r}")
  s, ts, apply = trained.load(config, workdir)
  found, class_names = trained.first_test_views(s, config, videos)
  images, weights, titles = [], [], []
  for v in videos:
    video, label = found[v]
    out = apply(trainer.variables_of(ts), video[None])
    images.append(snippet_images(video, config.input.get("modality", "rgb")))
    weights.append(np.asarray(out["attention"][0]))
    pred = int(np.argmax(out["logits"][0]))
    titles.append(f"video {v}: {class_names[label]} -> predicted {class_names[pred]}")
  return images, weights, titles


def main(argv: Sequence[str]) -> None:
  del argv
  from absl import flags  # pylint: disable=g-import-not-at-top
  f = flags.FLAGS
  images, weights, titles = attention_of_run(_CONFIG.value, f.workdir, [int(v) for v in f.videos.split(",")])
  print(f"wrote {render_attention(images, weights, titles, os.path.join(f.out, 'atw_attention.png'), f.k)}")


if __name__ == "__main__":
  from absl import flags  # pylint: disable=g-import-not-at-top
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top

  from vidrec import cli  # pylint: disable=g-import-not-at-top
  _CONFIG = config_flags.DEFINE_config_file("config", None, "Config of the trained ATW run.", lock_config=True)
  flags.DEFINE_string("workdir", None, "Workdir of the trained run.")
  flags.DEFINE_string("out", None, "Output folder.")
  flags.DEFINE_string("videos", "0,1,2,3", "Test video indices.")
  flags.DEFINE_integer("k", 4, "Most / least attended snippets shown per video (Fig. 3: 4).")
  flags.mark_flags_as_required(["config", "workdir", "out"])
  cli.run(main)
