"""``config.model.dtype=bfloat16`` for every registered model: one train step at the model's synthetic
config (batch 2) computes its GEMMs/convolutions in bfloat16, gives a finite float32 loss (the
trainer casts the outputs to float32 before the loss), and keeps params, BatchNorm statistics and
optimizer state in float32."""
import glob
import importlib.util
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vidrec import losses, optim, trainer
from vidrec.models import MODELS, build_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load(path):
  spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _synthetic_configs() -> dict:
  """model name -> the first synthetic config (file order) that trains it in one run (U2S's online
  schedule: its default staged one sets the CSM's N between stages; SGN's frame variant for the 2D frame
  model)."""
  found = {}
  for path in sorted(p for p in glob.glob(os.path.join(ROOT, "configs", "*.py")) if not p.endswith("__init__.py")):
    for variant in ("synthetic,online", "synthetic", "synthetic,frame"):
      try:
        config = _load(path).get_config(variant)
      except ValueError:
        continue
      found.setdefault(config.model.name, config)
  return found


CONFIGS = _synthetic_configs()


def test_every_registered_model_has_a_synthetic_config():
  build_model(next(iter(CONFIGS.values())).model, 2)      # fills the registry
  assert set(MODELS.names()) <= set(CONFIGS), set(MODELS.names()) - set(CONFIGS)


def _low_precision_ops(jaxpr) -> set:
  """Names of dot/conv primitives (recursively) with a bfloat16 operand."""
  names = set()
  for eqn in jaxpr.eqns:
    if eqn.primitive.name in ("dot_general", "conv_general_dilated") and any(
        getattr(v.aval, "dtype", None) == jnp.bfloat16 for v in eqn.invars):
      names.add(eqn.primitive.name)
    for param in eqn.params.values():
      inner = getattr(param, "jaxpr", param)
      if hasattr(inner, "eqns"):
        names |= _low_precision_ops(inner)
  return names


@pytest.mark.slow   # 8-18 s each: every model's synthetic config compiled and run
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_bfloat16_train_step(name):
  config = CONFIGS[name]
  config.model.dtype = "bfloat16"
  model = build_model(config.model, 5)
  tx, schedule = optim.make_optimizer(config.optimizer, 10)
  ts = trainer.init_state(model, tx, config, jax.random.key(0))
  rng = np.random.default_rng(0)
  batch = {"video": rng.standard_normal(trainer.input_shape(config, 2)).astype(np.float32),
           "label": np.array([1, 3], np.int32)}
  step = trainer.make_train_step(model, tx, losses.LOSSES.get(config.loss.name), config.loss, schedule,
                                 jax.random.key(1))
  logits = jax.eval_shape(lambda v, x: model.apply(v, x, train=False, labels=batch["label"])["logits"],
                          trainer.variables_of(ts), batch["video"])
  assert logits.shape == (2, 5) and logits.dtype in (jnp.bfloat16, jnp.float32)
  jaxpr = jax.make_jaxpr(step)(ts, batch).jaxpr
  assert _low_precision_ops(jaxpr), f"{name}: no bfloat16 dot/conv in the train step"
  new, metrics = jax.jit(step)(ts, batch)
  assert metrics["loss"].dtype == jnp.float32 and np.isfinite(metrics["loss"])
  for tree in (new.params, new.model_state, new.opt_state):
    floats = [x for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)]
    assert all(x.dtype == jnp.float32 for x in floats), name
  assert all(np.isfinite(x).all() for x in jax.tree.leaves(new.params))
