"""The documentation site builds with warnings as errors (broken links, missing references)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from docblocks import ROOT


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env=dict(os.environ, NO_MKDOCS_2_WARNING="1"),
    )
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    assert (tmp_path / "site" / "index.html").is_file()
    assert (tmp_path / "site" / "api" / "models" / "index.html").is_file()  # the API reference rendered
    assert "create_model" in (tmp_path / "site" / "api" / "models" / "index.html").read_text()
