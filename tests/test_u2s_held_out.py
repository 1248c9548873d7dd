"""U2S's N on held-out videos (vidrec.procedures.u2s.held_out_splits) and SSv2's unflipped test views."""
from __future__ import annotations

import importlib.util
import pathlib

import pytest

from vidrec import procedures
from vidrec.errors import UserError


def _sthv2(arg: str = ""):
  spec = importlib.util.spec_from_file_location(
      "u2s_sthv2", pathlib.Path(__file__).parents[1] / "configs" / "u2s_sthv2.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def test_n_is_read_on_validation_or_a_held_out_tenth_of_train():
  held_out = procedures.u2s.held_out_splits
  c = _sthv2()
  assert c.stages.top_n_split == "auto" and c.stages.held_out == 0.1
  assert held_out(c, ["train", "validation"]) == ("train", "validation")
  assert held_out(c, ["train", "test"]) == ("train[:90%]", "train[90%:]")
  c.stages.held_out = 0.25
  assert held_out(c, ["train", "test"]) == ("train[:75%]", "train[75%:]")
  c.stages.top_n_split = "test"                       # named: used as given, training split unchanged
  assert held_out(c, ["train", "validation"]) == ("train", "test")
  c.stages.top_n_split = ""                           # the training split itself (the old default)
  assert held_out(c, ["train"]) == ("train", "train")
  c.stages.top_n_split, c.dataset.train_split = "auto", "train[:25%]"
  with pytest.raises(UserError, match="top_n_split="):
    held_out(c, ["train", "test"])
  c.dataset.train_split, c.stages.held_out = "train", 1.0
  with pytest.raises(UserError, match="held_out"):
    held_out(c, ["train", "test"])


def test_ssv2_test_views_are_not_flipped():
  c = _sthv2()
  assert (c.input.flip, c.input.test_spatial, c.input.test_flip) == (False, "five", False)
