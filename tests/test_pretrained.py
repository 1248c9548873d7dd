"""Every real-data paper recipe starts from the weights its paper starts from (issue 29).

The init plans are computed at paper size from shapes only: the model's variables by ``jax.eval_shape``,
the converted checkpoint as zero-memory broadcast arrays of the shapes ``vidrec.convert`` writes; nothing
of paper size is materialised, except in the slow test of docs/pretrained.md's command sequences, which
saves a random-weight stand-in of each paper's file as a user downloads it and converts it by the CLI."""
from __future__ import annotations

import importlib
import json
import subprocess
import sys
import pathlib

import jax
import numpy as np
import pytest

from conftest import tiny_config
from vidrec import config as config_lib
from vidrec import init_from, optim, param_paths, pretrained, procedures, trainer
from vidrec.convert import torchvision_map as tm
from vidrec.errors import UserError
from vidrec.models import atw, build_model, layers

ROOT = pathlib.Path(__file__).parents[1]


def _config(name: str, variant: str = ""):
  return importlib.import_module(f"configs.{name}").get_config(variant)


def _abstract(config, num_classes: int) -> dict:
  model = build_model(config.model, num_classes)
  tx, _ = optim.make_optimizer(config.optimizer, config.num_train_steps)
  with layers.using_conv_impl("native"):                       # shapes only: nothing measured
    state = jax.eval_shape(lambda r: trainer.init_state(model, tx, config, r), jax.random.key(0))
  return {"params": state.params, **state.model_state}


def _converted(arch: str, **values: np.ndarray) -> dict:
  """What ``python -m vidrec.convert torchvision --arch ARCH`` writes, as broadcast zeros (``values``:
  flat names given real arrays)."""
  flat = {k: np.broadcast_to(np.float32(0), s) for k, s in tm.variable_shapes(arch, 1000).items()}
  flat.update({k.replace(".", "/"): v for k, v in values.items()})
  return tm.with_copies(arch, param_paths.unflatten(flat))


def _plan(config, num_classes: int, checkpoint: dict) -> init_from.Plan:
  return init_from.make_plan(checkpoint, _abstract(config, num_classes), config.init_from,
                             param_paths.parse_patterns(config.init_skip), config.init_adapt, config.init_prefix)


def _by_module(plan: init_from.Plan) -> dict[str, set[str]]:
  out: dict[str, set[str]] = {}
  for name, status in plan.status.items():
    out.setdefault(name.split("/")[1], set()).add(status)
  return out


LOADED = {"loaded", "adapted"}
# config, variant, classes, source arch, the modules the paper adds (fresh), checkpoint arrays left unused
PAPER_CONFIGS = {
    "sgn": ("sgn_ucf101", "", 101, "r3d_18", {"fc", "sgm3b"}, 0),
    "resnet3d": ("resnet3d_hmdb51", "", 51, "r3d_18", {"fc"}, 0),
    "sgn_frame": ("sgn_ucf101", "frame", 101, "resnet18", {"fc"}, 0),
    "joint_lstm": ("joint_lstm_ucf101", "", 101, "vgg16", None, 6),             # None: all but vgg
    "atw_rgb": ("atw_ucf101", "rgb", 101, "resnet50", {"fc", "consensus"}, 0),
    "atw_flow": ("atw_hmdb51", "flow", 51, "resnet50", {"fc", "consensus"}, 0),
    "u2s": ("u2s_sthv2", "", 174, "u2s_resnet50",
            {"un_head", "csn_head", "mask_net", "class_sparsity", "class_count", "updates"}, 0),
    "u2s_tsm": ("u2s_sthv2", "tsm", 174, "tsm_resnet50",                      # online: N fixed at 5
                {"un_head", "csn_head", "mask_net", "class_sparsity", "class_count", "updates"}, 0),
}


def _paper_config(key: str):
  """The real config of ``PAPER_CONFIGS[key]`` as it starts training (U2S: N as the CSM pass sets it)."""
  name, variant = PAPER_CONFIGS[key][:2]
  config = _config(name, variant)
  if key == "u2s":
    config.model.csm_num_confusing = 5
  return config


def _check_backbone_loaded(plan: init_from.Plan, fresh: set[str] | None) -> set[str]:
  """Asserts that no module is half-loaded and that exactly ``fresh`` (None: all but ``vgg``) is not
  loaded; returns the loaded modules."""
  modules = _by_module(plan)
  loaded = {m for m, s in modules.items() if s <= LOADED}
  assert {m for m, s in modules.items() if s & LOADED} == loaded            # no module half-loaded
  assert set(modules) - loaded == (fresh if fresh is not None else set(modules) - {"vgg"})
  return loaded


@pytest.mark.parametrize("key", sorted(PAPER_CONFIGS))
def test_plan_loads_the_whole_backbone_and_leaves_fresh_only_what_the_paper_adds(key):
  _, _, classes, arch, fresh, unused = PAPER_CONFIGS[key]
  config = _paper_config(key)
  assert tm.ARCHS.get(pretrained.SOURCES.get(config.pretrained).arch) is tm.ARCHS.get(arch)
  assert config.init_from == pretrained.default_dir(config.pretrained)
  plan = _plan(config, classes, _converted(arch))
  loaded = _check_backbone_loaded(plan, fresh)
  assert len(plan.unused) == unused
  if key == "joint_lstm":
    assert loaded == {"vgg"} and all(u.split("/")[2] in ("fc6", "fc7", "fc8") for u in plan.unused)


def test_fstcn_aux_stage_loads_vggm_and_trains_fresh_only_fc7_and_the_classifier(tmp_path):
  config = procedures.fstcn.stage_config(_config("fstcn_ucf101"), 1, str(tmp_path))
  plan = _plan(config, 101, _converted("vggm"))
  modules = _by_module(plan)
  assert {m for m, s in modules.items() if s <= LOADED} == {"lower_scls", "conv5", "scl_fc6"}
  assert {m: s for m, s in modules.items() if not s <= LOADED} == {"scl_fc7": {"reinit"}, "classifier_aux": {"reinit"}}


def test_atw_flow_gets_tsn_cross_modality_kernel():
  config = _config("atw_ucf101", "flow")
  assert config.init_adapt == "channel_mean" and _config("atw_ucf101", "synthetic,flow").init_adapt == "channel_mean"
  rgb = np.random.default_rng(0).standard_normal((7, 7, 3, 64)).astype(np.float32)
  plan = _plan(config, 101, _converted("resnet50", **{"params.conv1.conv.kernel": rgb}))
  assert [k for k, s in plan.status.items() if s == "adapted"] == ["params/conv1/conv/kernel"]
  np.testing.assert_allclose(plan.values["params/conv1/conv/kernel"], atw.cross_modality_kernel(rgb, 10), rtol=1e-6)


def test_u2s_res3d_is_inflated_into_both_branches():
  config = _config("u2s_sthv2")
  config.model.csm_num_confusing = 5
  assert config.model.preact is False and config.init_adapt == "i3d_inflate"
  plan = _plan(config, 174, _converted("u2s_resnet50"))
  adapted = {k for k, s in plan.status.items() if s == "adapted"}
  assert adapted and all(k.split("/")[1] in ("un_top", "csn_top") and k.endswith("kernel") for k in adapted)
  assert {k.replace("csn_top", "un_top") for k in adapted if "/csn_top/" in k} == {
      k for k in adapted if "/un_top/" in k}
  kernel = plan.values["params/un_top/group2_block1/conv2/conv/kernel"]
  assert kernel.shape == (3, 3, 3, 256, 256)


def test_u2s_tsm_loads_tsm_kinetics_groups_into_both_branches_without_inflation():
  config = _config("u2s_sthv2", "tsm")
  assert config.model.base == "tsm" and config.model.preact is False and config.init_adapt == ""
  assert config.model.tsm_fold_div == 8 and config.input.num_segments == 8          # TSM's shift_div, segments
  kernel = np.random.default_rng(0).standard_normal((3, 3, 256, 256)).astype(np.float32)
  plan = _plan(config, 174, _converted("tsm_resnet50", **{"params.un_top.group2_block1.conv2.conv.kernel": kernel}))
  assert "adapted" not in set(plan.status.values())
  for branch in ("un_top", "csn_top"):
    np.testing.assert_array_equal(plan.values[f"params/{branch}/group2_block1/conv2/conv/kernel"], kernel)
  assert plan.status["params/un_head/kernel"] == "reinit"                    # Kinetics' 400 classes


@pytest.mark.parametrize("name,variant", [("sgn_ucf101", "synthetic"), ("sgn_ucf101", "hard"),
                                          ("joint_lstm_hmdb51", "synthetic"), ("atw_ucf101", "synthetic"),
                                          ("u2s_sthv2", "hard"), ("fstcn_ucf101", "synthetic")])
def test_synthetic_variants_declare_nothing_and_start_from_scratch(name, variant):
  config = _config(name, variant)
  assert config.pretrained == "" and config.init_from == ""
  assert pretrained.resolve(config).init_from == ""


def test_missing_weights_refuse_with_the_file_the_command_and_the_flag(tmp_path):
  config = _config("joint_lstm_ucf101")
  config.init_from = str(tmp_path / "vgg")
  with pytest.raises(UserError) as e:
    pretrained.resolve(config)
  message = str(e.value)
  assert "vgg16-397923af.pth" in message and "--config.from_scratch=True" in message
  command = f"python -m vidrec.convert torchvision --arch vgg16 --checkpoint vgg16-397923af.pth --out {tmp_path}/vgg"
  assert command in message
  assert "\n" not in message                                                     # one paragraph


@pytest.mark.slow
def test_train_py_exits_2_without_the_weights(tmp_path):
  result = subprocess.run(
      [sys.executable, "train.py", "--config", "configs/sgn_ucf101.py", "--workdir", str(tmp_path / "w"),
       f"--config.init_from={tmp_path}/none"], cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert result.returncode == 2, result.stderr[-2000:]
  assert "python -m vidrec.convert torchvision --arch r3d_18" in result.stderr
  assert not (tmp_path / "w").exists()                                          # nothing started


def test_partial_bn_needs_pretrained_batch_norm_statistics():
  config = _config("atw_ucf101", "rgb")
  config.from_scratch = True
  with pytest.raises(UserError, match="partial_bn=False --config.optimizer.frozen=''"):
    pretrained.resolve(config)
  config.model.partial_bn = False
  assert pretrained.resolve(config).init_from == ""
  config = _config("atw_ucf101", "rgb")
  checkpoint = _converted("resnet50")
  del checkpoint["batch_stats"]                                            # weights without statistics
  with pytest.raises(UserError, match="not in the checkpoint"):
    init_from.check_partial_bn(config, _plan(config, 101, checkpoint))


@pytest.mark.slow
def test_from_scratch_warns_once_and_is_recorded_in_run_json(data_dir, tmp_path, capsys):
  config = tiny_config(data_dir)
  config.update(pretrained="r3d_18_kinetics400", init_from=str(tmp_path / "missing"), num_train_steps=1)
  with pytest.raises(UserError):
    procedures.train(config, str(tmp_path / "refused"))
  config.from_scratch = True
  procedures.train(config, str(tmp_path / "run"))
  warnings = [l for l in capsys.readouterr().out.splitlines() if l.startswith("warning: --config.from_scratch")]
  assert len(warnings) == 1 and "r3d_18-b3b3357e.pth" in warnings[0]
  start = json.loads((tmp_path / "run" / "run.json").read_text())["starts"][-1]
  assert start["weights"] == {"init_from": "", "pretrained": "r3d_18_kinetics400", "from_scratch": True}


def _save(directory, variables):
  init_from.save_variables(str(directory), variables, {"arch": "test"})


def test_u2s_stage2_csn_top_starts_from_the_stage1_un_or_the_pretrained_res3d(tmp_path):
  config = _config("u2s_sthv2", "synthetic")
  assert config.stages.csn_init == "un_top" == _config("u2s_sthv2").stages.csn_init          # the default
  stage1 = {"params": {"un_top": {"w": np.zeros(2)}, "res2d": {"w": np.zeros(2)}},
            "batch_stats": {"un_top": {"m": np.zeros(2)}}}
  assert procedures.u2s.csn_top_init(config, stage1)[1] == "stage 1 (un_top)"
  _save(tmp_path / "conv", {"params": {"un_top": {"w": np.ones(2)}, "csn_top": {"w": np.full(2, 2.0)}},
                            "batch_stats": {"csn_top": {"m": np.full(2, 3.0)}}})
  config.init_from = str(tmp_path / "conv")
  assert procedures.u2s.csn_top_init(config, stage1)[1] == "stage 1 (un_top)"   # un_top even with weights
  config.init_from = ""
  config.stages.csn_init = "pretrained"
  top, origin = procedures.u2s.csn_top_init(config, stage1)                 # no pretrained weights: UN's
  assert origin == "stage 1 (un_top)" and top["params"] is stage1["params"]["un_top"]
  config.init_from = str(tmp_path / "conv")
  top, origin = procedures.u2s.csn_top_init(config, stage1)
  assert origin == f"{tmp_path}/conv (csn_top)"
  np.testing.assert_array_equal(top["params"]["w"], [2.0, 2.0])
  np.testing.assert_array_equal(top["batch_stats"]["m"], [3.0, 3.0])
  _save(tmp_path / "run", {"params": {"un_top": {"w": np.ones(2)}}})           # e.g. a UN pre-trained run
  config.init_from = str(tmp_path / "run")
  top, origin = procedures.u2s.csn_top_init(config, stage1)
  assert origin.endswith("(un_top)") and top["params"]["w"].tolist() == [1.0, 1.0]
  config.stages.csn_init = "un_top"
  assert procedures.u2s.csn_top_init(config, stage1)[1] == "stage 1 (un_top)"
  config.stages.csn_init = "random"
  with pytest.raises(UserError, match="csn_init"):
    procedures.u2s.check(config)


def test_unknown_source_is_a_config_error():
  config = config_lib.base_config()
  config.update(pretrained="imagenet", from_scratch=True)
  with pytest.raises(KeyError, match="r3d_18_kinetics400"):
    pretrained.resolve(config)


def _tsm_checkpoint(state: dict) -> dict:
  """What TSM's main.py saves (``save_checkpoint``): the state dict of ``nn.DataParallel(TSN)``."""
  return {"epoch": 50, "arch": "resnet50", "state_dict": {f"module.{k}": v for k, v in state.items()},
          "optimizer": {"state": {}, "param_groups": [{"lr": 2e-4, "name": "normal_weight", "params": [0]}]},
          "best_prec1": 71.2}


# how a source's .pth holds its state dict as downloaded (default: torchvision's, the plain state dict);
# its .safetensors holds the plain state dict, as a user re-saves it (docs/pretrained.md)
PTH_LAYOUTS = {"tsm_resnet50": _tsm_checkpoint}


def _download_stand_ins(arch: str, directory: pathlib.Path) -> list[pathlib.Path]:
  """A random-weight state dict of ``arch``'s source network (torchvision names and layouts, 1000 ImageNet
  or 400 Kinetics classes) saved as users download it: .safetensors, and .pth where torch is installed
  (``PTH_LAYOUTS``)."""
  from safetensors.numpy import save_file  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  shapes = tm.variable_shapes(arch, 400 if tm.ARCHS.get(arch).video else 1000)
  variables = param_paths.unflatten({k: 0.01 * rng.standard_normal(s, dtype=np.float32) for k, s in shapes.items()})
  state = tm.to_torch(arch, variables)
  files = [directory / f"{arch}.safetensors"]
  save_file(state, str(files[0]))
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError:
    return files
  files.append(directory / f"{arch}.pth")
  torch.save(PTH_LAYOUTS.get(arch, dict)({k: torch.from_numpy(v) for k, v in state.items()}), files[1])
  return files


@pytest.mark.slow
@pytest.mark.parametrize("key", sorted(PAPER_CONFIGS) + ["fstcn"])
def test_each_papers_command_sequence_on_a_downloaded_stand_in(key, data_dir, tmp_path, capsys):
  """docs/pretrained.md's sequence per paper: downloaded file -> ``vidrec.convert`` CLI -> ``--dry_run``
  exits 0 and its plan loads every backbone array, leaving fresh only what the paper adds (FstCN: its
  stage 1, the auxiliary network, loads VGG-M but fc7 and the classifier)."""
  from vidrec import dry_run  # pylint: disable=g-import-not-at-top
  from vidrec.convert import __main__ as convert_cli  # pylint: disable=g-import-not-at-top
  arch, fresh = ("vggm", {"scl_fc7", "classifier_aux"}) if key == "fstcn" else PAPER_CONFIGS[key][3:5]
  for i, checkpoint in enumerate(_download_stand_ins(arch, tmp_path)):
    out = tmp_path / f"converted{i}"
    convert_cli.main(["torchvision", "--arch", arch, "--checkpoint", str(checkpoint), "--out", str(out)])
    config = _config("fstcn_ucf101") if key == "fstcn" else _paper_config(key)
    assert config.init_from == pretrained.default_dir(config.pretrained)
    config.update(init_from=str(out))
    config.dataset.update(name="synthetic_actions/tiny", data_dir=data_dir)
    capsys.readouterr()
    assert dry_run.run(config, str(tmp_path / "w")) == 0
    assert "would start" in capsys.readouterr().out
    if key == "fstcn":
      config = procedures.fstcn.stage_config(config, 1, str(tmp_path / "w"))
    _check_backbone_loaded(_plan(config, 12, init_from.load_variables(str(out))[0]), fresh)
