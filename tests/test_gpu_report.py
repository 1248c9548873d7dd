"""python -m vidrec.tools.gpu_report at toy size on CPU: the same code path as on a GPU."""
import json

import jax
import numpy as np
import pytest
from jax.sharding import Mesh

from vidrec import losses, optim, parallel, trainer
from vidrec.errors import UserError
from vidrec.models import build_model
from vidrec.tools import bench, gpu_report


def test_peaks_by_device_kind_and_override():
  assert gpu_report.peak_tflops("NVIDIA H100 80GB HBM3") == {"bfloat16": 989.4, "float32": 66.9, "tf32": 494.7}
  assert gpu_report.peak_tflops("NVIDIA H100 PCIe")["bfloat16"] == 756.0     # not the SXM part's
  assert gpu_report.peak_tflops("NVIDIA H200") == gpu_report.peak_tflops("NVIDIA H100 80GB HBM3")
  assert gpu_report.peak_tflops("cpu") == {}
  assert gpu_report.peak_tflops("cpu", 2.0) == {"bfloat16": 2.0, "float32": 2.0}


def test_a_batch_that_does_not_fit_shrinks_and_other_errors_are_raised():
  over = gpu_report._OverMemory(estimate=300 * 2**30, limit=80 * 2**30, batch=64)   # 64 x 0.85 x 80 / 300
  assert gpu_report._smaller_batch(over, 64) == 14
  assert gpu_report._smaller_batch(gpu_report._OverMemory(90, 80, 64), 64) == 32      # at most halved
  assert gpu_report._smaller_batch(RuntimeError("RESOURCE_EXHAUSTED: Out of memory"), 8) == 4
  assert gpu_report._smaller_batch(RuntimeError("RESOURCE_EXHAUSTED"), 1) is None
  assert gpu_report._smaller_batch(ValueError("a bug"), 8) is None


def test_budget_skips_what_the_time_left_cannot_hold():
  now = [0.0]
  budget = gpu_report.Budget(10.0, clock=lambda: now[0])
  assert budget.run("a", 0.0, lambda: (now.__setitem__(0, 7.0), "ran")[1]) == "ran"
  assert budget.left() == 3.0
  assert budget.run("b", 4.0, lambda: pytest.fail("ran over the budget")) is None
  assert budget.run("c", 2.0, lambda: "ran") == "ran"
  assert budget.skipped == ["b"]


@pytest.mark.slow
def test_toy_row_counts_xla_flops_and_mfu_against_the_assumed_peak():
  row = gpu_report.measure_model("resnet3d", "float32", toy=True, steps=1, peaks={"float32": 0.5})
  config, classes = gpu_report.model_config("resnet3d", "float32", toy=True)
  assert row["batch"] == gpu_report.TOY_BATCH and row["clip"] == [8, 40, 40, 3] and not row["batches_out_of_memory"]
  assert row["step_s"] > 0 and row["clips_per_s"] == pytest.approx(row["batch"] / row["step_s"])
  assert row["mfu"] == pytest.approx(row["tflops"] / 0.5) and row["peak_tflops"] == 0.5
  # XLA's count of the compiled step is within 2x of that of the step lowered with native convolutions
  model = build_model(config.model, classes)
  tx, schedule = optim.make_optimizer(config.optimizer, config.num_train_steps)
  mesh = Mesh(np.array(jax.devices()[:1]), (parallel.DATA,))
  state = jax.eval_shape(lambda r: trainer.init_state(model, tx, config, r), jax.random.key(0))
  batch = {"video": jax.ShapeDtypeStruct(trainer.input_shape(config, row["batch"]), np.float32),
           "label": jax.ShapeDtypeStruct((row["batch"],), np.int32)}
  step_fn = trainer.make_train_step(model, tx, losses.LOSSES.get(config.loss.name), config.loss, schedule,
                                    jax.random.key(1), config, mesh)
  native = bench.native_flops(step_fn, state, batch) / 1e12
  assert 0.5 * native < row["tflop_per_step"] < 2 * native
  assert row["xla_peak_gib"] > 0


def test_nothing_fits_a_zero_budget_and_unknown_names_are_user_errors(tmp_path):
  report = gpu_report.run(str(tmp_path), ["resnet3d"], ["bfloat16", "float32"], 1, 0.0, toy=True)
  assert report["models"] == [] and report["input_pipeline"] is None and report["tvl1"] is None
  assert report["skipped"] == ["input_pipeline", "tvl1", "resnet3d bfloat16", "resnet3d float32"]
  assert json.loads((tmp_path / "gpu_report.json").read_text())["skipped"] == report["skipped"]
  assert "Skipped (over the 0 s budget): input_pipeline, tvl1, resnet3d bfloat16" in (tmp_path / "gpu_report.md").read_text()
  with pytest.raises(UserError, match="--models takes some of sgn,joint_lstm"):
    gpu_report.run(str(tmp_path), ["r3d"], ["float32"], 1, 10.0, toy=True)


@pytest.mark.slow
def test_toy_run_end_to_end(tmp_path):
  """The command at toy size: one model row, the input pipeline on one core, TV-L1, JSON and Markdown."""
  assert gpu_report.main(["--out", str(tmp_path), "--toy", "--models", "resnet3d", "--dtypes", "float32",
                          "--steps", "1", "--peak_tflops", "1"]) == 0
  report = json.loads((tmp_path / "gpu_report.json").read_text())
  assert [(r["model"], r["dtype"]) for r in report["models"]] == [("resnet3d", "float32")]
  assert set(report["input_pipeline"]) == {"a_dense16x112_s128", "b_segments8x224_s256"}
  assert all(v > 0 for v in report["input_pipeline"].values())
  assert report["tvl1"].get("pairs_per_s", 1) > 0 and report["skipped"] == []
  md = (tmp_path / "gpu_report.md").read_text()
  assert "| resnet3d | 8x40x40x3 | 2 | float32 |" in md and "% of 1 |" in md and "clips/s on one host core" in md
