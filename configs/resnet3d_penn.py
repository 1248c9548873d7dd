"""ResNet3D-18 on Penn Action (the SGN paper's baseline, Sec. IV-B); ``:synthetic`` runs on a 2-core CPU.

  python -m vidrec.data.prepare penn_action --manual_dir /data/Penn_Action   # once
  python train.py --config configs/resnet3d_penn.py --workdir workdir/r3d_penn

Penn Action has one train/test split (15 classes, 2,326 sequences); the paper uses RGB frames only
(not the joint annotations). Schedule: x0.1 every 5,000 iterations.
"""
from configs.recipes.sgn import resnet3d_config


def get_config(arg: str = ""):
  return resnet3d_config(arg, "penn_action", decay_every=5_000, splits=())
