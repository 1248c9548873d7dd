"""ATW (paper 002) training recipes shared by ``configs/atw_<dataset>.py``: one config per stream.

Sec. 3.3 gives: 224x224 crops, SGD momentum 0.9, mini-batch 128 videos, lr 0.001 for the spatial stream
(x0.1 every 2,000 iterations) and 0.005 for both temporal streams (x0.1 at 12k and 18k), 1 RGB frame or
5 stacked (warped) flow fields per snippet, 80 snippets at test, fusion 1 : 1 : 0.5. Where it is
silent the TSN values are used (docs/models/atw.md lists each with its source).

Prepare once (frames at short side 256 + TV-L1 and warped flow; needs ``pip install -e ".[flow]"``), train
the three streams, then fuse the pre-softmax video scores 1 : 1 : 0.5 (D = ucf101 | hmdb51):
  python -m vidrec.data.prepare D --manual_dir M --config split1 --short_side 256 --flow tvl1 --warped_flow
  python train.py --config configs/atw_D.py:rgb --workdir W_rgb
  python train.py --config configs/atw_D.py:flow --workdir W_flow
  python train.py --config configs/atw_D.py:warped_flow --workdir W_wflow
  python -m vidrec.tools.fuse --member W_rgb/eval/test_scores.npz:logits:1 --member W_flow/eval/test_scores.npz:logits:1 \\
      --member W_wflow/eval/test_scores.npz:logits:0.5 --out W_fused

Variants (combine with commas): ``rgb`` (default) | ``flow`` | ``warped_flow``, ``split1`` (default) |
``split2`` | ``split3``, ``synthetic``, ``hard`` (the synthetic stream on ``synthetic_actions/hard_flow``,
the hard scenes with TV-L1 and warped flow, for twice the steps), ``positional`` (the positional reading
of the attention layer).
Consensus (Table 1): --config.model.consensus=avg|max|attention|positional.
"""
from __future__ import annotations

import ml_collections

from configs.recipes import common
from vidrec import pretrained
from vidrec.config import base_config
from vidrec.models.atw import PARTIAL_BN_FROZEN

MODALITIES = ("rgb", "flow", "warped_flow")
FUSION_WEIGHTS = {"rgb": 1.0, "flow": 1.0, "warped_flow": 0.5}   # Sec. 3.3
HARD_DATASET = "synthetic_actions/hard_flow"   # the hard scenes at 32 px with both flows stored
FLOW_LENGTH = 5                                                  # "a stack of (5) consecutive ... flow"


def atw_model(c: ml_collections.ConfigDict, modality: str, depth: int, num_segments: int) -> None:
  """Every ``config.model`` key of ``vidrec.models.atw`` for one stream."""
  c.model = ml_collections.ConfigDict({
      "name": "atw", "depth": depth, "width": 64, "num_segments": num_segments,
      "consensus": "attention",            # attention | avg | max | positional (Table 1)
      "attention_activation": "relu",      # relu | tanh | sigmoid | none (Table 2)
      "attention_init": "gaussian",        # gaussian | one | one_over_n (Table 2)
      "dropout": 0.8 if modality == "rgb" else 0.7,   # TSN (tsn-pytorch README)
      "dtype": "float32", "param_dtype": "float32"})
  partial_bn(c, True)                      # TSN
  c.init_adapt = "channel_mean"            # cross-modality init of a flow stream from RGB weights (TSN)


def partial_bn(c: ml_collections.ConfigDict, enabled: bool) -> None:
  """TSN's partial BN, both halves in one place: every BatchNorm but conv1's keeps its running statistics
  (``model.partial_bn``) and its scale/offset (``optimizer.frozen``, tsn-pytorch get_optim_policies).
  From the command line set both: ``--config.model.partial_bn=False --config.optimizer.frozen=''``."""
  c.model.partial_bn = enabled
  c.optimizer.frozen = PARTIAL_BN_FROZEN if enabled else ""


def atw_input(c: ml_collections.ConfigDict, modality: str, num_segments: int) -> None:
  """TSN segments (one snippet per segment), L = 5 flow fields per flow snippet, 80 test snippets."""
  if modality not in MODALITIES:
    raise ValueError(f"modality {modality!r}: use one of {MODALITIES}")
  c.input.update(sampler="segments", num_segments=num_segments,
                 frames_per_segment=1 if modality == "rgb" else FLOW_LENGTH)
  c.input.modality = modality
  c.input.num_test_segments = 80
  c.input.multiscale_crop = ()          # () = plain random crop; TSN: (1, .875, .75, .66) RGB, (1, .875, .75) flow


def atw_paper_recipe(c: ml_collections.ConfigDict, dataset: str, modality: str, num_segments: int = 4) -> None:
  """Sec. 3.3 on ``dataset`` (prepared with ``--short_side 256 --flow tvl1 --warped_flow``)."""
  spatial = modality == "rgb"
  atw_model(c, modality, depth=50, num_segments=num_segments)
  atw_input(c, modality, num_segments)
  c.dataset.update(name=dataset, train_split="train", eval_split="test")
  c.input.update(resize=(256,), crop=224, scale_jitter=(0, 0), test_spatial="center", test_flip=False)
  c.input.multiscale_crop = (1.0, 0.875, 0.75, 0.66) if spatial else (1.0, 0.875, 0.75)
  c.batch_size = 128
  c.optimizer.update(name="sgd", momentum=0.9, weight_decay=5e-4, schedule="step", gamma=0.1,
                     grad_clip_norm=40.0 if spatial else 20.0)
  if spatial:
    c.optimizer.update(lr=0.001, decay_every=2000, decay_steps=())
    c.num_train_steps = 4500            # TSN's RGB solver
  else:
    c.optimizer.update(lr=0.005, decay_steps=(12_000, 18_000))
    c.num_train_steps = 20_000          # TSN's flow solver
  c.checkpoint_every_steps = 1000
  c.eval.update(aggregation="mean_logits", batch_size=8)   # one 80-snippet view; pre-softmax scores
  pretrained.declare(c, "resnet50_imagenet", adapt="channel_mean")   # "used to initialize all 3 streams"


def atw_synthetic(c: ml_collections.ConfigDict, modality: str, steps: int = 1500) -> None:
  """CPU-sized stream on ``synthetic_actions/flow`` (32 px, TV-L1 and warped flow): ResNet-18 of width
  8, N = 3 segments, 28 px crops, no partial BN (no ImageNet weights), SGD lr 0.02 cosine."""
  atw_model(c, modality, depth=18, num_segments=3)
  atw_input(c, modality, num_segments=3)
  c.model.update(width=8, dropout=0.5)
  partial_bn(c, False)
  c.dataset.update(name="synthetic_actions/flow", train_split="train", eval_split="test")
  c.input.update(resize=(32,), crop=28, scale_jitter=(0, 0), test_spatial="center")
  c.batch_size = 16
  c.num_train_steps = steps
  c.optimizer.update(name="sgd", lr=0.02, momentum=0.9, weight_decay=1e-4, schedule="cosine",
                     warmup_steps=100, grad_clip_norm=0.0)
  c.log_every_steps = 50
  c.checkpoint_every_steps = 500
  c.eval.update(aggregation="mean_logits", batch_size=8)


def positional(c: ml_collections.ConfigDict) -> None:
  """The positional reading of the attention layer (docs/models/atw.md reading 2): per-position weights
  on the weighted sum, no activation, test snippets a multiple of N (80 rounded down)."""
  c.model.update(consensus="positional", attention_activation="none")
  c.input.num_test_segments = 80 - 80 % c.input.num_segments


def atw_config(arg: str, dataset: str, splits: tuple[str, ...]) -> ml_collections.ConfigDict:
  """``get_config`` of ``configs/atw_<dataset>.py``: variants ``rgb`` (default) | ``flow`` |
  ``warped_flow``, a split, ``synthetic``, ``hard``, ``positional``."""
  options = common.parse_variant(arg, MODALITIES + splits + ("synthetic", "hard", "positional"))
  if len(options & set(MODALITIES)) > 1 or len(options & set(splits)) > 1:
    raise ValueError(f"choose one stream of {MODALITIES} and one split of {splits}, got {sorted(options)}")
  modality = next((m for m in MODALITIES if m in options), "rgb")
  split = next((s for s in splits if s in options), splits[0])
  c = base_config()
  if options & {"synthetic", "hard"}:
    atw_synthetic(c, modality)
  else:
    atw_paper_recipe(c, f"{dataset}/{split}_s256_tvl1_warped", modality)
  if "hard" in options:
    common.hard(c)
    c.dataset.name = HARD_DATASET
  if "positional" in options:
    positional(c)
  return c
