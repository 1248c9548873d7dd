"""The exported inference function: run in a fresh process with jax and numpy alone (no vidrec, flax or
TensorFlow imported) it gives predict.py's probabilities; it is made from the workdir alone (no dataset);
the batch of views is symbolic; the rules inside it are vidrec.aggregations' rules."""
import json
import os
import re
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest

from trained_run import no_dataset, trained_run, workdir_alone  # noqa: F401  (the session fixture)
from vidrec import aggregations
from vidrec.tools import predict
from vidrec.tools import export

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

LOADER_CHECK = """
import sys
sys.path.insert(0, sys.argv[1])
import numpy as np
import export_loader
exported, classes, preprocess = export_loader.load(sys.argv[2])
views = np.load(sys.argv[3])
np.save(sys.argv[4], export_loader.probabilities(exported, views))
np.save(sys.argv[5], export_loader.probabilities(exported, views[:2]))
imported = sorted(m for m in ("vidrec", "flax", "tensorflow", "ml_collections") if m in sys.modules)
assert not imported, imported
"""


@pytest.mark.parametrize("rule", ["mean_softmax", "mean_logits", "max", "majority_vote"])
def test_rules_inside_the_export_are_the_numpy_rules(rule):
  logits = np.random.default_rng(0).standard_normal((7, 5)).astype(np.float32)
  logits[3] = logits[1]                                   # a tie of votes for majority_vote
  np.testing.assert_allclose(export.AGGREGATE.get(rule)(jnp.asarray(logits)),
                             aggregations.AGGREGATIONS.get(rule)(logits), rtol=1e-5, atol=1e-6)


def test_export_runs_without_vidrec_and_gives_predict_probabilities(trained_run, tmp_path):  # noqa: F811
  video = sorted(trained_run.files)[1]
  workdir = workdir_alone(trained_run.workdir, tmp_path / "copy")          # with no dataset to open
  with no_dataset():
    record = export.export(predict.run_config(workdir), workdir, str(tmp_path), example=video)
  assert record["frames_per_view"] == 4 and record["crop"] == 24 and record["crops_per_clip"] == 3
  assert json.load(open(tmp_path / "classes.json")) == list(trained_run.scores["class_names"])
  out = [str(tmp_path / n) for n in ("all.npy", "two.npy")]
  run = subprocess.run([sys.executable, "-c", LOADER_CHECK, os.path.join(ROOT, "vidrec", "tools"),
                        str(tmp_path), str(tmp_path / "example_views.npy"), *out],
                       capture_output=True, text=True, timeout=300)
  assert run.returncode == 0, run.stderr
  probabilities = np.load(out[0])
  k = trained_run.files[video]
  np.testing.assert_allclose(probabilities, trained_run.scores["logits"][k], atol=1e-5)   # mean_softmax
  np.testing.assert_allclose(probabilities, np.load(tmp_path / "example_probabilities.npy"), atol=1e-6)
  views = np.load(tmp_path / "example_views.npy")
  direct = np.asarray(export.inference_fn(predict.load(trained_run.config, trained_run.workdir), "logits",
                                          per_view=False)(views[:2]))
  np.testing.assert_allclose(np.load(out[1]), direct, atol=1e-5)            # V = 2 through the same export


def test_loader_script_prints_top5(trained_run, tmp_path):  # noqa: F811
  export.export(predict.run_config(trained_run.workdir), trained_run.workdir, str(tmp_path), per_view=True,
                example=sorted(trained_run.files)[0])
  loader = os.path.join(ROOT, "vidrec", "tools", "export_loader.py")
  run = subprocess.run([sys.executable, loader, str(tmp_path),
                        str(tmp_path / "example_views.npy")], capture_output=True, text=True, timeout=300)
  assert run.returncode == 0, run.stderr
  lines = run.stdout.strip().splitlines()
  assert len(lines) == 6 + 1 and "softmax per view" in lines[-1]           # one line per view, then the note
  assert len(re.findall(r" \d\.\d{4}", lines[0])) == 5                      # five (class, probability) pairs


def test_saved_model_gives_the_same_probabilities(trained_run, tmp_path):  # noqa: F811
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  export.export(predict.run_config(trained_run.workdir), trained_run.workdir, str(tmp_path), saved_model=True,
                example=sorted(trained_run.files)[2])
  views = np.load(tmp_path / "example_views.npy")
  served = tf.saved_model.load(str(tmp_path / "saved_model")).signatures["serving_default"]
  (probabilities,) = served(views=tf.constant(views)).values()
  np.testing.assert_allclose(probabilities.numpy(), np.load(tmp_path / "example_probabilities.npy"),
                             atol=1e-6)
