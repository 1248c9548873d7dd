"""FstCN (paper 004) recipe pieces shared by ``configs/fstcn_ucf101.py`` and ``configs/fstcn_hmdb51.py``."""
from __future__ import annotations

import ml_collections

from configs.recipes import common
from vidrec import pretrained
from vidrec.config import base_config


def fstcn_model(c: ml_collections.ConfigDict) -> None:
  """Every ``config.model`` key of ``vidrec.models.fstcn`` at the paper's sizes (Sec. 2.5)."""
  c.model = ml_collections.ConfigDict({
      "name": "fstcn", "dtype": "float32", "param_dtype": "float32",
      "paths": "both",                       # both | scl | tcl (Table 2's path-only rows)
      "scl_widths": (96, 256, 512, 512),     # lower SCLs, CNN-M-2048 conv1-conv4
      "lrn": (2.0, 5, 5e-4, 0.75),           # k, n, alpha, beta (Caffe formula, alpha / n per term)
      "tcl_scl_width": 128,                  # Conv(128,3,1) + Pool(3,3) before the T-P operator
      "permuted_channels": 128,              # f' of the 128 x 128 permutation matrix P
      "p_init_std": -1.0,                    # Gaussian std of P; < 0: 1/sqrt(f)
      "tcl_features": 32, "tcl_kernels": (3, 5), "tcl_dropout": 0.5,
      "conv5_width": 512,                    # SCL path: CNN-M conv5 + Pool(3,2)
      "fc": (4096, 2048), "fusion_fc": 2048, "dropout": 0.5})


def fstcn_paper_recipe(c: ml_collections.ConfigDict, dataset: str, num_train_steps: int = 20_000) -> None:
  """Sec. 2.2-2.5: 5-frame clips at stride s_t = 5 with V_diff at d_t = 9, 204x204 crops shared by a
  clip and its differences, batch 32, SGD momentum 0.9, weight decay 5e-4; test: M = 5 clip pairs x
  9 crops x flip = 18 samples per pair, SCI fusion (Eq. 5-7). lr, schedule and M are not in the paper
  (docs/models/fstcn.md): the fine-tuning schedule of the two-stream paper [10] its spatial path follows,
  lr 1e-2, x0.1 at 70% of the run (14k of 20k)."""
  fstcn_model(c)
  c.dataset.update(name=dataset, train_split="train", eval_split="test")
  c.input.update(sampler="clip_pair", clip_len=5, stride=5, num_test_clips=5, resize=(240,), crop=204,
                 test_spatial="nine", test_flip=True)
  c.input.diff_offset = 9
  c.loss.update(name="fstcn")
  c.loss.aux_weight = 0.0
  c.loss.tcl_weight = 0.0
  c.optimizer.update(lr=1e-2, momentum=0.9, weight_decay=5e-4, schedule="step",
                     decay_steps=(int(0.7 * num_train_steps),))
  c.batch_size = 32
  c.num_train_steps = num_train_steps
  c.eval.aggregation = "sci"
  pretrained_stages(c, num_train_steps)


def pretrained_stages(c: ml_collections.ConfigDict, num_train_steps: int) -> None:
  """Sec. 2.3: the auxiliary network (CNN-M-2048) pre-trained on ImageNet (VGG-M's weights: its fc7 has
  4096 units, so ``scl_fc7`` and the classifier start fresh), fine-tuned on training frames in its last
  three layers for a quarter of the global length (the paper gives no length), then the whole network
  (``vidrec.procedures.fstcn``)."""
  pretrained.declare(c, "vggm_imagenet")
  c.init_skip = "scl_fc7/*,classifier_aux/*"
  c.procedure = "fstcn_stages"
  c.stages = ml_collections.ConfigDict({"steps": (num_train_steps // 4, num_train_steps),
                                        "frozen": "lower_scls/*,conv5/*"})


def fstcn_synthetic(c: ml_collections.ConfigDict) -> None:
  """The CPU-sized FstCN on ``synthetic_actions`` (64 px videos of 20-60 frames): widths / 8, frames
  upsampled to 88 and cropped to 80 (the ceil-mode chain 37 -> 18 -> 8 -> 4 -> 2x2 before the T-P
  operator, as at 204), l_t = 5 at s_t = 4 with d_t = 4, 3 test clip pairs x 9 crops without flips (the
  synthetic label set is not mirror-symmetric), no dropout (at these widths dropout 0.5 kept training
  near chance: docs/experiments.md), SGD lr 0.02 with cosine decay, 600 steps."""
  c.model.update(scl_widths=(12, 32, 64, 64), tcl_scl_width=16, permuted_channels=16, tcl_features=4,
                 conv5_width=64, fc=(512, 256), fusion_fc=256, dropout=0.0, tcl_dropout=0.0)
  c.dataset.update(name="synthetic_actions", train_split="train", eval_split="test")
  c.input.update(stride=4, num_test_clips=3, resize=(88,), crop=80, scale_jitter=(0, 0), test_flip=False)
  c.input.diff_offset = 4
  c.optimizer.update(lr=0.02, schedule="cosine", warmup_steps=100, weight_decay=1e-4, decay_steps=())
  c.batch_size = 16
  c.num_train_steps = 600
  c.log_every_steps = 50
  c.checkpoint_every_steps = 600
  c.eval.batch_size = 54
  c.procedure = "single"      # from scratch: no pretrained auxiliary network to fine-tune
  c.stages.steps = (150, 450)   # --config.procedure=fstcn_stages with an init_from: 600 steps in all


def fstcn_config(arg: str, dataset: str, splits: tuple[str, ...] = ("split1", "split2", "split3")
                 ) -> ml_collections.ConfigDict:
  """``get_config`` of ``configs/fstcn_<dataset>.py``: variants a split (default the first),
  ``synthetic`` and ``hard`` (``common.synthetic_variants``). Table 2 rows: ``--config.model.paths=scl|tcl``,
  ``--config.input.num_test_clips=1``, ``--config.eval.aggregation=mean_softmax`` (averaging fusion);
  Table 1: ``--config.model.tcl_kernels``."""
  options = common.parse_variant(arg, splits + ("synthetic", "hard"))
  split = next((s for s in splits if s in options), splits[0])
  c = base_config()
  fstcn_paper_recipe(c, f"{dataset}/{split}_s256")
  common.synthetic_variants(c, options, fstcn_synthetic)
  return c
