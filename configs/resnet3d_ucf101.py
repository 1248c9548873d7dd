"""ResNet3D-18 on UCF101 (the SGN paper's baseline, Sec. IV-B); ``:synthetic`` runs on a 2-core CPU.

  python -m vidrec.data.prepare ucf101 --manual_dir /data/ucf101 --config split1   # once per split
  python train.py --config configs/resnet3d_ucf101.py --workdir workdir/r3d_ucf101
  python train.py --config configs/resnet3d_ucf101.py:synthetic --workdir workdir/r3d_synth

Variants (combine with commas): ``split1`` (default) / ``split2`` / ``split3``, ``synthetic``, ``hard``
(the synthetic setting on ``synthetic_actions/hard`` for twice the steps, issue 16).
"""
from configs.recipes.sgn import resnet3d_config


def get_config(arg: str = ""):
  return resnet3d_config(arg, "ucf101", decay_every=10_000)
