"""Something-Something v2 from the original files in ``manual_dir``.

Registered as ``vidrec_ssv2``. Configs ``default`` (S=128), ``default_s256`` (any
``_s<S>`` works). Splits ``train`` (168,913) and ``validation`` (24,777).

The ``test`` split is NOT built: ``something-something-v2-test.json`` has no labels and a
``ClassLabel`` cannot store "unknown"; writing the test videos with a fake label would make
any accuracy on them silently wrong. Papers report on ``validation``.

Class names are the 174 templates without brackets ("Pushing something from left to
right"), in the index order of ``something-something-v2-labels.json``.
"""
from __future__ import annotations

import json
import os
import re
from typing import Iterable, Mapping, Sequence

from etils import epath

from vidrec.data.builders import common
from vidrec.data.builders import decode
from vidrec.data.builders import listing

_LABEL_DIRS = ("labels", "")
_VIDEO_DIRS = ("20bn-something-something-v2", "videos")
_SPLIT_FILES = {"train": "something-something-v2-train.json",
                "validation": "something-something-v2-validation.json"}
_LABELS_FILE = "something-something-v2-labels.json"

_INSTRUCTIONS = """\
Where: https://www.qualcomm.com/developer/software/something-something-v-2-dataset
(20bn-something-something-v2-??.zip parts, ~19 GB, and the labels zip; registration
required). Nothing is downloaded by vidrec. Expected layout of the manual_dir M:
  M/20bn-something-something-v2/<id>.webm      220,847 videos (or directly M/<id>.webm)
  M/labels/something-something-v2-labels.json  {"<template>": "<index>", ...}, 174 classes
  M/labels/something-something-v2-train.json   [{"id", "label", "template", "placeholders"}]
  M/labels/something-something-v2-validation.json
  (the json files may also sit directly in M; the test json is not used: it has no labels)
Command:
  python -m vidrec.data.prepare ssv2 --manual_dir M [--data_dir D] [--short_side 128]
"""


def normalize_template(template: str) -> str:
  """'Putting [something] on [something]' -> 'Putting something on something'."""
  return " ".join(template.replace("[", "").replace("]", "").split())


def swap_left_right(text: str) -> str:
  """Swaps the words 'left' and 'right' (case kept), e.g. 'from left to right'."""
  swap = {"left": "right", "right": "left", "Left": "Right", "Right": "Left",
          "LEFT": "RIGHT", "RIGHT": "LEFT"}
  return re.sub(r"\b(left|right)\b", lambda m: swap.get(m.group(0), m.group(0)), text,
                flags=re.IGNORECASE)


def flip_map_from_templates(templates: Sequence[str]) -> list[int]:
  """Entry c: class of a horizontally flipped video of class c.

  Rule: swap the words left/right in the template; if that template exists it is the
  flipped class, otherwise (no left/right, or no partner) the class maps to itself.
  """
  index = {normalize_template(t).lower(): i for i, t in enumerate(templates)}
  out = []
  for i, t in enumerate(templates):
    swapped = swap_left_right(normalize_template(t)).lower()
    out.append(index.get(swapped, i))
  return out


class SomethingSomethingV2(common.VideoBuilder):
  """Something-Something v2 (174 template classes); train and validation splits."""

  name = "vidrec_ssv2"
  BUILDER_CONFIGS = common.with_short_sides([
      common.VideoBuilderConfig(name="default", description="Something-Something v2.")])
  MANUAL_DOWNLOAD_INSTRUCTIONS = _INSTRUCTIONS
  DATASET_TITLE = "Something-Something v2"
  HOMEPAGE = "https://www.qualcomm.com/developer/software/something-something-v-2-dataset"
  CITATION = """@inproceedings{goyal2017something,
  title={The "something something" video database for learning and evaluating visual
         common sense},
  author={Goyal, Raghav and others}, booktitle={ICCV}, year={2017}}"""

  def _json(self, manual_dir: epath.Path, fname: str):
    path = listing.first_existing(manual_dir, [f"{d}/{fname}" if d else fname
                                              for d in _LABEL_DIRS])
    if path is None:
      raise self.layout_error(f"{fname} is missing (looked in {os.fspath(manual_dir)} and "
                              f"{os.fspath(manual_dir / 'labels')}).")
    try:
      return json.loads(path.read_text())
    except ValueError as e:
      raise self.layout_error(f"{os.fspath(path)} is not valid JSON: {e}") from e

  def _read_class_names(self, manual_dir: epath.Path) -> list[str]:
    labels = self._json(manual_dir, _LABELS_FILE)
    by_index = {int(v): normalize_template(k) for k, v in labels.items()}
    if sorted(by_index) != list(range(len(labels))):
      raise self.layout_error(f"{_LABELS_FILE}: indices are not 0..{len(labels) - 1}.")
    return [by_index[i] for i in range(len(labels))]

  def _list_videos(self, manual_dir: epath.Path, class_names: Sequence[str]
                   ) -> Mapping[str, Iterable[decode.VideoTask]]:
    label_of = {n.lower(): i for i, n in enumerate(class_names)}
    video_dir = next((manual_dir / d for d in _VIDEO_DIRS if (manual_dir / d).is_dir()),
                     manual_dir)
    out = {}
    for split, fname in _SPLIT_FILES.items():
      entries = self._json(manual_dir, fname)
      tasks = []
      for entry in entries:
        vid = str(entry.get("id", ""))
        path = video_dir / f"{vid}.webm"
        label = label_of.get(normalize_template(str(entry.get("template", ""))).lower())
        if label is None:
          self._skip(split, os.fspath(path), f"unknown template {entry.get('template')!r}")
          continue
        if not path.exists():
          self._skip(split, os.fspath(path), f"listed in {fname} but not on disk")
          continue
        tasks.append(self._task(os.fspath(path), label, vid))
      out[split] = tasks
    return out

  def flip_label_map(self) -> list[int] | None:
    """Left/right template partners swap under a horizontal flip; other classes stay."""
    names = self.class_names
    return None if names is None else flip_map_from_templates(names)
