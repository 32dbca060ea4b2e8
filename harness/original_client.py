"""Lay out the original mlbench-core 3.0.0's client side from its PyPI wheel, unchanged.

``python -m harness.original_client WHEEL LIB`` writes under ``LIB/mlbench_core`` the wheel's
``api.py``, ``cli/*.py``, ``utils/log_metrics.py``, ``utils/tracker.py`` and
``evaluation/goals.py`` byte for byte, with package ``__init__`` files of our own: the
wheel's import its torch-1.7 modules
(controlflow, dataset, models ...), which the client side never uses. Standard library only:
it runs in the original's own environment (``make original-client``).
"""

from __future__ import annotations

import shutil
import sys
import zipfile
from pathlib import Path

KEPT = ("mlbench_core/api.py", "mlbench_core/cli/", "mlbench_core/utils/log_metrics.py",
        "mlbench_core/utils/tracker.py", "mlbench_core/evaluation/goals.py")  # fmt: skip
INITS = {
    "mlbench_core/__init__.py": '__version__ = "3.0.0"\n\nfrom . import api  # noqa: F401\n',
    "mlbench_core/evaluation/__init__.py": "",
    "mlbench_core/utils/__init__.py": (
        "from .log_metrics import LogMetrics  # noqa: F401\n"
        "from .tracker import AverageMeter, Tracker  # noqa: F401\n"
    ),
}


def extract(wheel: Path, lib: Path) -> list[str]:
    """The kept files of ``wheel`` under ``lib`` (emptied first); their wheel paths."""
    shutil.rmtree(lib, ignore_errors=True)
    written = []
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            if name.endswith(".py") and name.startswith(KEPT):
                target = lib / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.read(name))
                written.append(name)
    for name, text in INITS.items():
        (lib / name).write_text(text)
    return written


if __name__ == "__main__":
    files = extract(Path(sys.argv[1]), Path(sys.argv[2]))
    print(f"original mlbench-core client: {len(files)} files in {sys.argv[2]}")
