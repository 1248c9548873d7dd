"""The staged U2S schedule (vidrec.procedures.u2s, paper 003 Sec. IV-B "Training") on synthetic_actions/tiny:
the CSM pass averages over every training video and picks N by the top-N rule; stage 2 leaves the UN
bit-identical; stages 2-3 never touch the statistics; the final stage is what eval_config evaluates."""
from __future__ import annotations

import importlib.util
import pathlib

import jax
import numpy as np
import pytest

from vidrec import init_from, param_paths, procedures
from vidrec.errors import UserError


def _config(data_dir: str | None = None):
  spec = importlib.util.spec_from_file_location(
      "u2s_sthv2", pathlib.Path(__file__).parents[1] / "configs" / "u2s_sthv2.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  c = module.get_config("synthetic")
  if data_dir:
    c.dataset.update(name="synthetic_actions/tiny", data_dir=data_dir)
  c.model.update(width=4)
  c.input.update(num_segments=2, resize=(28,), scale_jitter=(24, 30), crop=24)
  c.optimizer.update(warmup_steps=0)
  c.stages.update(steps=(1, 1, 1))
  c.batch_size = c.eval.batch_size = 8
  c.log_every_steps, c.checkpoint_every_steps = 1, 100
  return c


def _group(variables: dict, prefixes: tuple[str, ...]) -> dict:
  return {k: np.asarray(v) for k, v in param_paths.flatten(variables).items() if k.startswith(prefixes)}


def test_stage_configs_and_checks(tmp_path):
  c = _config()
  s1, s2, s3 = (procedures.u2s.stage_config(c, k, str(tmp_path), 3) for k in (1, 2, 3))
  assert (s1.model.variant, s1.num_train_steps) == ("one_pass", 1)
  assert (s2.optimizer.frozen, s2.model.csm_frozen, s2.model.csm_num_confusing) == (c.stages.frozen, True, 3)
  assert s2.init_from.endswith("csm") and s2.init_skip == ""
  assert (s3.optimizer.frozen, s3.optimizer.lr, s3.num_train_steps) == ("", c.stages.joint_lr, 1)
  assert s3.init_from.endswith("stage2/variables")
  bad = _config()
  bad.model.variant = "one_pass"
  with pytest.raises(UserError, match="procedure=single"):
    procedures.u2s.check(bad)
  bad = _config()
  bad.stages.steps = (1, 0, 1)
  with pytest.raises(UserError, match="three positive"):
    procedures.u2s.check(bad)


@pytest.mark.slow
def test_staged_schedule_end_to_end(data_dir, tmp_path):
  from vidrec.data import datasets, pipeline
  from vidrec.tools import trained
  c = _config(data_dir)
  workdir = str(tmp_path / "run")
  procedures.train(c, workdir)

  # The CSM pass: every training video once, exact per-class averages, N from the top-N rule.
  csm_vars, meta = init_from.load_variables(f"{workdir}/csm")
  stats = csm_vars["u2s_stats"]
  assert (meta["train_split"], meta["top_n_split"]) == ("train[:90%]", "train[90%:]")   # N held out
  source = pipeline.VideoSource(datasets.load_builder(c.dataset.name, data_dir), meta["train_split"])
  labels = np.array([source.parse(source.read(i))["label"].numpy() for i in range(len(source))])
  np.testing.assert_array_equal(stats["class_count"], np.bincount(labels, minlength=len(stats["class_count"])))
  assert int(stats["updates"]) == len(source)
  assert np.all((stats["class_sparsity"] >= 0) & (stats["class_sparsity"] <= 1))
  assert meta["num_confusing"] == meta["top_n_rule"] and 1 <= meta["top_n_rule"] <= len(stats["class_count"])
  # Without pretrained weights the CSN's Res3D starts as the trained UN's (stages.csn_init, issue 29).
  assert meta["csn_top"] == "stage 1 (un_top)"
  un, csn = _group(csm_vars, ("params/un_top/",)), _group(csm_vars, ("params/csn_top/",))
  assert len(un) == len(csn) > 0
  for k in un:
    np.testing.assert_array_equal(csn[k.replace("un_top", "csn_top")], un[k], err_msg=k)

  # Stage 2: the UN (shared Res2D included) is bit-identical to stage 1's; the statistics too.
  frozen = ("params/res2d/", "params/un_top/", "params/un_head/")
  stage2, _ = init_from.load_variables(f"{workdir}/stage2/variables")
  before, after = _group(csm_vars, frozen), _group(stage2, frozen)
  assert before.keys() == after.keys() and len(before) > 0
  for k in before:
    np.testing.assert_array_equal(after[k], before[k], err_msg=k)
  np.testing.assert_array_equal(_group(stage2, ("u2s_stats/",))["u2s_stats/class_sparsity"],
                                stats["class_sparsity"])

  # Stage 3 (the workdir itself): everything trains, the statistics stay the CSM pass's.
  config = procedures.eval_config(c, workdir)
  assert config.model.csm_num_confusing == meta["num_confusing"] and config.model.csm_frozen
  _, ts = trained.restore(config, workdir)
  final = jax.device_get({"params": ts.params, **ts.model_state})
  np.testing.assert_array_equal(final["u2s_stats"]["class_sparsity"], stats["class_sparsity"])
  for prefixes in (frozen, ("params/csn_top/", "params/mask_net/")):
    now, then = _group(final, prefixes), _group(stage2, prefixes)
    assert any(not np.array_equal(now[k], then[k]) for k in now), prefixes
