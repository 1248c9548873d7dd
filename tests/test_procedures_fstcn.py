"""FstCN's Sec. 2.3 stages (vidrec.procedures.fstcn): the auxiliary network is fine-tuned in its last three
layers only, then the whole network trains from it; checked on the CPU-sized model (one real optimizer
update each) and on the paper config's stage configs."""
from __future__ import annotations

import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vidrec import config as config_lib
from vidrec import optim, param_paths, procedures, trainer
from vidrec.errors import UserError
from vidrec.models import build_model, layers

AUX_LAST_THREE = {"scl_fc6", "scl_fc7", "classifier_aux"}      # CNN-M-2048's fc6, fc7, fc8


def _config(variant: str = ""):
  return importlib.import_module("configs.fstcn_ucf101").get_config(variant)


def _updated_modules(config) -> tuple[set[str], set[str]]:
  """(every top-level module, those one optimizer update changes) of ``config``'s model (5 classes)."""
  config = config_lib.with_overrides(config, {"optimizer.warmup_steps": 0})    # a non-zero first step
  model = build_model(config.model, 5)
  video = jnp.zeros(trainer.input_shape(config, 1))
  with layers.using_conv_impl("native"):
    params = jax.jit(model.init)({"params": jax.random.key(0), "dropout": jax.random.key(1)}, video)["params"]
  tx, _ = optim.make_optimizer(config.optimizer, config.num_train_steps)
  grads = jax.tree.map(jnp.ones_like, params)
  updates, _ = jax.jit(tx.update)(grads, tx.init(params), params)
  flat = param_paths.flatten(updates)
  return ({k.split("/")[0] for k in flat},
          {k.split("/")[0] for k, u in flat.items() if np.any(np.asarray(u) != 0)})


def test_paper_stages_freeze_what_the_paper_freezes(tmp_path):
  config = _config()
  assert config.procedure == "fstcn_stages" and config.pretrained == "vggm_imagenet"
  aux, full = (procedures.fstcn.stage_config(config, k, str(tmp_path)) for k in (1, 2))
  assert aux.model.paths == "scl" and aux.init_from == config.init_from
  assert aux.optimizer.frozen == "lower_scls/*,conv5/*" and aux.num_train_steps == config.stages.steps[0]
  assert full.model.paths == "both" and full.optimizer.frozen == ""
  assert full.init_from == str(tmp_path / "aux") and full.num_train_steps == config.stages.steps[1]
  assert procedures.eval_config(config, str(tmp_path)).to_dict() == full.to_dict()
  stages = procedures.get(config).stages(config, str(tmp_path))
  assert [s[1] for s in stages] == [str(tmp_path / "aux"), str(tmp_path)]


@pytest.mark.slow
def test_each_stage_updates_only_what_the_paper_trains(tmp_path):
  config = _config("synthetic")
  config.update(procedure="fstcn_stages", init_from=str(tmp_path / "pre"))   # as after pre-training
  aux = procedures.fstcn.stage_config(config, 1, str(tmp_path))
  modules, updated = _updated_modules(aux)
  assert modules == AUX_LAST_THREE | {"lower_scls", "conv5"} and updated == AUX_LAST_THREE
  modules, updated = _updated_modules(procedures.fstcn.stage_config(config, 2, str(tmp_path)))
  assert updated == modules and {"tcl", "permutation", "fusion_fc", "classifier"} <= modules


def test_from_scratch_freezes_nothing(tmp_path):
  config = config_lib.with_overrides(_config(), {"from_scratch": True, "init_from": ""})
  assert procedures.fstcn.stage_config(config, 1, str(tmp_path)).optimizer.frozen == ""


def test_configs_the_stages_cannot_run_are_errors():
  config = _config()
  for overrides, match in (({"model.paths": "tcl"}, "procedure=single"), ({"stages.steps": (5,)}, "two positive")):
    with pytest.raises(UserError, match=match):
      procedures.fstcn.check(config_lib.with_overrides(config, overrides))
