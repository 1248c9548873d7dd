"""Predicting video files with a trained run (``predict.py``): no dataset split, no ``--config``.

A run's ``WORKDIR/config.json`` (written by training) gives the config, the final stage's for staged
procedures (``procedures.eval_config``), its ``WORKDIR/dataset.json`` (``run_record.dataset_record``) the
class names, the short side frames were stored at and the flow algorithm, and its checkpoint the
weights: the workdir alone is enough, the dataset is not opened (only for a workdir trained before
``dataset.json`` was written, see :func:`dataset_of`). Each file is
decoded with PyAV as ``prepare`` decodes it (``decode.decode_video``: every container and codec,
resized to the short side the run's dataset was stored at; flow streams computed on the fly with
``vidrec.data.flow.extract``, the algorithm the dataset was prepared with), sampled by the test sampler
(``config.input``), cut into the test views evaluation builds (``pipeline.test_views``: clips x crops,
flips) and scored by evaluation's jitted function (``evaluate.view_outputs_fn``) in batches of
``eval.batch_size`` sharded over the devices (``evaluate.collect_view_outputs``); the views of a file
are aggregated by ``eval.aggregation`` for every head of ``eval.heads``. Files are decoded in a thread
pool while the model runs (PyAV, OpenCV and TensorFlow release the GIL).

The frames are not JPEG-encoded on the way, as ``prepare`` stores them: a file holding exactly the
frames of a test record gets exactly the scores ``eval.py`` gives that record.
"""
from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import glob
import itertools
import json
import os
import time
from typing import Any, Callable, Iterator, Sequence

import jax
import ml_collections
import numpy as np
import tensorflow as tf

from vidrec import aggregations, evaluate, fs, parallel, procedures, run_record
from vidrec.data import datasets
from vidrec.data import flow as flow_lib
from vidrec.data import modalities, pipeline
from vidrec.data.builders import decode
from vidrec.data.builders.listing import VIDEO_EXTENSIONS
from vidrec.errors import MissingDataError, UserError


def _tuples(tree: Any) -> Any:
  """JSON lists back to the tuples the configs hold (model fields must stay hashable)."""
  if isinstance(tree, dict):
    return {k: _tuples(v) for k, v in tree.items()}
  if isinstance(tree, list):
    return tuple(_tuples(v) for v in tree)
  return tree


def run_config(workdir: str) -> ml_collections.ConfigDict:
  """``WORKDIR/config.json``, the resolved config training recorded (``run_record``)."""
  root = fs.path(workdir)
  if not root.exists():
    raise MissingDataError(f"--workdir {workdir} does not exist: pass the workdir of a run trained with "
                           f"train.py.")
  if not (root / "config.json").exists():
    raise MissingDataError(f"{workdir} holds no config.json, so it is not a vidrec run: pass the --workdir "
                           f"of a run trained with train.py (it writes WORKDIR/config.json).")
  return ml_collections.ConfigDict(_tuples(json.loads((root / "config.json").read_text())))


def dataset_of(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """What inference needs about the run's dataset: ``WORKDIR/dataset.json``, which training writes; for a
  workdir trained before it was, the same read from the prepared dataset (never prepared here)."""
  record = run_record.read_dataset_record(workdir)
  if record is not None:
    return record
  name, data_dir = config.dataset.name, config.dataset.data_dir or datasets.default_data_dir()
  try:
    builder = datasets.load_builder(name, data_dir, prepare=False)
  except MissingDataError as e:
    raise MissingDataError(
        f"{workdir} holds no dataset.json (it was trained before training wrote one) and its dataset "
        f"{name!r} is not prepared in {data_dir}, so its class names and the size its frames were stored "
        f"at are unknown. Where the dataset is, write the file once: python -m vidrec.tools.dataset_record "
        f"--workdir {workdir} [--data_dir D]; or pass --config.dataset.data_dir=D (the folder it was "
        f"prepared in).") from e
  return run_record.dataset_record(builder, name)


def stored_short_side(dataset: dict[str, Any]) -> int:
  """The short side the run's dataset stores its frames at (``dataset_of``): decoded files are resized
  to it, as ``prepare`` resizes."""
  if not dataset["short_side"]:
    raise UserError(f"Dataset {dataset['name']} records no short side its frames were stored at, so video "
                    f"files cannot be resized as it was prepared.")
  return int(dataset["short_side"])


@dataclasses.dataclass
class Predictor:
  """A restored run: its eval config, model, variables, scored heads, class names and the two functions
  of the prediction path (views of a file, scores of a batch of views)."""
  config: ml_collections.ConfigDict
  model: Any
  mesh: Any
  variables: Any
  heads: tuple[str, ...]
  class_names: list[str]
  step: int
  short_side: int
  flow_algorithm: str
  apply_fn: Callable
  views_fn: Callable


def load(config: ml_collections.ConfigDict, workdir: str, step: int | None = None) -> Predictor:
  """Restores ``step`` (default ``eval.checkpoint_step``, else the latest) of the run in ``workdir``."""
  from vidrec import trainer  # pylint: disable=g-import-not-at-top
  from vidrec.tools import trained  # pylint: disable=g-import-not-at-top
  config = procedures.eval_config(config, workdir)
  dataset = dataset_of(config, workdir)
  s, ts = trained.restore(config, workdir, step, dataset["num_classes"])
  parallel.check_batch_size(config.eval.batch_size)
  variables = trainer.variables_of(ts)
  heads = evaluate.eval_heads(config, s.model, variables)
  modalities.get(config.input, dataset["features"])     # the model's streams are the dataset's
  flow = (dataset["flow"] or {}).get("algorithm", "")
  return Predictor(config, s.model, s.mesh, variables, heads, list(dataset["class_names"]), int(ts.step),
                   stored_short_side(dataset), flow, evaluate.view_outputs_fn(s.model, config, heads),
                   views_function(config.input))


def views_function(cfg: ml_collections.ConfigDict) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
  """``pipeline.test_views`` for ``input`` config ``cfg`` as one traced TF function (frames of any size
  and length, the number of clips)."""
  frames = tf.TensorSpec([None, None, None, modalities.get(cfg).channels(cfg)], tf.uint8)
  return tf.function(lambda f, n: pipeline.test_views(f, n, cfg),
                     input_signature=[frames, tf.TensorSpec([], tf.int32)])


def expand_inputs(inputs: Sequence[str]) -> list[str]:
  """Files as named, directories walked for video files (``VIDEO_EXTENSIONS``, sorted), glob patterns
  expanded; a name that is none of these stays (it is reported as missing)."""
  out = []
  for name in inputs:
    if os.path.isdir(name):
      out += sorted(os.path.join(root, f) for root, _, files in os.walk(name) for f in files
                    if os.path.splitext(f)[1].lower() in VIDEO_EXTENSIONS)
    elif any(c in name for c in "*?[") and not os.path.exists(name):
      out += sorted(glob.glob(name, recursive=True)) or [name]
    else:
      out.append(name)
  return out


def file_streams(path: str, keys: Sequence[str], short_side: int,
                 flow_algorithm: str) -> dict[str, np.ndarray]:
  """The record streams ``keys`` of one video file as ``prepare`` would store them, before JPEG: ``video``
  uint8 [T, H, W, 3] at short side ``short_side``; ``<stream>_x`` / ``_y`` [T-1, H, W, 1], the quantised
  fields of ``flow.extract``. Raises ``decode.BadVideo`` for a file that does not decode."""
  if not os.path.isfile(path):
    raise decode.BadVideo("no such file")
  frames, _ = decode.decode_video(path, short_side)
  streams = {"video": frames}
  if set(keys) - set(streams):
    warped = any(k.startswith("warped") for k in keys)
    fields = flow_lib.extract(frames, flow_algorithm or "tvl1", warped=warped)
    for name, f in fields.items():
      streams[f"{name}_x"], streams[f"{name}_y"] = f[..., :1], f[..., 1:]
  return {k: streams[k] for k in keys}


def file_views(path: str, p: Predictor) -> np.ndarray:
  """Every test view of one file: uint8 [V, L, crop, crop, C], view = clip * crops + crop."""
  cfg = p.config.input
  modality = modalities.get(cfg)
  streams = file_streams(path, modality.features, p.short_side, p.flow_algorithm)
  clips = pipeline.make_sampler(cfg).test(len(streams[modality.features[0]]))
  flat = clips.reshape(-1)
  frames = modality.assemble({k: tf.constant(v[flat]) for k, v in streams.items()}, cfg)
  return p.views_fn(frames, tf.constant(len(clips), tf.int32)).numpy()


@dataclasses.dataclass
class Result:
  """One file: its aggregated scores per head ([C]; None when it failed, ``error`` says why), its view
  count, the seconds spent decoding it and building its views, and (for ``--explain``) its first view."""
  file: str
  error: str | None = None
  scores: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
  num_views: int = 0
  seconds: float = 0.0
  first_view: np.ndarray | None = None


def _in_order(fn: Callable[[int], Any], n: int, workers: int) -> Iterator[Any]:
  """``fn(0), ..., fn(n - 1)`` in order, computed by ``workers`` threads, at most 2 x workers ahead."""
  with concurrent.futures.ThreadPoolExecutor(workers) as pool:
    todo = iter(range(n))
    pending = collections.deque(pool.submit(fn, i) for i in itertools.islice(todo, 2 * workers))
    while pending:
      yield pending.popleft().result()
      pending.extend(pool.submit(fn, i) for i in itertools.islice(todo, 1))


def _batch(rows: Sequence[tuple[int, int, np.ndarray]]) -> dict[str, np.ndarray]:
  """(file index, view index, view) rows -> one batch of ``collect_view_outputs`` (labels unused: 0)."""
  return {"video": np.stack([v for _, _, v in rows]), "label": np.zeros(len(rows), np.int32),
          "video_index": np.array([i for i, _, _ in rows], np.int32),
          "view_index": np.array([j for _, j, _ in rows], np.int32)}


def predict(p: Predictor, files: Sequence[str], workers: int | None = None) -> list[Result]:
  """Scores every file; a file that cannot be decoded gets its ``error`` and the others go on."""
  results = [Result(f) for f in files]
  batch_size = p.config.eval.batch_size

  def work(i: int) -> tuple[int, np.ndarray | None]:
    start = time.perf_counter()
    try:
      views = file_views(files[i], p)
    except decode.BadVideo as e:
      views, results[i].error = None, str(e)
    except Exception as e:  # pylint: disable=broad-except  (any fault of one file: TF, OpenCV, PyAV)
      views, results[i].error = None, f"{type(e).__name__}: {str(e).strip().splitlines()[0][:300]}"
    results[i].seconds = time.perf_counter() - start
    return i, views

  def batches() -> Iterator[dict[str, np.ndarray]]:
    rows: list[tuple[int, int, np.ndarray]] = []
    for i, views in _in_order(work, len(files), workers or os.cpu_count() or 1):
      if views is not None:
        results[i].num_views, results[i].first_view = len(views), views[0]
        rows += [(i, j, v) for j, v in enumerate(views)]
      while len(rows) >= batch_size:
        yield _batch(rows[:batch_size])
        rows = rows[batch_size:]
    if rows:
      yield _batch(rows)

  views, labels = evaluate.collect_view_outputs(p.apply_fn, p.variables, batches(), p.mesh, p.heads,
                                                evaluate.blank_batch(p.config))
  rule = aggregations.AGGREGATIONS.get(p.config.eval.aggregation)
  for h in p.heads:
    index, scores, _, _ = evaluate.local_video_scores(views[h], labels, len(p.class_names), rule,
                                                      evaluate.num_test_crops(p.config.input))
    for i, row in zip(index, scores):
      results[i].scores[h] = row
  return results


def warm_up(p: Predictor) -> None:
  """Compiles the model's function and traces the views' one, so videos/s counts videos only."""
  from vidrec import trainer  # pylint: disable=g-import-not-at-top
  blank = evaluate.blank_batch(p.config)
  batch = parallel.to_global({"video": blank["video"], "label": blank["label"]}, p.mesh)
  jax.block_until_ready(p.apply_fn(p.variables, batch["video"], batch["label"]))
  _, frames, _, _, channels = trainer.input_shape(p.config, 1, test=True)
  side = max(p.short_side, *p.config.input.resize)
  p.views_fn(tf.zeros([frames, side, side, channels], tf.uint8), tf.constant(1, tf.int32))


def top_k(scores: np.ndarray, class_names: Sequence[str], k: int) -> list[tuple[str, float]]:
  """The ``k`` highest (class, score) pairs, best first (ties: lower class index first)."""
  order = np.argsort(-scores, kind="stable")[:k]
  return [(class_names[c], float(scores[c])) for c in order]


def report_line(r: Result, p: Predictor, k: int) -> str:
  """One line per file: its top-k of the first head, or why it failed."""
  if r.error is not None:
    return f"{r.file}: FAILED: {r.error}"
  best = "  ".join(f"{name} {score:.3f}" for name, score in top_k(r.scores[p.heads[0]], p.class_names, k))
  return f"{r.file}: {best}  ({r.num_views} views)"


def json_record(r: Result, p: Predictor, k: int) -> dict:
  """``--json``: file, top-k of the first head, every head's scores, view count, seconds (decoding and
  building the views), error (null when predicted)."""
  return {"file": r.file, "error": r.error,
          "top_k": [{"class": c, "score": s} for c, s in top_k(r.scores[p.heads[0]], p.class_names, k)]
                   if r.error is None else [],
          "scores": {h: [float(x) for x in v] for h, v in r.scores.items()},
          "num_views": r.num_views, "seconds": round(r.seconds, 4)}


def run(config: ml_collections.ConfigDict, workdir: str, inputs: Sequence[str], *, top: int = 5,
        step: int | None = None, json_path: str | None = None, explain_dir: str | None = None,
        workers: int | None = None) -> int:
  """``predict.py``: prints a line per file and a summary with videos/s; returns the exit status (0 all
  predicted, 1 some file failed). User errors (no run, no checkpoint, no files) raise ``UserError``."""
  from vidrec.tools import explain  # pylint: disable=g-import-not-at-top
  files = expand_inputs(inputs)
  if not files:
    raise UserError(f"No video files in {' '.join(inputs)} (looked for "
                    f"{', '.join(sorted(VIDEO_EXTENSIONS))}).")
  p = load(config, workdir, step)
  if explain_dir:
    explain.check(p.config)
  start = time.perf_counter()
  warm_up(p)
  compile_seconds, start = time.perf_counter() - start, time.perf_counter()
  results = predict(p, files, workers)
  seconds = time.perf_counter() - start
  for r in results:
    print(report_line(r, p, top))
  done = [r for r in results if r.error is None]
  print(f"predicted {len(done)} of {len(results)} files in {seconds:.2f} s: "
        f"{len(done) / seconds:.2f} videos/s, "
        f"{sum(r.num_views for r in done) / seconds:.1f} views/s (step {p.step}, {p.config.eval.aggregation} "
        f"of {p.heads[0]}; compiling took {compile_seconds:.1f} s before)")
  if json_path:
    with open(json_path, "w") as f:
      f.writelines(json.dumps(json_record(r, p, top)) + "\n" for r in results)
  if explain_dir:
    for path in explain.write(p, done, explain_dir):
      print(f"wrote {path}")
  return 1 if len(done) < len(results) else 0
