"""JointLSTM (paper 001) recipe shared by ``configs/joint_lstm_{ucf101,hmdb51}.py`` (D = the dataset).

  python train.py --config configs/joint_lstm_D.py --workdir workdir/jl_D                  # late fusion
  python train.py --config configs/joint_lstm_D.py:synthetic --workdir workdir/jl_synth     # 2-core CPU

Variants (combine with commas): ``split1`` (default) / ``split2`` / ``split3``, ``late`` (default) /
``early``, ``synthetic``, ``hard`` (the synthetic setting on ``synthetic_actions/hard`` for twice the
steps, issue 16). Table 2 rows: --config.model.branches="('pool4',)"; Table 3 rows:
--config.model.conv_type=2d|none, --config.loss.lambda_att=0.

Paper (Sec. 4.2): clips of L1 = 30 consecutive frames resized to 384x384, VGG16 taps pool4 and conv5_3,
two 3x3x3 conv layers of 256 channels, a three-layer LSTM of 1024 units, L2 = 16, batch 64,
lambda = 1000, zeta = 1e-5. Not in the paper (readings in docs/models/joint_lstm.md): SGD momentum 0.9,
lr 0.01 on the step-averaged loss, x0.1 at 2/3 of 30,000 steps, gradient clipping at 10 per top-level
module (the 3D convnets' lambda * R must not shrink the LSTM's step, 11b), dropout 0.5,
weight decay 2 * zeta (the gradient of zeta * sum theta^2), test clips every 8 frames. A frozen VGG16
(``model.finetune_vgg=False``) is also left out of the optimizer (``optimizer.frozen = "vgg/*"``: no
weight decay, no state), derived from ``finetune_vgg`` by :func:`freeze_vgg_unless_finetuned`.
"""
from __future__ import annotations

import ml_collections

from configs.recipes import common
from vidrec import pretrained
from vidrec.config import base_config

SPLITS = ("split1", "split2", "split3")
VARIANTS = SPLITS + ("early", "late", "synthetic", "hard")


def model_config() -> ml_collections.ConfigDict:
  """Every ``config.model`` key of ``vidrec.models.joint_lstm`` at the paper's reading."""
  return ml_collections.ConfigDict({
      "name": "joint_lstm", "dtype": "float32", "param_dtype": "float32",
      "branches": ("pool4", "conv5_3"), "vgg_width": 64, "finetune_vgg": False, "tap_scale": 1.0,
      "conv_type": "3d", "conv_channels": 256, "reduce": "stride2", "ds_hidden": 1024, "ds_pool": "flatten",
      "input_units": 1024, "hidden": 1024, "num_layers": 3, "fusion": "late", "pyramid": True,
      "final_gate_bias": False, "detach_3d_from_lstm": False, "dropout": 0.5, "last_steps": 16})


def freeze_vgg_unless_finetuned(c: ml_collections.ConfigDict) -> None:
  """``optimizer.frozen`` = "vgg/*" while ``model.finetune_vgg`` is False, else "": a reference to
  ``finetune_vgg``, so a later ``--config.model.finetune_vgg=True`` unfreezes both the gradient
  (the model's ``stop_gradient``) and the optimizer (weight decay) at once. Setting
  ``optimizer.frozen`` explicitly replaces the derived value."""
  tuned = c.model.get_ref("finetune_vgg")
  c.optimizer.frozen = ml_collections.FieldReference("vgg/*") * (1 - tuned.to_int())


def get_config(dataset: str, arg: str = "") -> ml_collections.ConfigDict:
  """``dataset`` = "ucf101" | "hmdb51"; ``arg`` any of VARIANTS joined by commas."""
  options = common.parse_variant(arg, VARIANTS)
  if {"early", "late"} <= options:
    raise ValueError("choose one of ':early' and ':late'.")
  split = next((s for s in SPLITS if s in options), "split1")
  c = base_config()
  c.model = model_config()
  c.model.fusion = "early" if "early" in options else "late"
  freeze_vgg_unless_finetuned(c)
  c.loss = ml_collections.ConfigDict({"name": "joint_lstm", "lambda_att": 1000.0, "lstm_steps": "all",
                                      "last_steps": 16, "att_reg_grad_to_attention": False,
                                      "label_smoothing": 0.0})
  c.dataset.update(name=f"{dataset}/{split}", train_split="train", eval_split="test")
  c.input.update(sampler="sliding", clip_len=30, stride=1, short_video="pad", resize=(384, 384), crop=384,
                 scale_jitter=(0, 0), flip=True, test_spatial="center")
  c.input.test_clip_stride = 8
  c.optimizer.update(name="sgd", lr=0.01, momentum=0.9, weight_decay=2e-5, schedule="step",
                     decay_steps=(20_000,), warmup_steps=0, grad_clip_norm=10.0, grad_clip_scope="module")
  c.batch_size = 64
  c.num_train_steps = 30_000
  c.checkpoint_every_steps = 2000
  c.log_every_steps = 100
  c.eval.update(aggregation="majority_vote", heads=("logits",), batch_size=16)
  pretrained.declare(c, "vgg16_imagenet", prefix="vgg")   # Sec. 4.2: "with the model pre-trained"
  common.synthetic_variants(c, options, synthetic)
  return c


def synthetic(c: ml_collections.ConfigDict) -> None:
  """CPU-sized: the same modules at a small size. VGG16 at width 8 (channels 8..64), frozen at its
  random initialisation (no pre-trained weights exist for that width), tapped at ``pool3`` and
  ``conv4_3`` (the paper's pool4/conv5_3 pair one group earlier: the pool before a group and that
  group's last conv, both 1/8 of the input) on 32x32 frames, so both maps are 4x4 and kept at 4x4
  by ``reduce="same"`` (K2 = 16 positions); ``tap_scale=16`` brings the random net's taps (std
  ~0.1 and ~0.04) to about unit scale; a 32-channel convnet, 64 LSTM units, L1 = 8 frames taken
  every 4th frame (the span of the other synthetic clip configs), L2 = 4, a test clip every 4th
  start. Adam (lr 0.002, cosine): SGD (lr 0.05, 16-frame clips, lambda 1000) stayed at chance, and at
  Adam lr 0.005 the first conv layer of the short-term convnets died (every ReLU unit off on every
  input: the taps are all positive), the conv4_3 branch's on all 3 seeds and both branches' on seed 1.
  lambda = 1: at the paper's 1000 the regulariser collapsed the convnets on this random pre-conv net
  (att_reg -> 0.005, every cross-entropy at ln 12 for 1,500 steps). Both in docs/experiments.md, where
  the runs clipped by one global norm (kept here: Adam's step barely depends on a common rescaling)."""
  c.model.update(branches=("pool3", "conv4_3"), vgg_width=8, finetune_vgg=False, tap_scale=16.0, conv_channels=32,
                 reduce="same", ds_hidden=64, input_units=64, hidden=64, dropout=0.0, last_steps=4)
  c.loss.update(last_steps=4, lambda_att=1.0)
  c.dataset.update(name="synthetic_actions", train_split="train", eval_split="test")
  c.input.update(clip_len=8, stride=4, resize=(32, 32), crop=32)
  c.input.test_clip_stride = 4
  c.optimizer.update(name="adamw", lr=0.002, schedule="cosine", decay_steps=(), warmup_steps=50,
                     weight_decay=1e-4, grad_clip_norm=10.0, grad_clip_scope="global")
  c.batch_size = 16
  c.num_train_steps = 1500
  c.checkpoint_every_steps = 500
  c.log_every_steps = 50
  c.eval.batch_size = 32
