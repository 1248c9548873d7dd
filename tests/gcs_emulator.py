"""A local in-memory Google Cloud Storage for tests (used by test_fs.py).

gcp-storage-emulator, plus the ``x-goog-generation`` header on object downloads that TensorStore's GCS
driver (orbax's array data) requires and the emulator omits. It ignores generation preconditions, which
a single writer does not need.

usage: python tests/gcs_emulator.py PORT BUCKET
"""
import sys

from gcp_storage_emulator.exceptions import NotFound
from gcp_storage_emulator.handlers import objects

_download = objects.download


def _download_with_generation(request, response, storage, *args, **kwargs):
  try:
    obj = storage.get_file_obj(request.params["bucket_name"], request.params["object_id"])
    response["x-goog-generation"] = obj["generation"]
    response["x-goog-metageneration"] = obj["metageneration"]
  except NotFound:
    pass
  return _download(request, response, storage, *args, **kwargs)


objects.download = _download_with_generation
from gcp_storage_emulator.server import create_server  # noqa: E402  (reads objects.download)


if __name__ == "__main__":
  port, bucket = int(sys.argv[1]), sys.argv[2]
  create_server("127.0.0.1", port, in_memory=True, default_bucket=bucket).run()
