"""TFDS builders for real video datasets, all stored in the ``vidrec.data.features`` layout.

Each builder reads files the user already has in a ``manual_dir`` (nothing is downloaded)
and is constructible as ``cls(config=<name or None>, data_dir=D,
file_format='array_record')``; prepare with ``python -m vidrec.data.prepare <dataset>``
(see docs/datasets.md) or ``builder.download_and_prepare(
download_config=tfds.download.DownloadConfig(manual_dir=M))``.

``BUILDERS`` maps the vidrec dataset name to the builder class. TFDS registers them as
``vidrec_ucf101``, ``vidrec_hmdb51``, ``vidrec_ssv2``, ``vidrec_penn_action`` and
``video_folder`` (TFDS itself owns ``ucf101``).
"""
from __future__ import annotations

from vidrec.data.builders.common import DataLayoutError
from vidrec.data.builders.common import VideoBuilder
from vidrec.data.builders.hmdb51 import Hmdb51
from vidrec.data.builders.penn_action import PennAction
from vidrec.data.builders.ssv2 import SomethingSomethingV2
from vidrec.data.builders.ucf101 import Ucf101
from vidrec.data.builders.video_folder import VideoFolder

BUILDERS: dict[str, type[VideoBuilder]] = {
    "ucf101": Ucf101,
    "hmdb51": Hmdb51,
    "ssv2": SomethingSomethingV2,
    "penn_action": PennAction,
    "video_folder": VideoFolder,
}

__all__ = ["BUILDERS", "DataLayoutError", "VideoBuilder", "Ucf101", "Hmdb51",
           "SomethingSomethingV2", "PennAction", "VideoFolder"]
