"""Rendering SGN's semantic-guidance maps alpha over the input frames (paper 000, Sec. IV-G, Fig. 8).

Grid: the first row shows the frames, then one row per SGB (network order: RCB2a, RIB2b, ...), one column
per frame. What is drawn is the gain the gate applies, relative to a uniform gate: alpha [T', H', W', C]
divided by its mean over the gate's softmax axis (``softmax_axis``: over channels at each position, or
over all positions per channel), so 1 means "the block passes as its ResNet3D block" whatever the gate's
normalisation (the default ``mean_one_softmax`` has that mean 1 already, Eq. 9-13's softmax 1/K). It is
summarised per position over channels (``reduce="max"``, the largest gain there: under the channel
softmax the channel mean of the relative gain is 1 everywhere, only its peak varies; ``"mean"`` for the
spacetime softmax or the sigmoid), drawn as log2(gain) on a diverging colour map centred on 0 (gain 1)
and symmetric over the clip for that block (so frames of one row are comparable and a gate that is
still uniform, as at initialisation, renders neutral instead of stretched noise), resized to the frame
(nearest in time: frame t reads alpha index t * T' // T; bilinear in space, as the paper "resized to
the same size") and overlaid on the frame.

Library use::

  outputs = model.apply(variables, video[None], train=False)
  render_alpha_grid(video, alphas_from_outputs(outputs), "alpha.png")

or :func:`render_from_model`. ``python -m vidrec.tools.visualize_sgn --demo --out alpha.png`` renders
the maps of a tiny randomly initialised SGN on a synthetic moving square (a smoke test); with a trained
run, ``python -m vidrec.tools.visualize_sgn --config configs/sgn_ucf101.py:synthetic --workdir W
--out alpha.png [--video_index 3] [--split test]`` renders the maps of one test video.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from vidrec.errors import UserError
from vidrec.tools import plotting

REDUCTIONS = ("max", "mean")
SOFTMAX_AXES = {"channel": (-1,), "spacetime": (0, 1, 2)}   # axes of one example's alpha [T', H', W', C]


def _block_key(name: str) -> str:
  return name.split("/", 1)[1] if name.startswith("alpha/") else name


def block_label(name: str) -> str:
  """'3b' -> 'RIB3b', '3a' -> 'RCB3a' (the first block of a stage is the convolution block)."""
  name = _block_key(name)
  return f"{'RCB' if name.endswith('a') else 'RIB'}{name}"


def alphas_from_outputs(outputs: Mapping[str, Any], index: int = 0) -> dict[str, np.ndarray]:
  """``{"alpha/3b": [N, T', H', W', C], ...}`` model outputs -> ``{"3b": [T', H', W', C]}`` of example ``index``."""
  return {_block_key(k): np.asarray(v[index], dtype=np.float32)
          for k, v in outputs.items() if k.startswith("alpha/")}


def relative_gain(alpha: np.ndarray, softmax_axis: str = "channel") -> np.ndarray:
  """alpha [T', H', W', C] divided by its mean over the gate's softmax axis (1 = a uniform gate)."""
  if softmax_axis not in SOFTMAX_AXES:
    raise ValueError(f"softmax_axis={softmax_axis!r}: use one of {list(SOFTMAX_AXES)}")
  a = np.asarray(alpha, dtype=np.float64)
  return a / a.mean(axis=SOFTMAX_AXES[softmax_axis], keepdims=True)


def summarize_alpha(alpha: np.ndarray, reduce: str = "max", softmax_axis: str = "channel") -> np.ndarray:
  """alpha [T', H', W', C] (or with a leading batch of 1) -> log2 of its relative gain summarised over
  channels, [T', H', W'] (an already summarised [T', H', W'] map is returned as it is)."""
  if reduce not in REDUCTIONS:
    raise ValueError(f"reduce={reduce!r}: use one of {REDUCTIONS}")
  a = np.asarray(alpha, dtype=np.float32)
  if a.ndim == 5:
    if a.shape[0] != 1:
      raise ValueError(f"alpha has a batch of {a.shape[0]}; pass one example [T', H', W', C]")
    a = a[0]
  if a.ndim == 4:
    gain = relative_gain(a, softmax_axis)
    a = np.log2(gain.max(axis=-1) if reduce == "max" else gain.mean(axis=-1)).astype(np.float32)
  if a.ndim != 3:
    raise ValueError(f"alpha must be [T', H', W', C] or [T', H', W'], got shape {np.shape(alpha)}")
  return a


def _display_frames(video: np.ndarray) -> np.ndarray:
  v = np.asarray(video)
  if v.ndim == 5 and v.shape[0] == 1:
    v = v[0]
  if v.ndim != 4 or v.shape[-1] not in (1, 3):
    raise ValueError(f"video must be [T, H, W, 3], got shape {np.shape(video)}")
  if v.dtype == np.uint8:
    return v.astype(np.float32) / 255.0
  return plotting.minmax(v.astype(np.float32))  # normalised float frames: stretch to [0, 1] for display


def render_alpha_grid(video: np.ndarray, alphas: Mapping[str, np.ndarray], path: str, *,
                      reduce: str = "max", softmax_axis: str = "channel", max_frames: int = 8,
                      overlay: float = 0.5, cmap: str = "coolwarm", title: str | None = None,
                      dpi: int = 100) -> str:
  """Writes the Fig. 8-style PNG grid (rows: frames, then each SGB; columns: frames) to ``path``.

  ``video`` [T, H, W, 3] (uint8, or float of any range: min-max stretched); ``alphas`` maps block names
  ('3b' or 'alpha/3b') to alpha [T', H', W', C] (or already summarised [T', H', W'] log2 gains).
  At most ``max_frames`` evenly spaced frames are shown; each row's colour bar spans +-max|log2 gain|
  of that block (at least 0.05). Returns ``path``.
  """
  plt = plotting.pyplot()
  frames = _display_frames(video)
  num_frames, height, width = frames.shape[:3]
  cols = np.unique(np.linspace(0, num_frames - 1, min(max_frames, num_frames)).round().astype(int))
  blocks = sorted(alphas, key=_block_key)
  maps = {b: plotting.upsample_map(summarize_alpha(alphas[b], reduce, softmax_axis), num_frames, height, width)
          for b in blocks}
  spans = {b: max(float(np.abs(m).max()), 0.05) for b, m in maps.items()}
  rows = 1 + len(blocks)
  fig, axes = plt.subplots(rows, len(cols), figsize=(1.6 * len(cols) + 0.6, 1.6 * rows), squeeze=False)
  for j, t in enumerate(cols):
    axes[0, j].imshow(frames[t].squeeze(), cmap="gray" if frames.shape[-1] == 1 else None)
    axes[0, j].set_title(f"t={t}", fontsize=8)
    for i, b in enumerate(blocks, start=1):
      axes[i, j].imshow(frames[t].squeeze(), cmap="gray" if frames.shape[-1] == 1 else None)
      axes[i, j].imshow(maps[b][t], cmap=cmap, alpha=overlay, vmin=-spans[b], vmax=spans[b])
  for i in range(rows):
    for ax in axes[i]:
      ax.set_xticks([])
      ax.set_yticks([])
    axes[i, 0].set_ylabel("frame" if i == 0 else f"{block_label(blocks[i - 1])}\n|log2 g|<={spans[blocks[i - 1]]:.2g}",
                          fontsize=8)
  if title:
    fig.suptitle(title, fontsize=9)
  fig.tight_layout()
  return plotting.save_figure(fig, path, dpi)


def render_from_model(model: Any, variables: Any, video: np.ndarray, path: str, **kwargs: Any) -> str:
  """Runs an SGN ``model`` (eval mode) on one ``video`` [T, H, W, 3] and renders its alpha maps."""
  import jax
  outputs = jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, np.asarray(video, np.float32)[None])
  alphas = alphas_from_outputs(outputs)
  if not alphas:
    raise ValueError("the model returned no 'alpha/<block>' outputs (is it an SGN with sgm_blocks set?)")
  return render_alpha_grid(video, alphas, path, **kwargs)


def synthetic_video(num_frames: int = 8, size: int = 32, seed: int = 0) -> np.ndarray:
  """A bright square moving diagonally over noise, [T, size, size, 3] float32 in [0, 1]."""
  rng = np.random.default_rng(seed)
  video = 0.2 * rng.random((num_frames, size, size, 3), dtype=np.float32)
  side = max(size // 4, 2)
  for t in range(num_frames):
    o = t * (size - side) // max(num_frames - 1, 1)
    video[t, o:o + side, o:o + side] = 1.0
  return video


def trained_video_alphas(config: Any, workdir: str, split: str, video_index: int,
                         step: int | None = None) -> tuple[np.ndarray, dict[str, np.ndarray], str]:
  """Restores a trained SGN from ``workdir`` and runs it on the first evaluation view of one video of
  ``split``; returns (frames in [0, 1], alpha maps, class name)."""
  from vidrec import trainer  # pylint: disable=g-import-not-at-top
  from vidrec.tools import trained  # pylint: disable=g-import-not-at-top
  s, ts, apply = trained.load(config, workdir, step)
  try:
    views, class_names = trained.first_test_views(s, config, [video_index], split)
  except ValueError as e:
    raise UserError(str(e)) from e
  video, label = views[video_index]
  outputs = apply(trainer.variables_of(ts), video[None])
  return video / 255.0, alphas_from_outputs(outputs), class_names[label]


def main(argv: Sequence[str]) -> None:
  """``--demo``: a tiny random SGN on a moving square; else a trained run (``--config``/``--workdir``)."""
  del argv
  from absl import flags  # pylint: disable=g-import-not-at-top
  f = flags.FLAGS
  if f.demo:
    import jax  # pylint: disable=g-import-not-at-top
    import ml_collections  # pylint: disable=g-import-not-at-top

    from vidrec.models import build_model  # pylint: disable=g-import-not-at-top
    # LeCun-initialised SGMs: under the default zero init every alpha is 1 and the maps are neutral.
    cfg = ml_collections.ConfigDict(dict(name="sgn", width=8, sgm="M", sgm_blocks=["all"], sgm_init="lecun"))
    model = build_model(cfg, num_classes=4)
    video = synthetic_video()
    variables = jax.jit(model.init)(jax.random.key(0), video[None])
    print(render_from_model(model, variables, video, f.out, reduce=f.reduce,
                            title="SGN-M, all blocks (random LeCun init)"))
    return
  if f.config is None or f.workdir is None:
    raise UserError("give --config and --workdir of a trained SGN run (or --demo)")
  frames, alphas, label = trained_video_alphas(f.config, f.workdir, f.split, f.video_index, f.step)
  if not alphas:
    raise UserError("this model returned no 'alpha/<block>' outputs: is it an SGN with sgm_blocks set?")
  print(render_alpha_grid(frames, alphas, f.out, reduce=f.reduce,
                          softmax_axis=f.config.model.get("softmax_axis", "channel"), title=f"{f.config.model.name} SGM-{f.config.model.get('sgm', '?')}: {label}"))


if __name__ == "__main__":
  from absl import flags  # pylint: disable=g-import-not-at-top
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top

  from vidrec import cli  # pylint: disable=g-import-not-at-top
  config_flags.DEFINE_config_file("config", None, "Config of the trained SGN run.", lock_config=True)
  flags.DEFINE_string("workdir", None, "Workdir of the trained run.")
  flags.DEFINE_string("out", None, "PNG path.")
  flags.DEFINE_bool("demo", False, "Tiny randomly initialised SGN on a synthetic video (no checkpoint).")
  flags.DEFINE_enum("reduce", "max", list(REDUCTIONS), "How alpha is summarised over channels.")
  flags.DEFINE_string("split", "test", "Split of the video.")
  flags.DEFINE_integer("video_index", 0, "Index of the video in the split.")
  flags.DEFINE_integer("step", None, "Checkpoint step (default: latest).")
  flags.mark_flags_as_required(["out"])
  cli.run(main)
