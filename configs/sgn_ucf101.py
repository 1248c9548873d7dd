"""SGN (paper 000) on UCF101: large data, so SGM-G (Table III); ``:synthetic`` runs on a 2-core CPU.

  python train.py --config configs/sgn_ucf101.py --workdir workdir/sgn_ucf101            # single SGM-G at RIB3b
  python train.py --config configs/sgn_ucf101.py:fusion --workdir workdir/sgn_ucf101_f   # fusion RCB4a + RIB4b
  python train.py --config configs/sgn_ucf101.py:synthetic --workdir workdir/sgn_synth

Variants (combine with commas): ``fusion``, ``frame`` (the single-frame 2D ResNet-18 of
SGN + Frame), ``split1`` (default) / ``split2`` / ``split3``, ``synthetic``, ``hard``
(the synthetic setting on ``synthetic_actions/hard`` for twice the steps, issue 16).
Any placement: --config.model.sgm_blocks="2a,2b" | all_rib | all_rcb | all; cross-layer (Fig. 6):
--config.model.cross_layer="3b:2b" [--config.model.cross_layer_mode=direct].

On ``synthetic_actions/hard`` SGN follows the paper's protocol ("all of the training procedures are
pre-trained on Sport1M", Sec. IV-B), with ``synthetic_actions`` standing in for Sports-1M (from scratch
the SGM arms stay on the ln 24 plateau; docs/experiments.md, "SGN Tables I-II on hard"):
  python train.py --config configs/resnet3d_ucf101.py:synthetic --workdir W_pre
  python train.py --config configs/sgn_ucf101.py:hard --config.init_from=W_pre --config.num_train_steps=1200 --workdir W

SGN + Frame (Tables V-VII): train both, evaluate both with mean-softmax scores, then fuse:
  python train.py --config configs/sgn_ucf101.py:frame --workdir W_frame
  python eval.py --config configs/sgn_ucf101.py --workdir W_sgn --config.eval.aggregation=mean_softmax
  python -m vidrec.tools.fuse --member W_sgn/eval/test_scores.npz:logits:1 --member W_frame/eval/test_scores.npz:logits:1 --out W_fused
"""
from configs.recipes.sgn import sgn_config


def get_config(arg: str = ""):
  return sgn_config(arg, "ucf101", "G", "4a,4b", decay_every=10_000)
