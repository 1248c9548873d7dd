"""ATW (paper 002) on UCF101, one stream per config; ``:synthetic`` runs on a 2-core CPU.

Prepare once (frames at short side 256 + TV-L1 and warped flow; needs ``pip install -e ".[flow]"``):
  python -m vidrec.data.prepare ucf101 --manual_dir M --config split1 --short_side 256 --flow tvl1 --warped_flow
Three streams, then fusion 1 : 1 : 0.5 of the pre-softmax video scores (Sec. 3.3):
  python train.py --config configs/atw_ucf101.py:rgb --workdir W_rgb
  python train.py --config configs/atw_ucf101.py:flow --workdir W_flow
  python train.py --config configs/atw_ucf101.py:warped_flow --workdir W_wflow
  python -m vidrec.tools.fuse --member W_rgb/eval/test_scores.npz:logits:1 --member W_flow/eval/test_scores.npz:logits:1 \\
      --member W_wflow/eval/test_scores.npz:logits:0.5 --out W_fused

Variants (combine with commas): ``rgb`` (default) | ``flow`` | ``warped_flow``, ``split1`` (default) |
``split2`` | ``split3``, ``synthetic``, ``positional`` (the positional reading of the attention layer).
Consensus (Table 1): --config.model.consensus=avg|max|attention|positional.
"""
from configs.recipes.atw import atw_config

SPLITS = ("split1", "split2", "split3")


def get_config(arg: str = ""):
  return atw_config(arg, "ucf101", SPLITS)
