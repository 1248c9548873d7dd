"""FstCN (paper 004) on UCF101; ``:synthetic`` trains on a 2-core CPU in minutes.

  python -m vidrec.data.prepare ucf101 --manual_dir /data/ucf101 --config split1 --short_side 256   # once per split
  python train.py --config configs/fstcn_ucf101.py --workdir workdir/fstcn_ucf101
  python train.py --config configs/fstcn_ucf101.py:synthetic --workdir workdir/fstcn_synth

Variants (combine with commas): ``split1`` (default) / ``split2`` / ``split3``, ``synthetic``, ``hard``; the
Table 1-2 overrides are listed in ``configs/recipes/fstcn.py:fstcn_config``.
"""
from configs.recipes.fstcn import fstcn_config


def get_config(arg: str = ""):
  return fstcn_config(arg, "ucf101")
