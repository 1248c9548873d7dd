"""vidrec.convert without torch: every torchvision tensor's name and shape is mapped (against a table
of torchvision 0.29's state dicts), vidrec -> torchvision -> vidrec is exact, the CLI converts a
.safetensors file into a directory init_from reads, and bad input is a clear error."""
import json
import os
import sys

import jax
import numpy as np
import pytest

from vidrec import convert, init_from, param_paths
from vidrec.convert import __main__ as convert_cli
from vidrec.convert import torchvision_map as tm

SHAPES_FILE = os.path.join(os.path.dirname(__file__), "data", "torchvision_state_dict_shapes.json")
TORCHVISION_SHAPES = json.load(open(SHAPES_FILE))
# torchvision's documented parameter counts (weights enums: num_params).
NUM_PARAMS = {"r3d_18": 33_371_472, "r2plus1d_18": 31_505_325, "mc3_18": 11_695_440, "vgg16": 138_357_544,
              "resnet18": 11_689_512, "resnet50": 25_557_032}


def _random_state(arch: str, rng: np.random.Generator, scale: float = 1.0) -> dict[str, np.ndarray]:
  return {k: scale * rng.standard_normal(s, dtype=np.float32) for k, s in TORCHVISION_SHAPES[arch].items()}


@pytest.mark.parametrize("arch", sorted(NUM_PARAMS))
def test_every_tensor_is_mapped_with_its_shape(arch):
  torch_shapes = {k: tuple(v) for k, v in TORCHVISION_SHAPES[arch].items()}
  table = tm.tensor_map(arch)
  assert sorted(t for t, _, _, _ in table) == sorted(torch_shapes)            # every torch tensor, once
  num_classes = torch_shapes[f"{tm.ARCHS.get(arch).classifier}.weight"][0]
  vidrec_shapes = tm.variable_shapes(arch, num_classes)
  assert sorted(v for _, v, _, _ in table) == sorted(vidrec_shapes)          # every vidrec variable, once
  for t, v, fwd, inv in table:
    x = np.zeros(torch_shapes[t], np.float32)
    assert fwd(x).shape == vidrec_shapes[v], (t, v)
    assert inv(fwd(x)).shape == torch_shapes[t]
  assert sum(int(np.prod(s)) for k, s in vidrec_shapes.items() if k.startswith("params/")) == NUM_PARAMS[arch]


VGGM_SHAPES = {  # pretrainedmodels' vggm state dict (features: conv 0, 4, 8, 10, 12; classif: Linear 0, 3, 6)
    "features.0.weight": (96, 3, 7, 7), "features.0.bias": (96,), "features.4.weight": (256, 96, 5, 5),
    "features.4.bias": (256,), "features.8.weight": (512, 256, 3, 3), "features.8.bias": (512,),
    "features.10.weight": (512, 512, 3, 3), "features.10.bias": (512,), "features.12.weight": (512, 512, 3, 3),
    "features.12.bias": (512,), "classif.0.weight": (4096, 18432), "classif.0.bias": (4096,),
    "classif.3.weight": (4096, 4096), "classif.3.bias": (4096,), "classif.6.weight": (1000, 4096),
    "classif.6.bias": (1000,)}


@pytest.mark.parametrize("arch,torch_shapes", [("u2s_resnet50", TORCHVISION_SHAPES["resnet50"]), ("vggm", VGGM_SHAPES)])
def test_u2s_and_fstcn_maps_use_every_tensor_with_its_shape(arch, torch_shapes):
  table = tm.tensor_map(arch)
  assert sorted(t for t, _, _, _ in table) == sorted(torch_shapes)
  vidrec_shapes = tm.variable_shapes(arch, 1000)
  assert sorted(v for _, v, _, _ in table) == sorted(vidrec_shapes)
  for t, v, fwd, inv in table:
    x = np.zeros(torch_shapes[t], np.float32)
    assert fwd(x).shape == vidrec_shapes[v] and inv(fwd(x)).shape == tuple(torch_shapes[t]), (t, v)
  params = sum(int(np.prod(s)) for k, s in vidrec_shapes.items() if k.startswith("params/"))
  assert params == {"u2s_resnet50": NUM_PARAMS["resnet50"], "vggm": 102_908_520}[arch]


def test_vggm_fc6_and_conv1_follow_vidrec_layouts():
  """fc6 reads torch's (C, H, W) flatten, vidrec flattens (H, W, C); conv1 reads BGR in torch, RGB here."""
  w = np.arange(4 * 512 * 2 * 2, dtype=np.float32).reshape(4, 512 * 2 * 2)          # [O, C*H*W], H = W = 2
  fwd, inv = next((f, i) for t, _, f, i in tm.tensor_map("vggm") if t == "classif.0.weight")
  kernel = fwd(w)
  c, h, x = 7, 1, 0
  np.testing.assert_array_equal(kernel[(h * 2 + x) * 512 + c], w[:, c * 4 + h * 2 + x])
  np.testing.assert_array_equal(inv(kernel), w)
  conv = np.arange(2 * 3 * 1 * 1, dtype=np.float32).reshape(2, 3, 1, 1)
  fwd = next(f for t, _, f, _ in tm.tensor_map("vggm") if t == "features.0.weight")
  np.testing.assert_array_equal(fwd(conv)[0, 0, :, 1], conv[1, ::-1, 0, 0])         # R <- torch's channel 2


def test_u2s_conversion_writes_both_branches(tmp_path):
  from safetensors.numpy import save_file
  rng = np.random.default_rng(5)
  state = {k: 0.01 * rng.standard_normal(s, dtype=np.float32) for k, s in TORCHVISION_SHAPES["resnet50"].items()}
  save_file(state, str(tmp_path / "r50.safetensors"))
  convert.convert_torchvision("u2s_resnet50", str(tmp_path / "r50.safetensors"), str(tmp_path / "out"))
  variables, meta = init_from.load_variables(str(tmp_path / "out"))
  assert meta["copies"] == [["un_top", "csn_top"]]
  np.testing.assert_array_equal(variables["params"]["csn_top"]["group2_block0"]["conv2"]["conv"]["kernel"],
                                np.transpose(state["layer3.0.conv2.weight"], (2, 3, 1, 0)))
  np.testing.assert_array_equal(variables["batch_stats"]["res2d"]["group1_block3"]["conv3"]["bn"]["var"],
                                state["layer2.3.bn3.running_var"])


def test_layout_transposes_match_hand_computed_values():
  conv3d = np.arange(2 * 3 * 3 * 1 * 1, dtype=np.float32).reshape(2, 3, 3, 1, 1)   # [O, I, kt, kh, kw]
  kernel = tm._conv_to_vidrec(conv3d)                                               # [kt, kh, kw, I, O]
  assert kernel.shape == (3, 1, 1, 3, 2)
  assert kernel[2, 0, 0, 1, 0] == conv3d[0, 1, 2, 0, 0] == 5
  dense = np.arange(6, dtype=np.float32).reshape(2, 3)                               # [O, I]
  state = {"fc.weight": dense}
  np.testing.assert_array_equal(tm.TENSORS["dense"][0][3](state["fc.weight"]), dense.T)


@pytest.mark.parametrize("arch", ["r3d_18", "r2plus1d_18", "mc3_18", "resnet18", "resnet50"])
def test_round_trip_is_exact(arch):
  rng = np.random.default_rng(0)
  flat = {k: rng.standard_normal(s, dtype=np.float32) for k, s in tm.variable_shapes(arch, 7).items()}
  variables = param_paths.unflatten(flat)
  state = tm.to_torch(arch, variables)
  assert {k: list(v.shape) for k, v in state.items() if not k.startswith(("fc.", "classifier.6"))} == {
      k: v for k, v in TORCHVISION_SHAPES[arch].items() if not k.startswith(("fc.", "classifier.6"))}
  back = param_paths.flatten(tm.to_vidrec(arch, state))
  assert back.keys() == flat.keys()
  for k in flat:
    np.testing.assert_array_equal(back[k], flat[k])


def test_cli_converts_safetensors_into_an_init_from_directory(tmp_path, capsys):
  from safetensors.numpy import save_file
  state = _random_state("resnet18", np.random.default_rng(1))
  state["bn1.num_batches_tracked"] = np.array(5, np.int64)                   # present in real files, unused
  save_file(state, str(tmp_path / "resnet18.safetensors"))
  convert_cli.main(["torchvision", "--arch", "resnet18", "--checkpoint", str(tmp_path / "resnet18.safetensors"),
                    "--out", str(tmp_path / "out")])
  lines = capsys.readouterr().out.strip().splitlines()
  assert len(lines) == 1
  summary = json.loads(lines[0])
  assert summary["arch"] == "resnet18" and summary["num_classes"] == 1000
  assert summary["params"] == NUM_PARAMS["resnet18"]
  assert summary["mapped"]["layer2.0.downsample.0.weight"] == "params/layer2_0/proj/conv/kernel"
  assert summary["mapped"]["bn1.running_var"] == "batch_stats/conv1/bn/var"
  assert len(summary["mapped"]) == len(TORCHVISION_SHAPES["resnet18"])
  variables, meta = init_from.load_variables(str(tmp_path / "out"))
  assert meta["config_model"]["name"] == "resnet2d_frame" and meta["arch"] == "resnet18"
  np.testing.assert_array_equal(variables["params"]["layer1_0"]["conv_b"]["conv"]["kernel"],
                                np.transpose(state["layer1.0.conv2.weight"], (2, 3, 1, 0)))
  np.testing.assert_array_equal(variables["batch_stats"]["layer4_1"]["conv_a"]["bn"]["mean"],
                                state["layer4.1.bn1.running_mean"])
  np.testing.assert_array_equal(variables["params"]["fc"]["kernel"], state["fc.weight"].T)
  save_file({f"module.{k}": v for k, v in state.items()}, str(tmp_path / "dp.safetensors"))   # DataParallel's
  assert convert.read_state_dict(str(tmp_path / "dp.safetensors")).keys() == state.keys()


def test_load_torchvision_runs_and_replaces_the_classifier(tmp_path):
  from safetensors.numpy import save_file
  state = _random_state("mc3_18", np.random.default_rng(2), scale=0.05)
  save_file(state, str(tmp_path / "mc3.safetensors"))
  module, variables = convert.load_torchvision("mc3_18", str(tmp_path / "mc3.safetensors"), num_classes=5)
  assert variables["params"]["fc"]["kernel"].shape == (512, 5)
  np.testing.assert_array_equal(variables["params"]["bcb1"]["conv"]["kernel"],
                                np.transpose(state["stem.0.weight"], (2, 3, 4, 1, 0)))
  shapes = jax.eval_shape(lambda v: module.apply(v, np.zeros((2, 4, 16, 16, 3), np.float32)), variables)
  assert shapes["logits"].shape == (2, 5)


def test_wrong_arch_or_file_is_a_clear_error(tmp_path, monkeypatch):
  r3d = _random_state("r3d_18", np.random.default_rng(3))
  with pytest.raises(ValueError, match="do not fit vidrec's mc3_18"):     # same names, other kernels
    tm.to_vidrec("mc3_18", r3d)
  with pytest.raises(KeyError, match="Not a torchvision resnet50 state dict.*Check --arch"):
    tm.to_vidrec("resnet50", _random_state("resnet18", np.random.default_rng(4)))
  monkeypatch.setitem(sys.modules, "torch", None)                        # as without the [torch] extra
  (tmp_path / "x.pth").write_bytes(b"")
  with pytest.raises(ImportError, match=r"vidrec\[torch\].*safetensors"):
    convert.read_state_dict(str(tmp_path / "x.pth"))
  with pytest.raises(FileNotFoundError):
    convert.read_state_dict(str(tmp_path / "missing.safetensors"))
