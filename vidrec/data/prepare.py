"""Prepare a real video dataset from files you already have (nothing is downloaded).

    python -m vidrec.data.prepare <dataset> --manual_dir M [--data_dir D] [--name NAME]
        [--config split1] [--short_side 128] [--workers N] [--source manual|tfds]
        [--train_ratio 0.8] [--flow tvl1 [--warped_flow] [--flow_backend jax|opencv]] [--overwrite]

<dataset>: ucf101, hmdb51, ssv2, penn_action, video_folder (see docs/datasets.md for where
to get each one and the layout M must have). Videos are decoded in ``--workers`` processes
(default: all CPUs) with a progress bar; bad videos are skipped with a warning. The last
line on stdout is a one-line JSON summary: where the data went, videos written per split,
and every skipped file with its reason (also kept in ``<data>/prepare_report.json``).

Config names: ``<config>`` at short side 128, ``<config>_s<S>`` otherwise (``--config
split1 --short_side 256`` prepares ``ucf101/split1_s256``). ``video_folder`` takes
``--name NAME`` (``--config NAME`` also works) and is used as ``video_folder/NAME``.
``--flow tvl1`` also stores the TV-L1 optical flow of every consecutive frame pair (``--warped_flow``:
and the camera-motion-compensated flow), quantised to uint8 as TSN does (``vidrec.data.flow``), in the
same records; the config name gets ``_tvl1[_warped]`` (``ucf101/split1_s256_tvl1_warped``). It needs
the ``flow`` extra (``pip install -e ".[flow]"``). ``--flow_backend`` picks the TV-L1: ``jax``
(default; batched in this process while the workers decode, ``docs/flow.md``) or ``opencv`` (the
reference, in the workers); the records do not depend on it, the report and metadata name it.
``--data_dir`` defaults to ``$VIDREC_DATA_DIR``, else the TFDS default
(``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from typing import Any, Sequence

from absl import logging
import tensorflow_datasets as tfds

from vidrec import cli
from vidrec.data import features as features_lib
from vidrec.data import flow as flow_lib
from vidrec.data.builders import BUILDERS
from vidrec.data.builders import common
from vidrec.data.builders.video_folder import VideoFolderConfig
from vidrec.errors import UserError

_DEFAULT_VARIANT = {"ucf101": "split1", "hmdb51": "split1", "ssv2": "default",
                    "penn_action": "default"}


def resolve_config(dataset: str, config: str | None, short_side: int | None,
                   source: str = "manual", name: str | None = None,
                   train_ratio: float | None = None, flow: str = "", warped_flow: bool = False) -> Any:
  """The builder config (name or object) the arguments of the command ask for."""
  if dataset == "video_folder":
    dataset_name = name or config
    if not dataset_name:
      raise UserError("video_folder needs --name NAME (the dataset is then video_folder/NAME).")
    common.flow_config_name(dataset_name, flow, warped_flow)   # checks the flow flags
    return VideoFolderConfig(name=dataset_name, short_side=short_side, train_ratio=train_ratio,
                             flow=flow, warped_flow=warped_flow,
                             description=f"Video folder dataset {dataset_name!r}.")
  return common.flow_config_name(_resolve_named(dataset, config, short_side, source, name), flow,
                                 warped_flow)


def _resolve_named(dataset: str, config: str | None, short_side: int | None, source: str,
                   name: str | None) -> str:
  if name:
    raise UserError(f"--name is only for video_folder; {dataset} uses --config.")
  if source not in ("manual", "tfds"):
    raise UserError(f"--source must be manual or tfds, got {source!r}")
  if source == "tfds":
    if dataset != "ucf101":
      raise UserError("--source tfds exists only for ucf101.")
    variant = config or "ucf101_1_256"
    variant = variant if variant.startswith("tfds_") else f"tfds_{variant}"
  else:
    variant = config or _DEFAULT_VARIANT[dataset]
  m = re.fullmatch(r"(.+)_s(\d+)", variant)
  if m and (short_side is None or short_side == int(m.group(2))):
    return variant
  if m:
    raise UserError(f"--config {variant} already fixes the short side; drop --short_side.")
  return common.config_name(variant, short_side or common.DEFAULT_SHORT_SIDE)


def prepare(dataset: str, manual_dir: str, *, data_dir: str | None = None,
            name: str | None = None, config: str | None = None, short_side: int | None = None,
            workers: int | None = None, source: str = "manual",
            train_ratio: float | None = None, flow: str = "", warped_flow: bool = False,
            flow_backend: str | None = None, overwrite: bool = False) -> dict:
  """Prepares one dataset; returns the summary the command prints."""
  if dataset not in BUILDERS:
    raise UserError(f"unknown dataset {dataset!r}; known: {', '.join(sorted(BUILDERS))}")
  if flow:
    flow_lib.require_cv2()
  cls = BUILDERS[dataset]
  if not manual_dir or not os.path.isdir(manual_dir):
    raise common.layout_error(cls.DATASET_TITLE or dataset,
                              f"manual_dir {manual_dir!r} does not exist.",
                              cls.MANUAL_DOWNLOAD_INSTRUCTIONS)
  cfg = resolve_config(dataset, config, short_side, source, name, train_ratio, flow, warped_flow)
  data_dir = data_dir or os.environ.get("VIDREC_DATA_DIR") or None
  builder = cls(config=cfg, data_dir=data_dir, file_format=features_lib.FILE_FORMAT,
                manual_dir=manual_dir, workers=workers, flow_backend=flow_backend)
  mode = (tfds.download.GenerateMode.FORCE_REDOWNLOAD if overwrite
          else tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS)
  reused = builder.is_prepared() and not overwrite
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=manual_dir, download_mode=mode))
  report = builder.prepare_report() or {}
  skipped = report.get("skipped", [])
  return {
      "dataset": f"{dataset}/{builder.builder_config.name}",
      "tfds_name": f"{builder.name}/{builder.builder_config.name}",
      "data_dir": os.fspath(builder.data_path),
      "reused": reused,
      "short_side": builder.short_side,
      "flow": builder.info.metadata.get("flow"),
      "num_classes": builder.info.features["label"].num_classes,
      "written": {s: int(i.num_examples) for s, i in sorted(builder.info.splits.items())},
      "empty_splits": report.get("empty_splits", []),
      "num_skipped": len(skipped),
      "skipped": skipped,
  }


def _parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(
      prog="python -m vidrec.data.prepare", description=__doc__.split("\n\n")[0],
      formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("dataset", choices=sorted(BUILDERS))
  p.add_argument("--manual_dir", required=True, help="where your copy of the dataset lives")
  p.add_argument("--data_dir", default=None, help="where the prepared data goes")
  p.add_argument("--name", default=None, help="video_folder only: the dataset NAME")
  p.add_argument("--config", default=None,
                 help="split1|split2|split3 (ucf101, hmdb51); for --source tfds the TFDS "
                      "ucf101 config (ucf101_1_256, ucf101_1, ucf101_2, ucf101_3)")
  p.add_argument("--short_side", type=int, default=None,
                 help="frames stored with this short side (default 128; 256 for 224 crops)")
  p.add_argument("--workers", type=int, default=None,
                 help="decoding processes (default: all CPUs)")
  p.add_argument("--source", default="manual", choices=("manual", "tfds"),
                 help="ucf101 only: 'tfds' converts a prepared TFDS ucf101 in --manual_dir")
  p.add_argument("--train_ratio", type=float, default=None,
                 help="video_folder without split folders: hashed train fraction (0.8)")
  p.add_argument("--flow", default="", choices=("",) + flow_lib.ALGORITHMS,
                 help="also store this optical flow of every frame pair (needs the flow extra)")
  p.add_argument("--warped_flow", action="store_true",
                 help="with --flow: also store the camera-motion-compensated (warped) flow")
  p.add_argument("--flow_backend", default=None, choices=sorted(flow_lib.BACKENDS),
                 help=f"the TV-L1 that computes --flow (default {flow_lib.default_backend()}; "
                      "opencv: the reference)")
  p.add_argument("--overwrite", action="store_true", help="rebuild even if prepared")
  return p


@cli.returns_status
def main(argv: Sequence[str] | None = None) -> int:
  args = _parser().parse_args(argv)
  logging.set_verbosity(logging.INFO)
  try:
    summary = prepare(args.dataset, args.manual_dir, data_dir=args.data_dir, name=args.name,
                      config=args.config, short_side=args.short_side, workers=args.workers,
                      source=args.source, train_ratio=args.train_ratio, flow=args.flow,
                      warped_flow=args.warped_flow, flow_backend=args.flow_backend,
                      overwrite=args.overwrite)
  except (common.DataLayoutError, ValueError, ImportError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  sys.stderr.flush()
  print(json.dumps(summary), flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
