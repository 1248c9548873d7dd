"""Recipes of the U2S paper (003): the U2S model, loss and staged-schedule keys, and its CPU-sized
``:synthetic`` setting."""
from __future__ import annotations

import ml_collections
from ml_collections import config_dict


def u2s_model(c: ml_collections.ConfigDict, csm_warmup_steps: int) -> None:
  """U2S (paper 003): every ``config.model`` key of ``vidrec.models.u2s`` with the paper's reading (ResNet-50
  top-heavy base, the full U2S variant, context-gating mask, N by the top-N rule, all three predictions
  fused), the U2S loss (Eq. 3, lambda = 0.5) and the staged schedule (``vidrec.procedures.u2s``; the step
  counts are the config's to set)."""
  unset = config_dict.placeholder      # None by default, and still settable from the command line
  c.model.update({
      "name": "u2s", "depth": 50, "width": 64, "base": "top_heavy", "preact": unset(bool), "variant": "u2s",
      "mask_norm": "multiply", "csm_distance": "centred_cosine", "csm_alpha": unset(float),
      "csm_num_confusing": unset(float), "csm_warmup_steps": csm_warmup_steps, "csm_frozen": False,
      "stats_momentum": unset(float), "combine": "mean_softmax", "combine_mn": True, "tsm_fold_div": 8,
      "dropout_rate": 0.0})
  c.loss.update({"name": "u2s", "w_regular_weight": 0.5, "w_similarity": "clipped_cosine"})
  c.eval.heads = ()          # every logits* head the variant has: logits, logits_csn, logits_mn, logits_un
  c.procedure = "u2s_stages"
  # UN; CSN + MN with the UN frozen; joint. N on held-out videos: top_n_split "auto" = the validation
  # split, else the last held_out of the training split (vidrec.procedures.u2s.held_out_splits).
  c.stages = ml_collections.ConfigDict({
      "steps": (1, 1, 1), "frozen": "res2d/*,un_top/*,un_head/*", "joint_lr": 1e-4,
      "top_n_standard": 0.85, "top_n_split": "auto", "held_out": 0.1,
      "csn_init": "un_top"})              # stage 2's csn_top: un_top | pretrained (vidrec.procedures.u2s)


def hard_lr(c: ml_collections.ConfigDict) -> None:
  """``:hard``: SGD lr 0.02 (joint stage 0.002) instead of 0.1 (0.01). On ``synthetic_actions/hard`` at
  lr 0.1 one of three one-pass seeds stayed on the ln 24 plateau for all 2,400 steps; at 0.02 all
  three left it (docs/experiments.md, "Harder synthetic benchmark"). The staged schedule has not run
  at this lr yet."""
  c.optimizer.lr = 0.02
  c.stages.joint_lr = 0.002


def online(c: ml_collections.ConfigDict, num_confusing: float = 5) -> None:
  """The one-run alternative: everything trained jointly from step 0, the CSM from a per-class EMA of the
  statistics (momentum 0.99) after ``csm_warmup_steps``, and a fixed N (the top-N rule needs a trained UN)."""
  c.procedure = "single"
  c.model.update(stats_momentum=0.99, csm_num_confusing=num_confusing)


def synthetic_segments(c: ml_collections.ConfigDict, ablation: bool = False) -> None:
  """CPU-sized: ResNet-18 top-heavy U2S, width 8, 8 segments of 40x40 on ``synthetic_actions``
  (whose left/right classes swap under a flip, so flipping uses its label map), one centre view at test;
  stages of 600 / 300 / 300 steps (``ablation``: 200 / 100 / 100), SGD lr 0.1 (joint 0.01) with cosine
  decay; the online schedule trains as many steps in one run."""
  c.model.update(depth=18, width=8, csm_warmup_steps=150 if ablation else 300, dropout_rate=0.0)
  c.dataset.update(name="synthetic_actions", train_split="train", eval_split="test")
  c.input.update(sampler="segments", num_segments=8, resize=(46,), scale_jitter=(40, 52), crop=40,
                 flip=True, test_spatial="center", test_flip=False)
  c.optimizer.update(lr=0.1, schedule="cosine", warmup_steps=100, weight_decay=1e-4, decay_steps=())
  c.stages.update(steps=(200, 100, 100) if ablation else (600, 300, 300), joint_lr=0.01)
  c.batch_size = 16
  c.num_train_steps = sum(c.stages.steps)
  c.checkpoint_every_steps = 400
  c.log_every_steps = 50
  c.eval.batch_size = 32
