"""Predict video files with a trained vidrec model:

  python predict.py --workdir W VIDEO_OR_DIR_OR_GLOB ... [--top_k 5] [--step N] [--json OUT]
      [--explain DIR] [--config.key=value ...]

Reads W/config.json and W's checkpoint (no --config file needed; --config.key=value overrides it, e.g.
--config.input.num_test_clips=5), decodes each file as `prepare` does, scores the test views `eval.py`
builds and prints the top-k classes per file, then videos/s. Exit status: 0 every file predicted, 1 some
file failed (each reported on its own line), 2 a user error (no such run, no checkpoint, no files).
"""
import sys

from absl import flags
from ml_collections import config_flags

from vidrec import cli


def _workdir_config():
  """The run's config.json, read before the flags are parsed so ``--config.key=value`` can override its
  keys; a base config where the workdir is not a run (``main`` then reports that as a user error)."""
  from vidrec import config as config_lib  # pylint: disable=g-import-not-at-top
  from vidrec.tools import predict  # pylint: disable=g-import-not-at-top
  from vidrec.errors import UserError  # pylint: disable=g-import-not-at-top
  argv = sys.argv[1:]
  workdir = next((a.partition("=")[2] for a in argv if a.startswith("--workdir=")),
                 next((argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--workdir"), None))
  try:
    return predict.run_config(workdir) if workdir else config_lib.base_config()
  except UserError:
    return config_lib.base_config()


_CONFIG = config_flags.DEFINE_config_dict("config", _workdir_config(), "The run's config (W/config.json); "
                                          "override keys with --config.key=value.", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "The trained run's workdir.")
_TOP_K = flags.DEFINE_integer("top_k", 5, "Classes printed per video.")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: latest).")
_JSON = flags.DEFINE_string("json", None, "Write one JSON object per video (a line each) to this file.")
_EXPLAIN = flags.DEFINE_string("explain", None, "Write each video's explanation figure (SGN alpha maps, "
                               "JointLSTM attention, ATW snippet weights, U2S masks) into this folder.")
_WORKERS = flags.DEFINE_integer("workers", None, "Decoding threads (default: one per CPU core).")
flags.mark_flags_as_required(["workdir"])


def main(argv):
  from vidrec.tools import predict  # pylint: disable=g-import-not-at-top
  from vidrec.errors import UserError  # pylint: disable=g-import-not-at-top
  if len(argv) < 2:
    raise UserError("Name at least one video file, folder or glob after the flags: "
                    "python predict.py --workdir W clip.mp4 folder/ 'more/*.webm'.")
  predict.run_config(_WORKDIR.value)          # a workdir that is no run: a user error, said here
  sys.exit(predict.run(_CONFIG.value, _WORKDIR.value, argv[1:], top=_TOP_K.value, step=_STEP.value,
                       json_path=_JSON.value, explain_dir=_EXPLAIN.value, workers=_WORKERS.value))


if __name__ == "__main__":
  cli.run(main)
