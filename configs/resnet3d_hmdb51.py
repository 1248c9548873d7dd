"""ResNet3D-18 on HMDB51 (the SGN paper's baseline, Sec. IV-B); ``:synthetic`` runs on a 2-core CPU.

  python -m vidrec.data.prepare hmdb51 --manual_dir /data/hmdb51 --config split1   # once per split
  python train.py --config configs/resnet3d_hmdb51.py --workdir workdir/r3d_hmdb51
  python train.py --config configs/resnet3d_hmdb51.py:split2 --workdir workdir/r3d_hmdb51_split2

Variants (combine with commas): ``split1`` (default) / ``split2`` / ``split3`` (the official 70/30
splits; the paper reports split 1), ``synthetic``, ``hard`` (synthetic_actions/hard). Schedule: x0.1 every 5,000 iterations.
"""
from configs.recipes.sgn import resnet3d_config


def get_config(arg: str = ""):
  return resnet3d_config(arg, "hmdb51", decay_every=5_000)
