"""Fault injection in one process (docs/reliability.md): unreadable checkpoints, a failed save,
videos whose frames do not decode, NaN gradients, the config-change guard, metrics.jsonl after a
resume, eval's clear errors, Ctrl-C, and user errors as exit status 2."""
import json
import os
import shutil
import signal

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import tensorflow as tf
from array_record.python.array_record_module import ArrayRecordReader, ArrayRecordWriter
from orbax.checkpoint._src.path import atomicity

from conftest import tiny_config
from vidrec import cli, evaluate, metrics, optim, preemption, recovery, run_record, trainer
from vidrec import config as config_lib
from vidrec.data import datasets, pipeline
from vidrec.errors import MissingDataError, UnknownNameError, UserError

BAD_TRAIN, BAD_TEST = 5, 7      # records whose every JPEG frame is cut to its first 20 bytes


def _corrupt_record(shard: str, index: int) -> None:
  reader = ArrayRecordReader(shard)
  records = reader.read(list(range(reader.num_records())))
  reader.close()
  example = tf.train.Example.FromString(records[index])
  frames = example.features.feature["video"].bytes_list.value
  for k, jpeg in enumerate(list(frames)):
    frames[k] = jpeg[:20]
  records[index] = example.SerializeToString()
  writer = ArrayRecordWriter(shard, "group_size:1")
  for r in records:
    writer.write(r)
  writer.close()


@pytest.fixture(scope="module")
def bad_data_dir(data_dir, tmp_path_factory) -> str:
  """A copy of the tiny dataset with one undecodable train record and one undecodable test record."""
  path = str(tmp_path_factory.mktemp("bad_tfds"))
  shutil.copytree(os.path.join(data_dir, "synthetic_actions"), os.path.join(path, "synthetic_actions"))
  folder = os.path.join(path, "synthetic_actions", "tiny", "1.0.0")
  for split, index in (("train", BAD_TRAIN), ("test", BAD_TEST)):
    _corrupt_record(os.path.join(folder, f"synthetic_actions-{split}.array_record-00000-of-00001"), index)
  return path


def _config(data_dir: str):
  cfg = tiny_config(data_dir)
  cfg.dataset.max_unreadable_fraction = 0.05
  return cfg


def _rows(workdir: str) -> list[dict]:
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def trained(bad_data_dir, tmp_path_factory) -> str:
  """6 steps on the corrupted data (one epoch: the bad record is met once), checkpoints at 3 and 6."""
  workdir = str(tmp_path_factory.mktemp("trained"))
  trainer.train(_config(bad_data_dir), workdir)
  return workdir


def test_undecodable_record_is_replaced_deterministically(data_dir, bad_data_dir):
  cfg = tiny_config(data_dir)
  clean, bad = (pipeline.VideoSource(datasets.load_builder(cfg.dataset.name, d), "train")
                for d in (data_dir, bad_data_dir))
  batches = lambda src: list(pipeline.train_dataset(src, cfg.input, global_batch=8, seed=0)  # noqa: E731
                             .take(6).as_numpy_iterator())
  a, b = batches(clean), batches(bad)
  order = np.random.default_rng([0, 0, 7]).permutation(48)          # the pipeline's epoch-0 order
  replaced = (order == BAD_TRAIN).reshape(6, 8)
  for x, y, r in zip(a, b, replaced):
    np.testing.assert_array_equal(y["unreadable"], np.where(r, BAD_TRAIN, -1))
    np.testing.assert_array_equal(x["video"][~r], y["video"][~r])  # every other example unchanged
    assert np.isfinite(y["video"]).all() and y["video"].shape == x["video"].shape
  np.testing.assert_array_equal(b[0]["video"], batches(bad)[0]["video"])   # the same on a re-run


@pytest.mark.slow
def test_training_on_undecodable_record_runs_and_counts_it(trained, bad_data_dir):
  rows = _rows(trained)
  assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]
  assert sum(r["data/replaced_examples"] for r in rows) == 1
  assert rows[-1]["data/unreadable_videos"] == 1


def test_too_many_unreadable_videos_stop_naming_them():
  faults = recovery.UnreadableVideos(100, 0.01, lambda i: f"video_{i}")
  faults.add(np.array([-1, 4, -1]))
  assert faults.counts() == {"data/replaced_examples": 1, "data/unreadable_videos": 1}
  faults.add(np.array([4, 9]))
  with pytest.raises(UserError, match=r"2 training videos .* #4 \(video_4\), #9 \(video_9\)"):
    faults.counts()


@pytest.mark.slow
def test_eval_leaves_out_and_reports_undecodable_video(trained, bad_data_dir):
  cfg = _config(bad_data_dir)
  report = evaluate.evaluate(cfg, trained)
  assert report["unreadable_videos"] == [BAD_TEST]
  assert report["num_views"] == 23 * 2 * 3 and sum(map(sum, report["confusion_matrix"])) == 23
  cfg.dataset.max_unreadable_fraction = 0.0
  with pytest.raises(UserError, match=f"1 of 24 test videos could not be read or decoded: #{BAD_TEST}"):
    evaluate.evaluate(cfg, trained, checkpoint_step=3)


def _truncate(path: str) -> None:
  with open(path, "r+b") as f:
    f.truncate(os.path.getsize(path) // 2)


def _garble(path: str) -> None:
  data = bytearray(open(path, "rb").read())
  for i in range(0, len(data), 7):
    data[i] ^= 0xA5
  open(path, "wb").write(bytes(data))


def _damage(workdir: str, step: int, damage) -> None:
  for folder, _, files in os.walk(os.path.join(workdir, "checkpoints", str(step), "state")):
    for name in files:
      damage(os.path.join(folder, name))


@pytest.mark.slow
def test_truncated_latest_checkpoint_is_set_aside_and_the_previous_one_resumed(trained, bad_data_dir, tmp_path,
                                                                                caplog):
  workdir = str(tmp_path / "run")
  shutil.copytree(trained, workdir)
  _damage(workdir, 6, _truncate)
  # A save that died before orbax's final rename leaves a temporary directory: never listed.
  shutil.copytree(os.path.join(workdir, "checkpoints", "3"),
                  os.path.join(workdir, "checkpoints", "9.orbax-checkpoint-tmp-1"))
  caplog.set_level("WARNING")
  trainer.train(_config(bad_data_dir), workdir)
  assert "Checkpoint step 6" in caplog.text and "is unreadable" in caplog.text
  assert "Resumed from step 3" in caplog.text
  assert os.listdir(os.path.join(workdir, "checkpoints_unreadable")) == ["6"]
  original = {r["step"]: r["loss"] for r in _rows(trained)}
  resumed = {r["step"]: r["loss"] for r in _rows(workdir)}
  assert [r["step"] for r in _rows(workdir)] == [1, 2, 3, 4, 5, 6]        # each step once
  np.testing.assert_allclose([resumed[k] for k in range(1, 7)], [original[k] for k in range(1, 7)], rtol=1e-5)


@pytest.mark.slow
def test_garbled_checkpoints_are_skipped_and_none_readable_is_a_user_error(trained, bad_data_dir, tmp_path):
  cfg = _config(bad_data_dir)
  s = trainer.setup(cfg)
  workdir = str(tmp_path / "run")
  shutil.copytree(trained, workdir)
  _damage(workdir, 6, _garble)
  mngr = trainer.checkpoint_manager(workdir, cfg)
  restore = lambda step: trainer.restore(mngr, s.abstract_state, step)  # noqa: E731
  ts, _ = recovery.restore_newest_readable(mngr, restore)
  assert int(ts.step) == 3 and mngr.all_steps() == [3]
  _damage(workdir, 3, _garble)
  with pytest.raises(UserError, match=r"None of the checkpoints .* \(steps \[3\]\) can be restored"):
    recovery.restore_newest_readable(mngr, restore)
  assert mngr.all_steps() == [3]        # nothing is moved when nothing is readable
  mngr.close()


@pytest.mark.slow
def test_a_failed_save_never_removes_the_last_good_checkpoint(trained, bad_data_dir, tmp_path, monkeypatch):
  """keep_checkpoints=1: orbax deletes step 3 only after step 6 is committed (renamed from its temporary
  directory); a save that fails before that (here: the commit rename itself) leaves step 3 listed and
  restorable, and no step 6."""
  cfg = _config(bad_data_dir)
  cfg.keep_checkpoints = 1
  s = trainer.setup(cfg)
  mngr = trainer.checkpoint_manager(trained, cfg)
  ts, _ = trainer.restore(mngr, s.abstract_state, 3)
  mngr.close()
  mngr = trainer.checkpoint_manager(str(tmp_path), cfg)
  trainer.save(mngr, ts, cfg)
  mngr.wait_until_finished()

  async def fail(self, *args, **kwargs):
    raise OSError("disk full while committing")
  monkeypatch.setattr(atomicity.AtomicRenameTemporaryPath, "finalize", fail)
  with pytest.raises(OSError, match="disk full"):
    trainer.save(mngr, ts.replace(step=ts.step + 3), cfg)
    mngr.wait_until_finished()
  monkeypatch.undo()
  mngr = trainer.checkpoint_manager(str(tmp_path), cfg)
  assert mngr.all_steps() == [3]
  restored, _ = trainer.restore(mngr, s.abstract_state)
  mngr.close()
  assert int(restored.step) == 3


def _nan_gradient_at(update: int) -> optax.GradientTransformation:
  """Replaces the gradient of the ``update``-th update (0-based) by NaN; the loss stays finite."""
  return optax.GradientTransformation(
      lambda params: jnp.zeros([], jnp.int32),
      lambda g, count, params=None: (jax.tree.map(lambda x: jnp.where(count == update, jnp.nan, x), g),
                                     count + 1))


@pytest.mark.slow
def test_nan_gradient_with_finite_loss_never_reaches_a_checkpoint(data_dir, tmp_path, monkeypatch):
  cfg = tiny_config(data_dir)
  cfg.checkpoint_every_steps = 2
  make_optimizer = optim.make_optimizer
  monkeypatch.setattr(optim, "make_optimizer",
                      lambda c, n: (optax.chain(_nan_gradient_at(3), make_optimizer(c, n)[0]),
                                    make_optimizer(c, n)[1]))
  with pytest.raises(trainer.NonFiniteLossError, match=r"updated state is not finite at step 4 \(loss \d"):
    trainer.train(cfg, str(tmp_path))
  s = trainer.setup(cfg)
  mngr = trainer.checkpoint_manager(str(tmp_path), cfg)
  assert mngr.all_steps() == [2]
  ts, _ = trainer.restore(mngr, s.abstract_state)
  mngr.close()
  assert all(np.isfinite(x).all() for x in jax.tree.leaves(ts))


def test_non_finite_gradient_norm_is_named():
  pending = {"step": 7, "loss": jnp.float32(1.5), "grad_norm": jnp.float32(np.nan), "finite": jnp.bool_(False)}
  with pytest.raises(trainer.NonFiniteLossError, match="The gradient is not finite at step 7"):
    trainer._check_finite(pending)  # pylint: disable=protected-access


@pytest.mark.slow
def test_config_change_guard(trained, bad_data_dir):
  with open(os.path.join(trained, "config.json")) as f:
    saved = json.load(f)
  assert saved["optimizer"]["lr"] == 0.05 and saved["dataset"]["data_dir"] == bad_data_dir
  with open(os.path.join(trained, "run.json")) as f:
    start = json.load(f)["starts"][-1]
  assert start["start_step"] == 0 and "jax" in start["packages"] and "commit" in (start["git"] or {"commit": 1})

  cfg = _config(bad_data_dir)
  cfg.optimizer.lr, cfg.batch_size = 0.1, 16
  with pytest.raises(UserError, match=r"2 key\(s\).*batch_size: 8 -> 16; optimizer.lr: 0.05 -> 0.1.*"
                                      r"--allow_config_change"):
    trainer.train(cfg, trained)
  run_record.check_resume(trained, cfg, allow_change=True)         # the override
  cfg = _config(bad_data_dir)
  cfg.log_every_steps, cfg.eval.batch_size, cfg.dataset.data_dir = 2, 4, "/elsewhere"
  run_record.check_resume(trained, cfg, allow_change=False)        # keys that do not change the maths


def test_a_key_added_since_the_run_started_counts_at_its_default():
  new = run_record.config_as_json(config_lib.base_config())
  old = json.loads(json.dumps(new))
  del old["optimizer"]["grad_clip_scope"]                         # a workdir written before the key existed
  assert run_record.changed_keys(old, new) == {}
  new["optimizer"]["grad_clip_scope"] = "module"
  assert run_record.changed_keys(old, new) == {"optimizer.grad_clip_scope": ("global", "module")}


def test_metrics_rows_after_the_checkpoint_are_dropped(tmp_path):
  rows = [json.dumps({"step": s, "loss": float(s)}) for s in range(1, 7)]
  (tmp_path / "metrics.jsonl").write_text("\n".join(rows) + '\n{"step": 7, "lo')   # cut by a crash
  metrics.drop_rows_after(str(tmp_path), 3)
  assert [r["step"] for r in _rows(str(tmp_path))] == [1, 2, 3]


@pytest.mark.slow
def test_eval_errors_name_the_fix(trained, bad_data_dir, tmp_path):
  cfg = _config(bad_data_dir)
  with pytest.raises(MissingDataError, match="No checkpoint in .*: train first"):
    evaluate.evaluate(cfg, str(tmp_path / "empty"))
  with pytest.raises(MissingDataError, match=r"no checkpoint of step 5 .* holds steps \[3, 6\]"):
    evaluate.evaluate(cfg, trained, checkpoint_step=5)
  s = trainer.setup(cfg)      # a checkpoint of a model trained on other classes (same count)
  mngr = trainer.checkpoint_manager(trained, cfg)
  ts, _ = trainer.restore(mngr, s.abstract_state, 3)
  mngr.close()
  other = trainer.checkpoint_manager(str(tmp_path / "other"), cfg)
  trainer.save(other, ts, cfg, [f"class_{i}" for i in range(s.num_classes)])
  other.close()
  with pytest.raises(UserError, match=r"trained on 12 classes .*first differences: 0: 'class_0' !="):
    evaluate.evaluate(cfg, str(tmp_path / "other"))


def test_ctrl_c_stops_after_the_step_and_twice_stops_at_once():
  previous = signal.getsignal(signal.SIGINT)
  guard = preemption.PreemptionGuard(lambda step: False).install()
  try:
    assert not guard.reached(1)
    signal.raise_signal(signal.SIGINT)
    assert guard.reached(2) and guard.signal_name == "SIGINT"
    with pytest.raises(KeyboardInterrupt):
      signal.raise_signal(signal.SIGINT)
  finally:
    guard.uninstall()
  assert signal.getsignal(signal.SIGINT) is previous


def test_user_errors_become_exit_status_2_and_bugs_keep_their_traceback(capsys):
  def unknown():
    raise UnknownNameError("Unknown model.name 'x'. Known model.names: ['resnet3d'].")
  assert cli.returns_status(unknown)() == cli.EXIT_USER_ERROR
  assert capsys.readouterr().err == "error: Unknown model.name 'x'. Known model.names: ['resnet3d'].\n"
  assert isinstance(UnknownNameError("k"), KeyError) and str(UnknownNameError("k")) == "k"

  def bug():
    raise ZeroDivisionError("a bug")
  with pytest.raises(ZeroDivisionError):
    cli.returns_status(bug)()
