"""``train.py --dry_run`` (vidrec.dry_run): what it prints and its exit status, and the command sequence of
docs/pretrained.md on a random-weight torchvision ResNet-18 saved as users get it (.safetensors; .pth
too where torch is installed), converted by the CLI, then checked by the dry run of SGN + Frame's
frame stream."""
from __future__ import annotations

import importlib
import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from vidrec import dry_run
from vidrec.convert import __main__ as convert_cli

ROOT = pathlib.Path(__file__).parents[1]
SHAPES = json.loads((ROOT / "tests" / "data" / "torchvision_state_dict_shapes.json").read_text())


def _config(name: str, variant: str, **overrides):
  config = importlib.import_module(f"configs.{name}").get_config(variant)
  for key, value in overrides.items():
    node = config
    *path, leaf = key.split(".")
    for p in path:
      node = node[p]
    node[leaf] = value
  return config


def _save_random_resnet18(directory: pathlib.Path) -> list[pathlib.Path]:
  """A random torchvision resnet18 state dict as a user downloads it: .safetensors, and .pth with torch."""
  from safetensors.numpy import save_file
  rng = np.random.default_rng(0)
  state = {k: 0.05 * rng.standard_normal(s, dtype=np.float32) for k, s in SHAPES["resnet18"].items()}
  files = [directory / "resnet18-f37072fd.safetensors"]
  save_file(state, str(files[0]))
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError:
    return files
  files.append(directory / "resnet18-f37072fd.pth")
  torch.save({k: torch.from_numpy(v) for k, v in state.items()}, files[1])
  return files


def test_downloaded_file_to_converted_weights_to_a_run_that_would_start(data_dir, tmp_path, capsys):
  for i, checkpoint in enumerate(_save_random_resnet18(tmp_path)):
    out = tmp_path / f"converted{i}"
    convert_cli.main(["torchvision", "--arch", "resnet18", "--checkpoint", str(checkpoint), "--out", str(out)])
    config = _config("sgn_ucf101", "frame", **{"init_from": str(out), "dataset.name": "synthetic_actions/tiny",
                                                "dataset.data_dir": data_dir})
    capsys.readouterr()
    assert dry_run.run(config, str(tmp_path / "w")) == 0
    text = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[1:] for line in text.splitlines()
            if line.startswith(("layer", "conv1", "fc "))}
    assert rows["conv1"][:4] == ["5", "0", "0", "0"] and rows["fc"][:4] == ["0", "0", "2", "0"]    # fc: re-initialised
    assert all(r[1:4] == ["0", "0", "0"] for m, r in rows.items() if m.startswith("layer"))      # all loaded
    assert "pretrained: resnet18_imagenet (resnet18-f37072fd.pth)" in text and "would start" in text
    assert "synthetic_actions/tiny in" in text and "videos per split" in text
  assert not (tmp_path / "w").exists()


def test_missing_weights_and_data_print_every_reason_and_exit_2(tmp_path, capsys):
  config = _config("u2s_sthv2", "", **{"init_from": str(tmp_path / "none"), "dataset.data_dir": str(tmp_path)})
  assert dry_run.run(config, str(tmp_path / "w")) == 2
  text = capsys.readouterr().out
  assert "REFUSED:" in text and "--arch u2s_resnet50" in text
  assert "python -m vidrec.data.prepare ssv2" in text and "would NOT start (2 problem(s)" in text
  assert "model.preact: '(not in base)' -> False" in text
  for stage in ("1: UN alone", "CSM pass over train", "2: CSN + MN, UN frozen", "3: joint"):
    assert stage in text
  assert "un_top" in text and "total" in text                           # parameters per module


def test_from_scratch_would_start_and_says_so(data_dir, tmp_path, capsys):
  config = _config("fstcn_ucf101", "", **{"from_scratch": True, "dataset.name": "synthetic_actions/tiny",
                                          "dataset.data_dir": data_dir})
  assert dry_run.run(config, str(tmp_path / "w")) == 0
  text = capsys.readouterr().out
  assert text.count("warning: --config.from_scratch=True") == 1 and "every variable fresh" in text
  assert f"1: auxiliary network, last three layers: {tmp_path}/w/aux" in text and "frozen nothing" in text


@pytest.mark.slow
def test_train_py_dry_run_flag(tmp_path):
  result = subprocess.run(
      [sys.executable, "train.py", "--config", "configs/resnet3d_ucf101.py:synthetic", "--workdir",
       str(tmp_path / "w"), "--dry_run", f"--config.dataset.data_dir={tmp_path}/tfds"],
      cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
  assert "== procedure single: stages ==" in result.stdout and "would start" in result.stdout
  assert not (tmp_path / "w").exists()


@pytest.mark.parametrize("path", sorted(p.stem for p in (ROOT / "configs").glob("[a-z]*_*.py")))
def test_dry_run_works_on_every_config(path, tmp_path, capsys):
  config = importlib.import_module(f"configs.{path}").get_config("")
  config.dataset.data_dir = str(tmp_path)
  assert dry_run.run(config, str(tmp_path / "w")) == 2             # no weights, no prepared data here
  assert "cannot build" not in capsys.readouterr().out
