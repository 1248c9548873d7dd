"""Recipes of the SGN paper (000): its training protocol (shared with its ResNet3D baseline), the SGN
model keys, the single-frame stream of SGN + Frame, and the ``get_config`` of every ``configs/sgn_*.py``
and ``configs/resnet3d_*.py`` (one per dataset; they differ only in the arguments below)."""
from __future__ import annotations

import ml_collections

from configs.recipes import common
from vidrec import pretrained
from vidrec.config import base_config

SPLITS = ("split1", "split2", "split3")


def _dataset(options: set[str], dataset: str, splits: tuple[str, ...]) -> str:
  """TFDS name: ``dataset/<split variant>`` (default the first) or ``dataset/default`` without splits."""
  return f"{dataset}/{next((s for s in splits if s in options), splits[0])}" if splits else f"{dataset}/default"


def sgn_config(arg: str, dataset: str, sgm: str, fusion_blocks: str, decay_every: int,
               splits: tuple[str, ...] = SPLITS) -> ml_collections.ConfigDict:
  """``get_config`` of ``configs/sgn_<dataset>.py``: SGM-``sgm`` at RIB3b (``fusion``: at
  ``fusion_blocks``); variants a split (default the first), ``fusion``, ``frame``, ``synthetic``, ``hard``."""
  options = common.parse_variant(arg, splits + ("fusion", "frame", "synthetic", "hard"))
  c = base_config()
  sgn_model(c, sgm, fusion_blocks if "fusion" in options else "3b")
  sgn_paper_recipe(c, _dataset(options, dataset, splits), decay_every=decay_every)
  common.synthetic_variants(c, options, common.synthetic_clips)
  if "frame" in options:
    frame_model(c)
    if not options & {"synthetic", "hard"}:
      pretrained.declare(c, "resnet18_imagenet")
  return c


def resnet3d_config(arg: str, dataset: str, decay_every: int,
                    splits: tuple[str, ...] = SPLITS) -> ml_collections.ConfigDict:
  """``get_config`` of ``configs/resnet3d_<dataset>.py``: the SGN paper's ResNet3D-18 baseline (torchvision's
  r3d_18 layout); variants a split (default the first), ``synthetic`` and ``hard``."""
  options = common.parse_variant(arg, splits + ("synthetic", "hard"))
  c = base_config()
  c.model.update(name="resnet3d", width=64, num_stages=4, blocks_per_stage=2, block="r3d", rcb="torchvision",
                 dropout=0.0)
  sgn_paper_recipe(c, _dataset(options, dataset, splits), decay_every=decay_every)
  common.synthetic_variants(c, options, common.synthetic_clips)
  return c


def sgn_paper_recipe(c: ml_collections.ConfigDict, dataset: str, decay_every: int) -> None:
  """SGN Sec. IV-B, shared by the ResNet3D and SGN configs: 16-frame clips resized to 128x171 and
  cropped to 112; training on every non-overlapping clip of every video (sampler ``non_overlapping``;
  ``dense`` draws one random window per video visit instead), every non-overlapping clip at test with
  a majority vote, SGD lr 0.001, momentum 0.9, weight decay 5e-4, x0.1 every ``decay_every``
  iterations (10k UCF101, 5k HMDB51/Penn), 50k."""
  c.dataset.update(name=dataset, train_split="train", eval_split="test")
  c.input.update(sampler="non_overlapping", clip_len=16, stride=1, num_test_clips=0, resize=(128, 171), crop=112)
  c.optimizer.update(lr=0.001, momentum=0.9, weight_decay=5e-4, schedule="step", decay_every=decay_every)
  c.batch_size = 32
  c.num_train_steps = 50_000
  c.eval.aggregation = "majority_vote"
  pretrained.declare(c, "r3d_18_kinetics400")    # "all of the training procedures are pre-trained on Sport1M"


def sgn_model(c: ml_collections.ConfigDict, sgm: str, sgm_blocks: str) -> None:
  """SGN on ResNet3D-18 (paper 000): every ``config.model`` key of ``vidrec.models.sgn`` with its
  default, the SGM kind (S | M | G) and the gated blocks ("3b", "4a,4b", "all_rib", ...); the recipe's
  one departure from the model defaults is ``gate_bound=0.5`` (docs/models/sgn.md, reading 4)."""
  c.model.update({
      "name": "sgn", "width": 64, "num_stages": 4, "blocks_per_stage": 2, "dropout": 0.0,
      "block": "r3d",                  # r3d | r2plus1d | mc3 (vidrec.models.resnet3d.BLOCKS)
      "rcb": "torchvision",            # torchvision (weight-compatible) | eq15 (3x3x3 H' at every RCB)
      "sgm": sgm, "sgm_blocks": sgm_blocks,
      "cross_layer": "",               # "dest:source,..." e.g. "3b:2b" (Fig. 6); "" = none
      "cross_layer_mode": "learned",   # learned | direct (the paper's down-sampled baseline)
      "cross_layer_resample": "strided",
      "softmax_axis": "channel",       # channel (Caffe's default axis) | spacetime
      "gate": "mean_one_softmax",      # mean_one_softmax (K * softmax) | softmax (Eq. 9-13 as printed) | sigmoid
      "sgm_init": "zero",              # zero (alpha == 1 at init: each SGB starts as its block) | lecun
      "gate_bound": 0.5})              # z -> b tanh(z / b) before the gate: gains within e^(2b) (0: none)


def frame_model(c: ml_collections.ConfigDict, depth: int = 18) -> None:
  """The "Frame" stream of SGN + Frame (paper 000, Tables V-VII): a 2D ResNet-18/50 trained on one
  random frame per video and tested on 16 evenly spaced frames (mean softmax), for late fusion with
  SGN by ``python -m vidrec.tools.fuse``. Keeps the input size and width of the config it modifies."""
  width = c.model.get("width", 64)
  c.model = ml_collections.ConfigDict({
      "name": "resnet2d_frame", "depth": depth, "width": width, "dropout": 0.0,
      "zero_init_residual": False, "dtype": c.model.get("dtype", "auto"),
      "param_dtype": c.model.get("param_dtype", "float32"), "remat": c.model.get("remat", False)})
  c.input.update(sampler="dense", clip_len=1, stride=1, num_test_clips=16)
  c.eval.aggregation = "mean_softmax"
