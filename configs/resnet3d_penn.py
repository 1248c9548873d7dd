"""ResNet3D-18 on Penn Action (the SGN paper's baseline, Sec. IV-B); ``:synthetic`` runs on a 2-core CPU.

  python -m vidrec.data.prepare penn_action --manual_dir /data/Penn_Action   # once
  python train.py --config configs/resnet3d_penn.py --workdir workdir/r3d_penn

Penn Action has one train/test split (15 classes, 2,326 sequences); the paper uses RGB frames only
(not the joint annotations). Schedule: x0.1 every 5,000 iterations.
"""
from configs.recipes import common, sgn
from vidrec.config import base_config


def get_config(arg: str = ""):
  options = common.parse_variant(arg, ("synthetic",))
  c = base_config()
  c.model.update(name="resnet3d", width=64, num_stages=4, blocks_per_stage=2, block="r3d", rcb="torchvision",
                 dropout=0.0)
  sgn.sgn_paper_recipe(c, "penn_action/default", decay_every=5_000)
  if "synthetic" in options:
    common.synthetic_clips(c)
  return c
