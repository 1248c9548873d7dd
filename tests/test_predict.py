"""predict.py: video files holding a test split's frames get eval.py's scores, from the workdir alone (no
dataset); bad files are reported and the rest predicted; a folder is walked and left as it was; exit
codes 0 / 1 / 2."""
import json
import os
import shutil
import subprocess
import sys
import types

import numpy as np
import pytest

import fixtures_video as fx
from trained_run import no_dataset, trained_run, workdir_alone  # noqa: F401  (the session fixture)
from vidrec.tools import explain, predict
from vidrec.data import datasets
from vidrec.errors import MissingDataError, UserError
from vidrec.tools import dataset_record

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def predictor(trained_run, tmp_path_factory):  # noqa: F811
  """The run loaded from a copy of its workdir, with no dataset to open."""
  workdir = workdir_alone(trained_run.workdir, tmp_path_factory.mktemp("alone"))
  with no_dataset():
    return predict.load(predict.run_config(workdir), workdir)


def test_dataset_json_holds_what_inference_needs(trained_run, tmp_path):  # noqa: F811
  """Training wrote W/dataset.json; a workdir without it (trained before) falls back to the dataset, and
  without the dataset too it is a user error naming the fix (the tool that writes the file)."""
  record = json.load(open(os.path.join(trained_run.workdir, "dataset.json")))
  builder = datasets.load_builder(trained_run.config.dataset.name, trained_run.config.dataset.data_dir)
  assert record["class_names"] == list(trained_run.scores["class_names"]) and record["num_classes"] == 12
  assert record["short_side"] == 32 and record["flow"] is None and "video" in record["features"]
  assert record["flip_label_map"] == builder.flip_label_map() != list(range(12))   # left <-> right classes
  old = workdir_alone(trained_run.workdir, tmp_path, keep_dataset_record=False)
  with pytest.raises(MissingDataError, match="no dataset.json.*vidrec.tools.dataset_record --workdir"):
    predict.dataset_of(predict.run_config(old), old)
  assert predict.dataset_of(trained_run.config, old) == record        # the config's data_dir: the builder
  assert dataset_record.write(old, trained_run.config.dataset.data_dir) == record
  with no_dataset():
    assert predict.dataset_of(predict.run_config(old), old) == record


def test_files_get_the_scores_eval_gives_their_records(trained_run, predictor):  # noqa: F811
  files = sorted(trained_run.files)
  results = predict.predict(predictor, files, workers=2)
  for r in results:
    k = trained_run.files[r.file]
    assert r.error is None and r.num_views == 2 * 3            # num_test_clips x "three" crops
    np.testing.assert_allclose(r.scores["logits"], trained_run.scores["logits"][k], atol=1e-5)
    assert r.scores["logits"].argmax() == trained_run.scores["logits"][k].argmax()
  assert predictor.class_names == list(trained_run.scores["class_names"])


def test_bad_files_are_reported_and_the_others_predicted(trained_run, predictor, tmp_path):  # noqa: F811
  bad = {"corrupt.mp4": fx.write_corrupt(tmp_path / "corrupt.mp4"),
         "empty.avi": fx.write_empty(tmp_path / "empty.avi"),
         "truncated.mp4": fx.write_truncated(tmp_path / "truncated.mp4", n_frames=24, codec="libx264")}
  header = tmp_path / "too_short.webm"                          # the first bytes only: no whole frame
  header.write_bytes(open(sorted(trained_run.files)[1], "rb").read()[:200])
  files = [str(bad["corrupt.mp4"]), sorted(trained_run.files)[0], str(bad["empty.avi"]), str(header),
           str(bad["truncated.mp4"]), str(tmp_path / "missing.mp4")]
  results = predict.predict(predictor, files, workers=2)
  errors = {os.path.basename(r.file): r.error for r in results}
  assert errors["video0.mp4"] is None and results[1].num_views == 6
  assert "empty file" in errors["empty.avi"] and "no such file" in errors["missing.mp4"]
  assert "truncated" in errors["truncated.mp4"] or "decode" in errors["truncated.mp4"]
  assert errors["corrupt.mp4"] and errors["too_short.webm"]
  np.testing.assert_allclose(results[1].scores["logits"], trained_run.scores["logits"][0], atol=1e-5)


def test_a_folder_is_walked_for_videos_and_left_unchanged(trained_run, tmp_path):  # noqa: F811
  folder = tmp_path / "in"
  shutil.copytree(trained_run.folder, folder / "sub")
  (folder / "notes.txt").write_text("not a video")
  before = sorted(p.name for p in folder.rglob("*"))
  found = predict.expand_inputs([str(folder), str(folder / "sub" / "*.webm"), "nothing/*.mp4"])
  assert [os.path.basename(f) for f in found] == ["video0.mp4", "video1.webm", "video2.avi", "video1.webm",
                                                   "*.mp4"]
  assert sorted(p.name for p in folder.rglob("*")) == before


def test_user_errors(trained_run, tmp_path):  # noqa: F811
  with pytest.raises(MissingDataError, match="does not exist"):
    predict.run_config(str(tmp_path / "nowhere"))
  shutil.copy(os.path.join(trained_run.workdir, "config.json"), tmp_path / "config.json")
  with pytest.raises(MissingDataError, match="No checkpoint"):
    predict.run(predict.run_config(str(tmp_path)), str(tmp_path), sorted(trained_run.files))
  with pytest.raises(UserError, match="has no explanation figure"):
    explain.check(trained_run.config)
  wider = predict.run_config(trained_run.workdir)
  wider.model.width = 8                                         # an override the checkpoint does not fit
  with pytest.raises(UserError, match="does not fit the model"):
    predict.load(wider, trained_run.workdir)


@pytest.mark.slow      # two fresh processes (TensorFlow, JAX, a compilation)
def test_command_line_exit_codes_json_and_videos_per_second(trained_run, tmp_path):  # noqa: F811
  broken = fx.write_corrupt(trained_run.folder.parent / "broken" / "broken.avi")
  out = subprocess.run([sys.executable, "predict.py", "--workdir", trained_run.workdir,
                        str(trained_run.folder),
                        str(broken), "--top_k", "3", "--json", str(tmp_path / "out.jsonl"),
                        "--config.eval.batch_size=4"], cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert out.returncode == 1, out.stderr
  lines = out.stdout.strip().splitlines()
  assert f"{broken}: FAILED: unreadable container" in out.stdout
  assert "predicted 3 of 4 files" in lines[-1] and "videos/s" in lines[-1]
  rows = [json.loads(line) for line in open(tmp_path / "out.jsonl")]
  assert [r["error"] is None for r in rows] == [True, True, True, False]
  assert all(len(r["top_k"]) == 3 and r["num_views"] == 6 and r["seconds"] > 0 for r in rows[:3])
  k = trained_run.files[rows[0]["file"]]
  np.testing.assert_allclose(rows[0]["scores"]["logits"], trained_run.scores["logits"][k], atol=1e-5)
  missing = subprocess.run([sys.executable, "predict.py", "--workdir", str(tmp_path / "nowhere"), "x.mp4"],
                           cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert missing.returncode == 2 and "Traceback" not in missing.stderr
  assert "does not exist" in " ".join(missing.stderr.split())
  old = workdir_alone(trained_run.workdir, tmp_path / "old", keep_dataset_record=False)
  no_data = subprocess.run([sys.executable, "predict.py", "--workdir", old, str(trained_run.folder)],
                           cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert no_data.returncode == 2 and "Traceback" not in no_data.stderr
  assert "python -m vidrec.tools.dataset_record" in " ".join(no_data.stderr.split())


def test_flow_streams_are_computed_from_the_file(tmp_path):
  """A flow model's views: TV-L1 of the decoded file (``flow.extract``) at the test segments, x/y fields
  interleaved per snippet, centre crop (resize = the stored size, so the crop is a plain slice)."""
  from vidrec.config import base_config  # pylint: disable=g-import-not-at-top
  from vidrec.data import flow, samplers  # pylint: disable=g-import-not-at-top
  from vidrec.data.builders import decode  # pylint: disable=g-import-not-at-top
  path = str(fx.write_video(tmp_path / "clip.avi", n_frames=9))
  cfg = base_config()
  cfg.input.update(modality="flow", sampler="segments", num_segments=3, frames_per_segment=2, resize=(32,),
                   crop=24, test_spatial="center")
  p = types.SimpleNamespace(config=cfg, short_side=32, flow_algorithm="tvl1",
                            views_fn=predict.views_function(cfg.input))
  views = predict.file_views(path, p)
  fields = flow.extract(decode.decode_video(path, 32)[0], "tvl1")["flow"]            # [8, 32, 40, 2]
  first = samplers.segments(len(fields), 3, None, 2)[::2]                               # each snippet's start
  want = np.stack([np.concatenate([fields[t], fields[t + 1]], -1)[4:28, 8:32] for t in first])
  assert views.shape == (1, 3, 24, 24, 4)
  np.testing.assert_array_equal(views[0], want)


def test_explain_draws_the_papers_figure(tmp_path):
  """--explain on an SGN: the alpha maps of its SGB over the first view, one PNG per file."""
  import jax  # pylint: disable=g-import-not-at-top
  from vidrec.config import base_config  # pylint: disable=g-import-not-at-top
  from vidrec.models import build_model  # pylint: disable=g-import-not-at-top
  cfg = base_config()
  cfg.model.update(name="sgn", width=4, num_stages=2, sgm="M", sgm_blocks=("2b",))
  model = build_model(cfg.model, 3)
  view = fx.make_frames(4, 0, 24, 24)
  variables = model.init(jax.random.key(0), view[None].astype(np.float32), train=False)
  p = types.SimpleNamespace(config=cfg, model=model, variables=variables, heads=("logits",),
                            class_names=["a", "b", "c"])
  result = predict.Result("x/clip.mp4", scores={"logits": np.array([0.2, 0.7, 0.1])}, first_view=view)
  explain.check(cfg)
  paths = list(explain.write(p, [result], str(tmp_path / "explain")))
  assert paths == [str(tmp_path / "explain" / "0000_clip.png")] and os.path.getsize(paths[0]) > 1000
