"""config.init_from: loads matching variables, re-initialises init_skip, reports, fails on a shape
mismatch before compiling, adapts through ADAPTERS, and a resumed run ignores it."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import tiny_config
from vidrec import init_from, optim, param_paths, trainer
from vidrec.models import build_model


def _tree(**leaves):
  return param_paths.unflatten({k: np.asarray(v, np.float32) for k, v in leaves.items()})


def test_plan_statuses_and_table():
  ckpt = _tree(**{"params/conv/kernel": np.ones((3, 3, 2, 4)), "params/fc/kernel": np.ones((4, 400)),
                  "batch_stats/bn/mean": np.full(4, 2.0), "params/old_head/bias": np.ones(3)})
  model = _tree(**{"params/conv/kernel": np.zeros((3, 3, 2, 4)), "params/fc/kernel": np.zeros((4, 101)),
                   "batch_stats/bn/mean": np.zeros(4), "params/sgm/kernel": np.zeros((2, 2))})
  plan = init_from.make_plan(ckpt, model, "ckpt", skip=("fc/*",))
  assert plan.status == {"params/conv/kernel": "loaded", "params/fc/kernel": "reinit",
                         "batch_stats/bn/mean": "loaded", "params/sgm/kernel": "missing"}
  assert plan.unused == ["params/old_head/bias"]
  merged = init_from.merge(model, plan)
  np.testing.assert_array_equal(merged["params"]["conv"]["kernel"], 1.0)
  np.testing.assert_array_equal(merged["batch_stats"]["bn"]["mean"], 2.0)
  np.testing.assert_array_equal(merged["params"]["fc"]["kernel"], np.zeros((4, 101)))   # fresh
  table = plan.table().splitlines()
  assert table[1].split()[:3] == ["module", "loaded", "adapted"]
  rows = {line.split()[0]: line.split()[1:] for line in table[2:-1]}
  assert rows["conv"] == ["1", "0", "0", "0", "72"] and rows["fc"] == ["0", "0", "1", "0", "0"]
  assert rows["sgm"] == ["0", "0", "0", "1", "0"] and rows["total"] == ["2", "0", "1", "1", "76"]
  assert "params/old_head/bias" in table[-1]


def test_shape_mismatch_names_every_key_and_the_fixes():
  ckpt = _tree(**{"params/a/kernel": np.ones((3, 3)), "params/fc/kernel": np.ones((4, 400))})
  model = _tree(**{"params/a/kernel": np.ones((3, 4)), "params/fc/kernel": np.ones((4, 101))})
  with pytest.raises(ValueError, match=r"(?s)2 variable\(s\).*params/a/kernel: checkpoint \(3, 3\), model \(3, 4\)"
                                       r".*params/fc/kernel.*init_skip.*init_adapt") as err:
    init_from.make_plan(ckpt, model, "ckpt")
  assert "channel_mean" in str(err.value)


def test_channel_mean_adapter_is_tsn_cross_modality_init():
  rgb = np.random.default_rng(0).standard_normal((3, 7, 7, 3, 8)).astype(np.float32)
  ckpt = _tree(**{"params/stem/kernel": rgb, "params/fc/kernel": np.ones((8, 3))})
  model = _tree(**{"params/stem/kernel": np.zeros((3, 7, 7, 10, 8)), "params/fc/kernel": np.zeros((8, 3))})
  plan = init_from.make_plan(ckpt, model, "ckpt", adapter="channel_mean")
  assert plan.status["params/stem/kernel"] == "adapted"
  flow = plan.values["params/stem/kernel"]
  for c in range(10):
    np.testing.assert_allclose(flow[..., c, :], rgb.mean(axis=3), rtol=1e-6)
  bad = _tree(**{"params/stem/kernel": np.zeros((3, 7, 7, 10, 9)), "params/fc/kernel": np.zeros((8, 3))})
  with pytest.raises(ValueError, match="params/stem/kernel"):            # output channels differ: no adapter
    init_from.make_plan(ckpt, bad, "ckpt", adapter="channel_mean")
  with pytest.raises(KeyError, match="Unknown init_adapt"):
    init_from.make_plan(ckpt, model, "ckpt", adapter="nope")


def test_i3d_inflate_gives_a_still_clip_the_2d_response():
  """Carreira & Zisserman's boring-video property: the inflated 3D conv of T copies of a frame equals the
  2D conv of the frame at every frame whose temporal window lies inside the clip."""
  rng = np.random.default_rng(0)
  k2d = rng.standard_normal((3, 3, 4, 5)).astype(np.float32)
  plan = init_from.make_plan(_tree(**{"params/c/kernel": k2d}), _tree(**{"params/c/kernel": np.zeros((3, 3, 3, 4, 5))}),
                             "ckpt", adapter="i3d_inflate")
  k3d = np.asarray(plan.values["params/c/kernel"])
  assert plan.status["params/c/kernel"] == "adapted" and k3d.shape == (3, 3, 3, 4, 5)
  frame = rng.standard_normal((1, 6, 7, 4)).astype(np.float32)
  clip = np.repeat(frame[:, None], 5, axis=1)
  want = jax.lax.conv_general_dilated(frame, k2d, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
  got = jax.lax.conv_general_dilated(clip, k3d, (1, 1, 1), "SAME", dimension_numbers=("NDHWC", "DHWIO", "NDHWC"))
  for t in range(1, 4):
    np.testing.assert_allclose(got[:, t], want, rtol=1e-5, atol=1e-5)
  with pytest.raises(ValueError, match="params/c/kernel"):             # spatial sizes differ: not inflatable
    init_from.make_plan(_tree(**{"params/c/kernel": k2d}), _tree(**{"params/c/kernel": np.zeros((3, 5, 5, 4, 5))}),
                        "ckpt", adapter="i3d_inflate")


def _pretrained_dir(path, cfg, num_classes: int) -> dict:
  """A saved 'pretrained' model of cfg.model's layout with ``num_classes`` classes (random values)."""
  model = build_model(cfg.model, num_classes)
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros(trainer.input_shape(cfg, 1))))
  rng = np.random.default_rng(0)
  variables = jax.tree.map(lambda s: rng.standard_normal(s.shape).astype(np.float32), shapes)
  init_from.save_variables(str(path), variables, {"arch": "test"})
  return variables


@pytest.mark.slow
def test_training_loads_skips_and_reports(data_dir, tmp_path, capsys):
  cfg = tiny_config(data_dir)
  pretrained = _pretrained_dir(tmp_path / "pre", cfg, num_classes=400)
  cfg.init_from = str(tmp_path / "pre")
  cfg.optimizer.lr = 0.0                  # parameters stay as initialised: what init_from put there
  cfg.num_train_steps = 1
  ts = trainer.train(cfg, str(tmp_path / "run"))
  flat, ckpt = param_paths.flatten({"params": ts.params}), param_paths.flatten({"params": pretrained["params"]})
  for name, value in flat.items():
    if not name.startswith("params/fc/"):
      np.testing.assert_array_equal(value, ckpt[name])
  np.testing.assert_array_equal(ts.params["fc"]["bias"], 0.0)               # fresh (zeros), not loaded
  assert ts.params["fc"]["kernel"].shape[1] != 400
  out = capsys.readouterr().out
  assert f"init_from {cfg.init_from} (test)" in out
  total = next(line for line in out.splitlines() if line.startswith("total")).split()
  num_arrays = len(jax.tree.leaves(pretrained))
  assert total[1:5] == [str(num_arrays - 2), "0", "2", "0"]         # all loaded but fc kernel + bias


@pytest.mark.slow
def test_a_runs_workdir_initialises_another_run(data_dir, tmp_path, capsys):
  cfg = tiny_config(data_dir)
  cfg.num_train_steps = 1
  pre = trainer.train(cfg, str(tmp_path / "pre"))             # "pre-training": one step, checkpointed
  cfg.init_from, cfg.optimizer.lr, cfg.seed = str(tmp_path / "pre"), 0.0, 1
  ts = trainer.train(cfg, str(tmp_path / "run"))
  got, want = param_paths.flatten({"params": ts.params}), param_paths.flatten({"params": pre.params})
  for name, value in got.items():
    if not name.startswith("params/fc/"):
      np.testing.assert_array_equal(value, want[name])
  np.testing.assert_array_equal(ts.params["fc"]["bias"], 0.0)               # the classifier: fresh
  assert not np.array_equal(ts.params["fc"]["kernel"], pre.params["fc"]["kernel"])
  assert f"init_from {cfg.init_from} (vidrec run, step 1)" in capsys.readouterr().out


def test_resumed_run_ignores_init_from(tmp_path, capsys):
  cfg = tiny_config("")
  _pretrained_dir(tmp_path / "pre", cfg, num_classes=400)
  cfg.init_from, cfg.init_skip = str(tmp_path / "pre"), ""       # fc would mismatch: an error if used
  abstract = jax.eval_shape(lambda: trainer.init_state(build_model(cfg.model, 3), optim.make_optimizer(
      cfg.optimizer, 10)[0], cfg, jax.random.key(0)))
  with pytest.raises(ValueError, match="params/fc/kernel"):
    init_from.prepare(cfg, abstract, resuming=False)
  assert init_from.prepare(cfg, abstract, resuming=True) is None
  assert "ignored, resuming" in capsys.readouterr().out


def test_shape_mismatch_stops_training_before_compiling(data_dir, tmp_path, monkeypatch):
  cfg = tiny_config(data_dir)
  cfg.model.width = 8
  _pretrained_dir(tmp_path / "pre", cfg, num_classes=400)
  cfg.model.width = 4
  cfg.init_from = str(tmp_path / "pre")

  def no_compiling(*args, **kwargs):
    raise AssertionError("compiled before the init_from check")
  monkeypatch.setattr(jax, "jit", no_compiling)
  with pytest.raises(ValueError, match=r"params/bcb1/conv/kernel: checkpoint \(3, 7, 7, 3, 8\), model "
                                       r"\(3, 7, 7, 3, 4\)"):
    trainer.train(cfg, str(tmp_path / "run"))


def test_missing_directory_names_the_converter(tmp_path):
  with pytest.raises(FileNotFoundError, match="python -m vidrec.convert torchvision"):
    init_from.load_variables(str(tmp_path / "nothing"))
  (tmp_path / "untrained" / "checkpoints").mkdir(parents=True)
  with pytest.raises(FileNotFoundError, match="no checkpoint yet"):
    init_from.load_variables(str(tmp_path / "untrained"))


def test_prefix_loads_into_a_submodule_and_disjoint_names_are_an_error():
  ckpt = _tree(**{"params/conv1_1/kernel": np.ones((3, 3, 3, 4)), "params/fc8/kernel": np.ones((4, 9))})
  model = _tree(**{"params/vgg/conv1_1/kernel": np.zeros((3, 3, 3, 4)), "params/lstm/kernel": np.zeros(2)})
  with pytest.raises(ValueError, match="no variable name of the checkpoint is in the model.*init_prefix"):
    init_from.make_plan(ckpt, model, "vgg16")
  plan = init_from.make_plan(ckpt, model, "vgg16", prefix="vgg")
  assert plan.status == {"params/vgg/conv1_1/kernel": "loaded", "params/lstm/kernel": "missing"}
  assert plan.unused == ["params/vgg/fc8/kernel"]
