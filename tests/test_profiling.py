"""--config.profile_steps: a jax.profiler trace of the chosen steps; compile start/end on the console."""
import pathlib

import pytest

from conftest import tiny_config
from vidrec import profiling, trainer
from vidrec.errors import UserError


@pytest.mark.slow
def test_profile_steps_writes_a_trace_and_reports_compilation(data_dir, tmp_path, capsys):
  cfg = tiny_config(data_dir)
  cfg.num_train_steps, cfg.profile_steps = 2, "2,2"
  trainer.train(cfg, str(tmp_path))
  err = capsys.readouterr().err
  assert err.index("Compiling the train step") < err.index("Compiled the train step") < err.index("[      1/2]")
  assert "Tracing steps 2..2" in err
  files = [p for p in pathlib.Path(tmp_path, "profile").rglob("*") if p.is_file()]
  assert any(p.name.endswith(".xplane.pb") and p.stat().st_size > 0 for p in files), files
  assert any(p.name.endswith("trace.json.gz") for p in files), files


@pytest.mark.parametrize("spec", ["3", "0,2", "4,2", "a,b", "1,2,3"])
def test_bad_profile_steps_name_the_fix(spec):
  with pytest.raises(UserError, match="profile_steps must be 'a,b'"):
    profiling.parse_steps(spec)
  assert profiling.parse_steps("") is None and profiling.parse_steps("2,5") == (2, 5)
