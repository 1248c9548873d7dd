"""ResNet3D-18 on UCF101 (the SGN paper's baseline, Sec. IV-B); ``:synthetic`` runs on a 2-core CPU.

  python -m vidrec.data.prepare ucf101 --manual_dir /data/ucf101 --config split1   # once per split
  python train.py --config configs/resnet3d_ucf101.py --workdir workdir/r3d_ucf101
  python train.py --config configs/resnet3d_ucf101.py:synthetic --workdir workdir/r3d_synth

Variants (combine with commas): ``split1`` (default) / ``split2`` / ``split3``, ``synthetic``.
"""
from configs.recipes import common, sgn
from vidrec.config import base_config

SPLITS = ("split1", "split2", "split3")


def get_config(arg: str = ""):
  options = common.parse_variant(arg, SPLITS + ("synthetic",))
  split = next((s for s in SPLITS if s in options), "split1")
  c = base_config()
  c.model.update(name="resnet3d", width=64, num_stages=4, blocks_per_stage=2, block="r3d", rcb="torchvision",
                 dropout=0.0)
  sgn.sgn_paper_recipe(c, f"ucf101/{split}", decay_every=10_000)
  if "synthetic" in options:
    common.synthetic_clips(c)
  return c
