"""The base config every ``configs/<model>_<dataset>.py`` starts from, and its validation.

All keys live here (one place), so ``--config.<key>=value`` on a key that does not exist is an error
from ml_collections naming the key, and ``validate`` catches unknown names before anything compiles.
"""
from __future__ import annotations

import ml_collections

IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


def base_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.batch_size = 32                 # global, over all devices and processes
  c.num_train_steps = 10_000
  c.log_every_steps = 50
  c.checkpoint_every_steps = 1000
  c.keep_checkpoints = 3
  # Fine-tuning (vidrec.init_from, docs/pretrained.md): a directory from `python -m vidrec.convert`;
  # name globs (comma-separated) kept at their fresh initialisation (default: every model's classifier);
  # the module path the checkpoint sits under in the model; a shape adapter (init_from.ADAPTERS).
  c.init_from = ""
  c.init_skip = "fc/*,fc8/*,*_head/*"
  c.init_prefix = ""
  c.init_adapt = ""

  c.model = ml_collections.ConfigDict({"name": "resnet3d", "dtype": "float32", "param_dtype": "float32"})
  c.dataset = ml_collections.ConfigDict({
      "name": "synthetic_actions", "data_dir": "", "train_split": "train", "eval_split": "test"})
  c.input = ml_collections.ConfigDict({
      "sampler": "dense",           # dense | segments (vidrec.data.samplers.TEMPORAL_SAMPLERS)
      "clip_len": 16, "stride": 1, "num_test_clips": 10,      # dense; num_test_clips=0: all non-overlapping
      "num_segments": 8, "frames_per_segment": 1,             # segments
      "short_video": "loop",        # loop | pad
      "resize": (128,),             # (short side,) or a fixed (h, w)
      "scale_jitter": (0, 0),       # (min, max) training short side; (0, 0) = off
      "crop": 112,
      "flip": True,                 # with the dataset's flip label map
      "mean": IMAGENET_MEAN, "std": IMAGENET_STD,
      "test_spatial": "center",     # center | three | five | nine
      "test_flip": False,
      "prefetch": 2,
  })
  c.loss = ml_collections.ConfigDict({"name": "classification", "label_smoothing": 0.0})
  c.optimizer = ml_collections.ConfigDict({
      "name": "sgd", "lr": 0.001, "momentum": 0.9, "nesterov": False, "weight_decay": 5e-4,
      "schedule": "step", "decay_every": 10_000, "decay_steps": (), "gamma": 0.1,
      "warmup_steps": 0, "grad_clip_norm": 0.0})
  c.eval = ml_collections.ConfigDict({
      "aggregation": "mean_softmax",  # vidrec.evaluate.AGGREGATIONS
      "heads": ("logits",),
      "batch_size": 32,
      "checkpoint_step": -1,          # -1: latest
  })
  return c


def validate(config: ml_collections.ConfigDict) -> None:
  """Checks every name in the config against its registry, before any data or compilation."""
  from vidrec import evaluate, losses, optim  # pylint: disable=g-import-not-at-top
  from vidrec.data import datasets, samplers
  from vidrec import models
  models._import_all()  # pylint: disable=protected-access
  models.MODELS.get(config.model.name)
  losses.LOSSES.get(config.loss.name)
  datasets.DATASETS.get(datasets.split_name(config.dataset.name)[0])
  samplers.TEMPORAL_SAMPLERS.get(config.input.sampler)
  optim.OPTIMIZERS.get(config.optimizer.name)
  optim.SCHEDULES.get(config.optimizer.schedule)
  evaluate.AGGREGATIONS.get(config.eval.aggregation)
  if config.input.short_video not in samplers.SHORT_VIDEO_MODES:
    raise ValueError(f"input.short_video must be one of {samplers.SHORT_VIDEO_MODES}")
  if config.input.test_spatial not in samplers.SPATIAL_SCHEMES:
    raise ValueError(f"input.test_spatial must be one of {samplers.SPATIAL_SCHEMES}")
  for key in ("batch_size", "num_train_steps", "log_every_steps", "checkpoint_every_steps"):
    if config[key] <= 0:
      raise ValueError(f"{key} must be positive, got {config[key]}")


def parse_variant(arg: str, allowed: tuple[str, ...]) -> set[str]:
  """``"synthetic,fusion"`` -> {"synthetic", "fusion"}; unknown options are an error listing the known."""
  options = {a.strip() for a in arg.split(",") if a.strip()}
  if unknown := options - set(allowed):
    raise ValueError(f"Unknown config variant(s) {sorted(unknown)}; combine any of {list(allowed)} "
                     f"with commas, e.g. ':{allowed[0]}'.")
  return options


def sgn_paper_recipe(c: ml_collections.ConfigDict, dataset: str, decay_every: int) -> None:
  """SGN Sec. IV-B, shared by the ResNet3D and SGN configs: 16-frame clips resized to 128x171 and
  cropped to 112, every non-overlapping clip at test with a majority vote, SGD lr 0.001, momentum
  0.9, weight decay 5e-4, x0.1 every ``decay_every`` iterations (10k UCF101, 5k HMDB51/Penn), 50k."""
  c.dataset.update(name=dataset, train_split="train", eval_split="test")
  c.input.update(sampler="dense", clip_len=16, stride=1, num_test_clips=0, resize=(128, 171), crop=112)
  c.optimizer.update(lr=0.001, momentum=0.9, weight_decay=5e-4, schedule="step", decay_every=decay_every)
  c.batch_size = 32
  c.num_train_steps = 50_000
  c.eval.aggregation = "majority_vote"


def synthetic_clips(c: ml_collections.ConfigDict, steps: int = 1200) -> None:
  """The CPU-sized dense-clip setting of every ResNet3D-family ``:synthetic`` config: width 8,
  8-frame clips (stride 4) of 40x40 on ``synthetic_actions``, 3 test clips, SGD lr 0.02 with cosine
  decay (lr 0.1 sat at chance for 500+ steps on some seeds; docs/experiments.md)."""
  c.model.update(width=8)
  c.dataset.update(name="synthetic_actions", train_split="train", eval_split="test")
  c.input.update(clip_len=8, stride=4, num_test_clips=3, resize=(46,), crop=40, scale_jitter=(40, 52))
  c.optimizer.update(lr=0.02, schedule="cosine", warmup_steps=100, weight_decay=1e-4)
  c.batch_size = 16
  c.num_train_steps = steps
  c.log_every_steps = 50
  c.checkpoint_every_steps = 500
  c.eval.aggregation = "mean_softmax"


def sgn_model(c: ml_collections.ConfigDict, sgm: str, sgm_blocks: str) -> None:
  """SGN on ResNet3D-18 (paper 000): every ``config.model`` key of ``vidrec.models.sgn`` with its
  default, the SGM kind (S | M | G) and the gated blocks ("3b", "4a,4b", "all_rib", ...)."""
  c.model.update({
      "name": "sgn", "width": 64, "num_stages": 4, "blocks_per_stage": 2, "dropout": 0.0,
      "block": "r3d",                  # r3d | r2plus1d | mc3 (vidrec.models.resnet3d.BLOCKS)
      "sgm": sgm, "sgm_blocks": sgm_blocks,
      "cross_layer": "",               # "dest:source,..." e.g. "3b:2b" (Fig. 6); "" = none
      "cross_layer_mode": "learned",   # learned | direct (the paper's down-sampled baseline)
      "cross_layer_resample": "strided",
      "softmax_axis": "channel",       # channel (Caffe's default axis) | spacetime
      "gate": "softmax",               # softmax | sigmoid (the authors' ODAR version)
      "alpha_rescale": False})


def frame_model(c: ml_collections.ConfigDict, depth: int = 18) -> None:
  """The "Frame" stream of SGN + Frame (paper 000, Tables V-VII): a 2D ResNet-18/50 trained on one
  random frame per video and tested on 16 evenly spaced frames (mean softmax), for late fusion with
  SGN by ``python -m vidrec.fuse``. Keeps the input size and width of the config it modifies."""
  width = c.model.get("width", 64)
  c.model = ml_collections.ConfigDict({
      "name": "resnet2d_frame", "depth": depth, "width": width, "dropout": 0.0,
      "zero_init_residual": False, "dtype": "float32", "param_dtype": "float32"})
  c.input.update(sampler="dense", clip_len=1, stride=1, num_test_clips=16)
  c.eval.aggregation = "mean_softmax"
