"""Write ``WORKDIR/dataset.json`` for a run trained before training wrote it, so that ``predict.py`` and
``vidrec.tools.export`` need the workdir alone (``docs/export.md``):

  python -m vidrec.tools.dataset_record --workdir W [--data_dir D]

Run it once where the run's prepared dataset is (``--data_dir``: the folder it was prepared in, default
the run's ``dataset.data_dir``); it only reads the dataset.
"""
from __future__ import annotations

from vidrec import run_record
from vidrec.tools import predict
from vidrec.data import datasets


def write(workdir: str, data_dir: str | None = None) -> dict:
  """Writes and returns ``WORKDIR/dataset.json`` of the run's dataset, prepared in ``data_dir``."""
  config = predict.run_config(workdir)
  name = config.dataset.name
  builder = datasets.load_builder(name, data_dir or config.dataset.data_dir or None, prepare=False)
  record = run_record.dataset_record(builder, name)
  run_record.write_dataset_record(workdir, record)
  return record


def main(argv) -> None:
  del argv
  from absl import flags  # pylint: disable=g-import-not-at-top
  workdir = flags.FLAGS.workdir
  record = write(workdir, flags.FLAGS.data_dir)
  print(f"wrote {workdir}/{run_record.DATASET_FILE}: {record['name']}, {record['num_classes']} classes, "
        f"short side {record['short_side']}, flow {(record['flow'] or {}).get('algorithm', 'none')}")


if __name__ == "__main__":
  from absl import flags  # pylint: disable=g-import-not-at-top

  from vidrec import cli  # pylint: disable=g-import-not-at-top
  flags.DEFINE_string("workdir", None, "The trained run's workdir.")
  flags.DEFINE_string("data_dir", None, "Where the run's dataset was prepared (default: its config's "
                      "dataset.data_dir).")
  flags.mark_flags_as_required(["workdir"])
  cli.run(main)
