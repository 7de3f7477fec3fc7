"""A fake installed distribution: modules plus a dist-info folder on sys.path, as pip would leave them.

Tests of entry-point discovery use it instead of pip-installing anything.
"""

from __future__ import annotations

import textwrap
from pathlib import Path


def fake_distribution(tmp_path: Path, monkeypatch, name: str, modules: dict[str, str], entry_points: str) -> Path:
    """Write `modules` ({module name: source}) and `<name>-0.1.dist-info` with `entry_points` into a site folder
    put first on sys.path; returns the folder."""
    site = tmp_path / "site"
    site.mkdir()
    for module, source in modules.items():
        (site / f"{module}.py").write_text(source)
    dist = site / f"{name.replace('-', '_')}-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(textwrap.dedent(entry_points))
    monkeypatch.syspath_prepend(str(site))
    return site
