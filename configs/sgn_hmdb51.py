"""SGN (paper 000) on HMDB51: small data, so SGM-M (Table III); ``:synthetic`` runs on a 2-core CPU.

  python train.py --config configs/sgn_hmdb51.py --workdir workdir/sgn_hmdb51            # single SGM-M at RIB3b
  python train.py --config configs/sgn_hmdb51.py:fusion --workdir workdir/sgn_hmdb51_f   # fusion: all RIBs

Variants (combine with commas): ``fusion``, ``split1`` (default) / ``split2`` / ``split3``, ``synthetic``. Schedule: x0.1 every 5,000 iterations.
"""
from vidrec.config import base_config, parse_variant, sgn_model, sgn_paper_recipe, synthetic_clips

SPLITS = ("split1", "split2", "split3")


def get_config(arg: str = ""):
  options = parse_variant(arg, SPLITS + ("fusion", "synthetic"))
  split = next((s for s in SPLITS if s in options), "split1")
  c = base_config()
  sgn_model(c, "M", "all_rib" if "fusion" in options else "3b")
  sgn_paper_recipe(c, f"hmdb51/{split}", decay_every=5_000)
  if "synthetic" in options:
    synthetic_clips(c)
  return c
