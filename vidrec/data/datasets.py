"""Dataset registry: ``config.dataset.name`` ("ucf101/split1", "video_folder/NAME", ...) -> TFDS builder.

A name is ``<dataset>[/<builder config>]``. Builders are imported lazily so that a missing optional
dataset module never breaks the others. Only the built-in synthetic dataset is prepared on first use;
real datasets must be prepared once with ``python -m vidrec.data.prepare`` (nothing is downloaded).
"""
from __future__ import annotations

import dataclasses
import importlib
import os

import tensorflow_datasets as tfds

from vidrec.data.features import FILE_FORMAT
from vidrec.errors import MissingDataError
from vidrec.registry import Registry


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  builder: str            # "module:Class"
  auto_prepare: bool = False

  def builder_class(self) -> type[tfds.core.DatasetBuilder]:
    module, cls = self.builder.split(":")
    return getattr(importlib.import_module(module), cls)


DATASETS: Registry[DatasetSpec] = Registry("dataset.name")
DATASETS.add("synthetic_actions", DatasetSpec("vidrec.data.synthetic:SyntheticActions", auto_prepare=True))
DATASETS.add("ucf101", DatasetSpec("vidrec.data.builders.ucf101:Ucf101"))
DATASETS.add("hmdb51", DatasetSpec("vidrec.data.builders.hmdb51:Hmdb51"))
DATASETS.add("ssv2", DatasetSpec("vidrec.data.builders.ssv2:SomethingSomethingV2"))
DATASETS.add("penn_action", DatasetSpec("vidrec.data.builders.penn_action:PennAction"))
DATASETS.add("video_folder", DatasetSpec("vidrec.data.builders.video_folder:VideoFolder"))


def default_data_dir() -> str:
  """``$VIDREC_DATA_DIR`` or ``~/tensorflow_datasets``."""
  return os.environ.get("VIDREC_DATA_DIR", os.path.expanduser("~/tensorflow_datasets"))


def split_name(name: str) -> tuple[str, str | None]:
  base, _, config = name.partition("/")
  return base, config or None


def load_builder(name: str, data_dir: str | None, prepare: bool = True) -> tfds.core.DatasetBuilder:
  """Returns the prepared builder for ``name``; prepares the synthetic dataset on first use (unless
  ``prepare`` is False) and raises ``MissingDataError`` with the preparation command for a dataset
  that is missing."""
  base, config = split_name(name)
  spec = DATASETS.get(base)
  data_dir = data_dir or default_data_dir()
  builder = spec.builder_class()(config=config, data_dir=data_dir, file_format=FILE_FORMAT)
  if not builder.is_prepared():
    if not (spec.auto_prepare and prepare):
      raise MissingDataError(
          f"Dataset {name!r} is not prepared in data_dir={data_dir!r}. Prepare it once with\n"
          f"  python -m vidrec.data.prepare {base} --manual_dir <where your copy lives> "
          f"--data_dir {data_dir}{f' --config {config}' if config else ''}\n"
          f"or point --config.dataset.data_dir at the folder where it was prepared. "
          f"Expected layout and sources: docs/datasets.md.\n{getattr(builder, 'MANUAL_DOWNLOAD_INSTRUCTIONS', '')}")
    builder.download_and_prepare(file_format=FILE_FORMAT)
  return builder
