"""What a workdir records about its run, and the guard that keeps a resumed run the same run.

``WORKDIR/config.json`` is the resolved config of the latest start; ``WORKDIR/run.json`` lists every
start (time, command line, step, git commit, package versions, devices, and the weights it started
from: ``init_from``, the recipe's ``pretrained`` source, ``from_scratch``); ``WORKDIR/dataset.json``
what inference needs about the dataset (:func:`dataset_record`), so that ``predict.py`` and the export
run from the workdir alone. A run resumed from a
checkpoint whose config differs from ``config.json`` in a key that changes the maths (anything but
``FREE_KEYS``: model, data, input, loss, optimiser, batch, seed) stops with the list
of differing keys, unless ``--allow_config_change``; a key added to vidrec since the run started
counts at its default.
"""
from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import subprocess
import sys
from typing import Any

import jax
import ml_collections
from absl import logging

from vidrec import config as config_lib
from vidrec import fs
from vidrec.errors import UserError

# Keys that may change between the starts of one run: the length (extending a run; with a schedule that
# depends on it, e.g. cosine, the remaining learning rates follow the new length), logging,
# checkpointing, evaluation, data location, and the pretrained-weights declaration (read only at a fresh
# start, so older workdirs without these keys still resume).
FREE_KEYS = ("pretrained", "from_scratch", "num_train_steps", "log_every_steps", "checkpoint_every_steps",
             "keep_checkpoints", "eval", "profile_steps", "dataset.data_dir",
             "dataset.eval_split", "dataset.max_unreadable_fraction", "input.prefetch",
             "input.num_test_clips", "input.test_spatial", "input.test_flip")
DATASET_FILE = "dataset.json"
PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "tensorflow", "tensorflow-cpu",
            "tensorflow-datasets", "numpy", "ml_collections", "vidrec")


def config_as_json(config: ml_collections.ConfigDict) -> dict[str, Any]:
  return json.loads(config.to_json_best_effort(sort_keys=True))


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
  out = {}
  for k, v in tree.items():
    if isinstance(v, dict):
      out.update(flatten(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = v
  return out


def changed_keys(old: dict[str, Any], new: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
  """{key: (old, new)} for every maths-changing key that differs (missing = None). A key the old run's
  config lacks but ``base_config`` has (added to vidrec since) counts at its default there."""
  a, b = flatten(old), flatten(new)
  a.update({k: v for k, v in flatten(config_as_json(config_lib.base_config())).items() if k in b and k not in a})
  free = lambda k: any(k == f or k.startswith(f + ".") for f in FREE_KEYS)  # noqa: E731
  return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if not free(k) and a.get(k) != b.get(k)}


def check_resume(workdir: str, config: ml_collections.ConfigDict, allow_change: bool) -> None:
  """Raises ``UserError`` when resuming ``workdir`` with a config that changes the maths."""
  path = fs.path(workdir) / "config.json"
  if not path.exists():
    return
  diff = changed_keys(json.loads(path.read_text()), config_as_json(config))
  if not diff:
    return
  listing = "; ".join(f"{k}: {a!r} -> {b!r}" for k, a, b in ((k, *v) for k, v in diff.items()))
  if allow_change:
    logging.warning("Resuming with a changed config (--allow_config_change): %s", listing)
    return
  raise UserError(
      f"{workdir} holds a run whose config differs from this one in {len(diff)} key(s) that change "
      f"the training maths: {listing}. Resuming would not continue the same run: use a new --workdir, "
      f"restore those values, or pass --allow_config_change to resume anyway.")


def record_start(workdir: str, config: ml_collections.ConfigDict, start_step: int, builder: Any) -> None:
  """Writes ``config.json`` and ``dataset.json`` (of the run's dataset ``builder``) and appends this
  start to ``run.json`` (process 0)."""
  if jax.process_index() != 0:
    return
  root = fs.path(workdir)
  root.mkdir(parents=True, exist_ok=True)
  (root / "config.json").write_text(json.dumps(config_as_json(config), indent=1) + "\n")
  write_dataset_record(workdir, dataset_record(builder, config.dataset.name))
  run_path = root / "run.json"
  starts = json.loads(run_path.read_text())["starts"] if run_path.exists() else []
  starts.append({
      "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
      "argv": sys.argv, "start_step": start_step, "git": git_state(),
      "packages": package_versions(), "python": sys.version.split()[0],
      "devices": f"{jax.device_count()} x {jax.devices()[0].device_kind}",
      "processes": jax.process_count(),
      "weights": {"init_from": config.get("init_from", ""), "pretrained": config.get("pretrained", ""),
                  "from_scratch": bool(config.get("from_scratch", False))}})
  run_path.write_text(json.dumps({"starts": starts}, indent=1) + "\n")


def dataset_record(builder: Any, name: str) -> dict[str, Any]:
  """What inference needs about the dataset ``name`` that ``builder`` opened: its version, class names,
  record features, the short side its frames were stored at (``prepare``'s ``short_side``, the synthetic
  dataset's ``resolution``: files are decoded to it), the JPEG quality, its flow metadata
  (``flow.metadata``: algorithm, backend, TV-L1 parameters, bound, warped; None without flow) and its flip
  label map (``pipeline.VideoSource``'s: None where flipping would change labels unknowably). Frames keep
  each source video's frame rate, so the dataset has none to record."""
  info = builder.info
  names = list(info.features["label"].names)
  side = getattr(builder, "short_side", None) or getattr(builder.builder_config, "resolution", None)
  flip_map = getattr(builder, "flip_label_map", lambda: range(len(names)))()
  metadata = dict(info.metadata or {})
  return {"name": name, "version": str(info.version), "class_names": names, "num_classes": len(names),
          "features": sorted(info.features), "short_side": int(side) if side else None,
          "jpeg_quality": metadata.get("jpeg_quality"), "flow": metadata.get("flow"),
          "flip_label_map": None if flip_map is None else [int(c) for c in flip_map]}


def write_dataset_record(workdir: str, record: dict[str, Any]) -> None:
  (fs.path(workdir) / DATASET_FILE).write_text(json.dumps(record, indent=1) + "\n")


def read_dataset_record(workdir: str) -> dict[str, Any] | None:
  """``WORKDIR/dataset.json``; None for a workdir trained before it was written."""
  path = fs.path(workdir) / DATASET_FILE
  return json.loads(path.read_text()) if path.exists() else None


def package_versions() -> dict[str, str]:
  out = {}
  for name in PACKAGES:
    try:
      out[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      pass
  return out


def git_state() -> dict[str, Any] | None:
  """The commit of the vidrec source tree and whether it has uncommitted changes (None: not git)."""
  src = os.path.dirname(os.path.abspath(__file__))
  try:
    commit = subprocess.run(["git", "-C", src, "rev-parse", "HEAD"], capture_output=True, text=True,
                            timeout=10, check=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", src, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, timeout=10, check=True).stdout.strip()
  except (OSError, subprocess.SubprocessError):
    return None
  return {"commit": commit, "dirty": bool(dirty)}
