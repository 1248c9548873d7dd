"""ATW (paper 002) on UCF101, one stream per config (``:rgb`` | ``:flow`` | ``:warped_flow``, a split,
``synthetic``, ``positional``); preparation, the three streams and their fusion as commands:
``configs/recipes/atw.py``.
"""
from configs.recipes.atw import atw_config

SPLITS = ("split1", "split2", "split3")


def get_config(arg: str = ""):
  return atw_config(arg, "ucf101", SPLITS)
