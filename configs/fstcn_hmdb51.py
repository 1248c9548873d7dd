"""FstCN (paper 004) on HMDB51; ``:synthetic`` trains on a 2-core CPU in minutes.

  python -m vidrec.data.prepare hmdb51 --manual_dir /data/hmdb51 --config split1 --short_side 256   # once per split
  python train.py --config configs/fstcn_hmdb51.py --workdir workdir/fstcn_hmdb51
  python train.py --config configs/fstcn_hmdb51.py:synthetic --workdir workdir/fstcn_synth

Variants (combine with commas): ``split1`` (default) / ``split2`` / ``split3``, ``synthetic``.
Table 2 rows: ``--config.model.paths=scl|tcl``, ``--config.input.num_test_clips=1``,
``--config.eval.aggregation=mean_softmax`` (averaging fusion); Table 1: ``--config.model.tcl_kernels``.
"""
from configs.recipes.common import parse_variant
from configs.recipes.fstcn import fstcn_paper_recipe, fstcn_synthetic
from vidrec.config import base_config

SPLITS = ("split1", "split2", "split3")


def get_config(arg: str = ""):
  options = parse_variant(arg, SPLITS + ("synthetic",))
  split = next((s for s in SPLITS if s in options), "split1")
  c = base_config()
  fstcn_paper_recipe(c, f"hmdb51/{split}_s256")
  if "synthetic" in options:
    fstcn_synthetic(c)
  return c
