"""Recipes of the U2S paper (003): the U2S model and loss keys, and its CPU-sized ``:synthetic`` setting."""
from __future__ import annotations

import ml_collections


def u2s_model(c: ml_collections.ConfigDict, csm_warmup_steps: int) -> None:
  """U2S (paper 003): every ``config.model`` key of ``vidrec.models.u2s`` with its default (ResNet-50
  top-heavy base, the full U2S variant) and the U2S loss (UN + CSN terms, Eq. 5 weight regulariser)."""
  c.model.update({
      "name": "u2s", "depth": 50, "width": 64, "base": "top_heavy", "preact": None, "variant": "u2s",
      "mask_norm": "sigmoid_residual", "csm_distance": "cosine", "csm_alpha": None,
      "csm_num_confusing": 5, "csm_warmup_steps": csm_warmup_steps, "stats_momentum": 0.99,
      "combine": "mean_softmax", "combine_mn": False, "tsm_fold_div": 8, "dropout_rate": 0.5})
  c.loss.update({"name": "u2s", "w_regular_weight": 0.5, "w_similarity": "clipped_cosine"})
  c.eval.heads = ("logits", "logits_un", "logits_csn")


def synthetic_segments(c: ml_collections.ConfigDict, ablation: bool = False) -> None:
  """CPU-sized: ResNet-18 top-heavy U2S, width 8, 8 segments of 40x40 on ``synthetic_actions``
  (whose left/right classes swap under a flip, so flipping uses its label map); ``ablation``: the
  shorter schedule of the Table III ablations (docs/experiments.md)."""
  c.model.update(depth=18, width=8, csm_warmup_steps=150 if ablation else 300, dropout_rate=0.0)
  c.dataset.update(name="synthetic_actions", train_split="train", eval_split="test")
  c.input.update(num_segments=8, resize=(46,), scale_jitter=(40, 52), crop=40, flip=True)
  c.optimizer.update(lr=0.1, schedule="cosine", warmup_steps=100, weight_decay=1e-4, decay_steps=())
  c.batch_size = 16
  c.num_train_steps = 400 if ablation else 1200
  c.checkpoint_every_steps = 400
  c.log_every_steps = 50
  c.eval.batch_size = 32
