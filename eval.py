"""Evaluate a trained vidrec model: python eval.py --config ... --workdir DIR [--split test] [--step N].

Writes DIR/eval/<split>_report.json and <split>_confusion.png and prints a table.
"""
from absl import app, flags, logging
from ml_collections import config_flags

from vidrec import parallel

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file used for training.", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "The training workdir.")
_SPLIT = flags.DEFINE_string("split", None, "Split to evaluate (default: config.dataset.eval_split).")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: latest).")
flags.DEFINE_string("coordinator_address", None, "HOST:PORT of process 0 (multi-process without auto-detection).")
flags.DEFINE_integer("num_processes", None, "Number of processes (with --coordinator_address).")
flags.DEFINE_integer("process_id", None, "This process's id (with --coordinator_address).")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  del argv
  if not flags.FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)  # keep the console to progress lines; -v 0 for info
  parallel.initialize(flags.FLAGS.coordinator_address, flags.FLAGS.num_processes, flags.FLAGS.process_id)
  from vidrec import evaluate  # pylint: disable=g-import-not-at-top
  evaluate.evaluate(_CONFIG.value, _WORKDIR.value, _SPLIT.value, _STEP.value)


if __name__ == "__main__":
  app.run(main)
