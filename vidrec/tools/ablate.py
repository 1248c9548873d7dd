"""Ablations: train + evaluate several config arms over several seeds; print a mean ± std table.

  python -m vidrec.tools.ablate --config configs/u2s_sthv2.py:ablation --workdir workdir/abl_u2s \
      --arm "one-pass: model.variant=one_pass" --arm "U2S: model.variant=u2s" --seeds 0,1,2

Each arm is ``NAME: key=value[, key=value ...]`` (config overrides, values parsed as Python literals
when possible). Runs are independent workdirs ``<workdir>/<arm>/seed<k>`` (finished runs are reused,
so an interrupted ablation continues); the table (markdown) is printed and written to
``<workdir>/table.md`` with the command that produced it.
"""
from __future__ import annotations

import ast
import json
import os
import re
import shlex
import sys

import numpy as np
from absl import flags
from ml_collections import config_flags

from vidrec import cli, fs
from vidrec.config import with_overrides as apply_overrides

_CONFIG = config_flags.DEFINE_config_file("config", None, "Base config of every arm.", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Root of the runs.")
_ARMS = flags.DEFINE_multi_string("arm", [], "NAME: key=value, key=value ...")
_SEEDS = flags.DEFINE_string("seeds", "0,1,2", "Comma-separated seeds.")
_METRIC = flags.DEFINE_string("metric", "top1", "Report key to tabulate (per head: heads/<head>/<key>).")


def parse_arm(spec: str) -> tuple[str, dict[str, object]]:
  """'NAME: a.b=1, c=x' -> ('NAME', {'a.b': 1, 'c': 'x'})."""
  name, _, rest = spec.partition(":")
  overrides = {}
  for item in filter(None, (s.strip() for s in re.split(r",\s*(?=[\w.]+=)", rest))):
    key, _, value = item.partition("=")
    try:
      overrides[key.strip()] = ast.literal_eval(value.strip())
    except (ValueError, SyntaxError):
      overrides[key.strip()] = value.strip()
  return name.strip(), overrides


def _lookup(report: dict, key: str) -> float:
  for part in key.split("/"):
    report = report[part]
  return float(report)


def run_arm(config, workdir: str, metric: str) -> float:
  from vidrec import evaluate, procedures  # pylint: disable=g-import-not-at-top
  path = fs.path(workdir) / "eval" / f"{config.dataset.eval_split}_report.json"
  if not path.exists():
    procedures.train(config, workdir)
    evaluate.evaluate(procedures.eval_config(config, workdir), workdir)
  return _lookup(json.loads(path.read_text()), metric)


def table(results: dict[str, list[float]], seeds: list[int], metric: str) -> str:
  lines = [f"| arm | {metric} mean ± std | " + " | ".join(f"seed {s}" for s in seeds) + " |",
           "| --- | --- | " + " | ".join("---" for _ in seeds) + " |"]
  for name, values in results.items():
    v = np.array(values)
    lines.append(f"| {name} | {v.mean():.4f} ± {v.std(ddof=1) if len(v) > 1 else 0:.4f} | "
                 + " | ".join(f"{x:.4f}" for x in values) + " |")
  return "\n".join(lines)


def main(argv):
  del argv
  seeds = [int(s) for s in _SEEDS.value.split(",")]
  results: dict[str, list[float]] = {}
  for spec in _ARMS.value:
    name, overrides = parse_arm(spec)
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
    for seed in seeds:
      config = apply_overrides(_CONFIG.value, {**overrides, "seed": seed})
      value = run_arm(config, os.path.join(_WORKDIR.value, slug, f"seed{seed}"), _METRIC.value)
      results.setdefault(name, []).append(value)
      print(f"{name} seed {seed}: {_METRIC.value}={value:.4f}", flush=True)
  command = shlex.join(["python", "-m", "vidrec.tools.ablate"] + sys.argv[1:])
  text = f"`{command}`\n\n{table(results, seeds, _METRIC.value)}\n"
  print(text)
  (fs.path(_WORKDIR.value) / "table.md").write_text(text)


if __name__ == "__main__":
  flags.mark_flags_as_required(["config", "workdir"])
  cli.run(main)
