"""Every config file and variant loads and passes validation (names exist in their registries)."""
import glob
import importlib.util
import os

import pytest

from configs.recipes import common
from vidrec import config as config_lib
from vidrec.data import synthetic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(p for p in glob.glob(os.path.join(ROOT, "configs", "*.py")) if not p.endswith("__init__.py"))


def _load(path):
  spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.mark.parametrize("path", CONFIGS, ids=os.path.basename)
@pytest.mark.parametrize("variant", ["", "synthetic"])
def test_config_loads_and_validates(path, variant):
  config = _load(path).get_config(variant)
  config_lib.validate(config)
  assert config.dataset.name.startswith("synthetic_actions") == (variant == "synthetic")


@pytest.mark.parametrize("name", ["sgn_ucf101", "sgn_hmdb51", "sgn_penn"])
def test_sgn_variants(name):
  path = os.path.join(ROOT, "configs", f"{name}.py")
  fusion = _load(path).get_config("fusion")
  assert fusion.model.sgm_blocks in ("4a,4b", "all_rib")
  frame = _load(path).get_config("synthetic,frame")
  config_lib.validate(frame)
  assert frame.model.name == "resnet2d_frame" and frame.input.clip_len == 1 and frame.model.width == 8


@pytest.mark.parametrize("name", ["resnet3d_ucf101", "sgn_ucf101", "sgn_hmdb51", "u2s_sthv2", "fstcn_ucf101",
                                  "joint_lstm_ucf101", "atw_ucf101"])
def test_hard_is_the_synthetic_setting_on_synthetic_actions_hard_for_twice_the_steps(name):
  module = _load(os.path.join(ROOT, "configs", f"{name}.py"))
  synthetic, hard = module.get_config("synthetic"), module.get_config("hard")
  config_lib.validate(hard)
  expected = "synthetic_actions/hard_flow" if name == "atw_ucf101" else "synthetic_actions/hard"
  assert hard.dataset.name == expected and synthetic.dataset.name.startswith("synthetic_actions")
  assert hard.num_train_steps == 2 * synthetic.num_train_steps
  if "stages" in synthetic:
    assert hard.stages.steps == tuple(2 * s for s in synthetic.stages.steps)
    assert sum(hard.stages.steps) == hard.num_train_steps
  if name == "u2s_sthv2":            # its own lr on hard (configs/recipes/u2s.py:hard_lr)
    assert (hard.optimizer.lr, hard.stages.joint_lr) == (0.02, 0.002)
    hard.optimizer.lr = synthetic.optimizer.lr
  for key in ("input", "optimizer", "model"):
    assert hard[key].to_dict() == synthetic[key].to_dict(), key


@pytest.mark.parametrize("stream", ["rgb", "flow", "warped_flow"])
def test_atw_hard_trains_every_stream_on_the_hard_scenes_with_flow(stream):
  hard = _load(os.path.join(ROOT, "configs", "atw_ucf101.py")).get_config(f"{stream},hard")
  config_lib.validate(hard)
  assert hard.input.modality == stream and hard.dataset.name == "synthetic_actions/hard_flow"
  builder_config = {c.name: c for c in synthetic.SyntheticActions.BUILDER_CONFIGS}["hard_flow"]
  assert builder_config.hard is not None and builder_config.flow and builder_config.warped_flow


def test_unknown_variant_is_an_error():
  with pytest.raises(ValueError, match="Unknown config variant"):
    _load(os.path.join(ROOT, "configs", "sgn_ucf101.py")).get_config("synthetc")
  options = common.parse_variant("synthetic, fusion", ("fusion", "synthetic"))
  assert options == {"synthetic", "fusion"}
