"""The ablation runner's arm parsing, config overrides and table."""
import numpy as np
import pytest

from vidrec.tools import ablate
from vidrec.config import base_config


def test_parse_and_apply_arm():
  name, overrides = ablate.parse_arm("SGM-G at 3b: model.name=sgn, model.sgm_blocks=('3b',), optimizer.lr=0.05")
  assert name == "SGM-G at 3b"
  assert overrides == {"model.name": "sgn", "model.sgm_blocks": ("3b",), "optimizer.lr": 0.05}
  config = ablate.apply_overrides(base_config(), {"optimizer.lr": 0.05, "seed": 3})
  assert config.optimizer.lr == 0.05 and config.seed == 3
  assert base_config().optimizer.lr == 0.001   # the base is not modified


def test_table_mean_and_sample_std():
  text = ablate.table({"a": [0.5, 0.7, 0.9]}, [0, 1, 2], "top1")
  row = text.splitlines()[2]
  assert row.startswith("| a | 0.7000 ± 0.2000 |")
  assert np.isclose(np.std([0.5, 0.7, 0.9], ddof=1), 0.2)


@pytest.mark.slow
def test_command_line_entry_point_starts():
  """``python -m vidrec.tools.ablate`` reaches flag parsing (it once died on a missing import)."""
  import os
  import subprocess
  import sys
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  proc = subprocess.run([sys.executable, "-m", "vidrec.tools.ablate", "--helpshort"], cwd=root, capture_output=True,
                        text=True, timeout=300, env={**os.environ, "PYTHONPATH": root})
  out = proc.stdout + proc.stderr
  assert "Traceback" not in out and "--arm: NAME" in out, out[-2000:]    # absl's --helpshort exits 1
