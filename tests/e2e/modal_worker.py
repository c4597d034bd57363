"""Imported by the Modal crash test's workers (``--include``): the shared SDK double in place
of Modal, in the directory the environment names."""

import os
from pathlib import Path

from tests.e2e.modal_cloud import ENV, SharedCloud, install

install(SharedCloud(Path(os.environ[ENV])))
