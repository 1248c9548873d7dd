"""SGN (paper 000) on HMDB51: small data, so SGM-M (Table III); ``:synthetic`` runs on a 2-core CPU.

  python train.py --config configs/sgn_hmdb51.py --workdir workdir/sgn_hmdb51            # single SGM-M at RIB3b
  python train.py --config configs/sgn_hmdb51.py:fusion --workdir workdir/sgn_hmdb51_f   # fusion: all RIBs

Variants (combine with commas): ``fusion``, ``frame`` (the single-frame 2D ResNet-18 of
SGN + Frame), ``split1`` (default) / ``split2`` / ``split3``, ``synthetic``, ``hard``. Schedule: x0.1 every 5,000 iterations.

SGN + Frame (Tables V-VII): train both, evaluate both with mean-softmax scores, then fuse:
  python train.py --config configs/sgn_hmdb51.py:frame --workdir W_frame
  python eval.py --config configs/sgn_hmdb51.py --workdir W_sgn --config.eval.aggregation=mean_softmax
  python -m vidrec.tools.fuse --member W_sgn/eval/test_scores.npz:logits:1 --member W_frame/eval/test_scores.npz:logits:1 --out W_fused
"""
from configs.recipes.sgn import sgn_config


def get_config(arg: str = ""):
  return sgn_config(arg, "hmdb51", "M", "all_rib", decay_every=5_000)
