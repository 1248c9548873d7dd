"""Evaluate a trained vidrec model: python eval.py --config ... --workdir DIR [--split test] [--step N].

Writes DIR/eval/<split>_report.json and <split>_confusion.png and prints a table.
"""
from absl import flags
from ml_collections import config_flags

from vidrec import cli, parallel

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file used for training.", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "The training workdir.")
_SPLIT = flags.DEFINE_string("split", None, "Split to evaluate (default: config.dataset.eval_split).")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: latest).")
parallel.define_flags()
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  del argv
  parallel.initialize()
  from vidrec import evaluate, procedures  # pylint: disable=g-import-not-at-top
  evaluate.evaluate(procedures.eval_config(_CONFIG.value, _WORKDIR.value), _WORKDIR.value, _SPLIT.value,
                    _STEP.value)


if __name__ == "__main__":
  cli.run(main)
