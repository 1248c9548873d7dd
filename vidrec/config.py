"""The base config every ``configs/<model>_<dataset>.py`` starts from, and its validation.

Papers' recipes (protocols, model keys, CPU-sized settings) live beside the configs, in
``configs/recipes/<paper>.py``; this module is only the keys-and-validation contract.

All keys live here (one place), so ``--config.<key>=value`` on a key that does not exist is an error
from ml_collections naming the key, and ``validate`` catches unknown names before anything compiles.
"""
from __future__ import annotations

import copy

import ml_collections

from vidrec.errors import UserError

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
  c.profile_steps = ""              # "a,b": a jax.profiler trace of steps a..b in WORKDIR/profile (vidrec.profiling)
  # Memory levers (vidrec.memory, docs/scaling.md): micro-batches per step; False = per-device BatchNorm.
  c.accum_steps = 1
  c.sync_batch_norm = True
  # Fine-tuning (vidrec.init_from, docs/pretrained.md): a directory from `python -m vidrec.convert`;
  # name globs (comma-separated) kept at their fresh initialisation (default: every model's classifier);
  # the module path the checkpoint sits under in the model; a shape adapter (init_from.ADAPTERS).
  c.init_from = ""
  c.init_skip = "fc/*,fc8/*,*_head/*"
  c.init_prefix = ""
  c.init_adapt = ""
  # The weights the paper starts from (vidrec.pretrained.SOURCES; a real-data recipe sets it and its
  # init_from): without them the run refuses to start, unless from_scratch (random weights on purpose).
  c.pretrained = ""
  c.from_scratch = False

  # dtype "auto": bfloat16 compute on GPU/TPU, float32 on CPU; remat: recompute each residual block.
  c.model = ml_collections.ConfigDict({"name": "resnet3d", "dtype": "auto", "param_dtype": "float32",
                                       "remat": False})
  c.dataset = ml_collections.ConfigDict({
      "name": "synthetic_actions", "data_dir": "", "train_split": "train", "eval_split": "test",
      "max_unreadable_fraction": 0.01})  # more unreadable training videos than this stops training
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
      "warmup_steps": 0, "grad_clip_norm": 0.0, "grad_clip_scope": "global",   # global | module (optim.CLIPS)
      "frozen": ""})                # comma-separated globs of params ("vgg/*") the optimizer leaves as they are
  c.eval = ml_collections.ConfigDict({
      "aggregation": "mean_softmax",  # vidrec.aggregations.AGGREGATIONS
      "heads": ("logits",),           # outputs scored, one report row each; () = every logits* output
      "batch_size": 32,
      "checkpoint_step": -1,          # -1: latest
  })
  return c


def validate(config: ml_collections.ConfigDict) -> None:
  """Checks every name in the config against its registry, before any data or compilation."""
  from vidrec import aggregations, losses, models, optim, profiling  # pylint: disable=g-import-not-at-top
  from vidrec.data import datasets, samplers  # pylint: disable=g-import-not-at-top
  models._import_all()  # pylint: disable=protected-access
  models.MODELS.get(config.model.name)
  losses.LOSSES.get(config.loss.name)
  datasets.DATASETS.get(datasets.split_name(config.dataset.name)[0])
  samplers.TEMPORAL_SAMPLERS.get(config.input.sampler)
  optim.OPTIMIZERS.get(config.optimizer.name)
  optim.SCHEDULES.get(config.optimizer.schedule)
  aggregations.AGGREGATIONS.get(config.eval.aggregation)
  if config.input.short_video not in samplers.SHORT_VIDEO_MODES:
    raise UserError(f"input.short_video must be one of {samplers.SHORT_VIDEO_MODES}")
  if config.input.test_spatial not in samplers.SPATIAL_SCHEMES:
    raise UserError(f"input.test_spatial must be one of {samplers.SPATIAL_SCHEMES}")
  profiling.parse_steps(config.profile_steps)
  for key in ("batch_size", "num_train_steps", "log_every_steps", "checkpoint_every_steps", "accum_steps"):
    if config[key] <= 0:
      raise UserError(f"{key} must be positive, got {config[key]}")


def with_overrides(config: ml_collections.ConfigDict, overrides: dict[str, object]) -> ml_collections.ConfigDict:
  """A copy of ``config`` with ``{"a.b": value}`` set (existing keys only, as on the command line), set
  before references are resolved, so a field derived from an overridden one follows it (e.g. joint_lstm's
  ``optimizer.frozen`` from ``model.finetune_vgg``)."""
  config = copy.deepcopy(config)
  for key, value in overrides.items():
    *path, leaf = key.split(".")
    node = config
    for p in path:
      node = node[p]
    node[leaf] = value
  return config.copy_and_resolve_references()
