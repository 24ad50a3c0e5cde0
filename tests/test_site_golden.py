"""Golden output: the whole fixture site, byte for byte.

Any change to rendering, templates or URLs shows up here as a diff. After an
intended change, regenerate the golden files and review them like code:

    WX_UPDATE_GOLDEN=1 python -m pytest tests/test_site_golden.py
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from wxcli.site import build_site

GOLDEN = Path(__file__).parent / "fixtures" / "site_project" / "golden"
TEXT = (".html", ".xml", ".json", ".txt")


def listing(root: Path) -> str:
    """Every file with its size and hash, so binary files and assets are covered too."""
    lines = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        lines.append(f"{path.relative_to(root).as_posix()}  {len(data)}  {hashlib.sha256(data).hexdigest()[:16]}")
    return "\n".join(lines) + "\n"


@pytest.fixture
def site(site_project):
    build_site(site_project, workers=1)
    return site_project.site_dir


def test_site_matches_the_golden_files(site):
    pages = {p.relative_to(site).as_posix(): p for p in site.rglob("*") if p.is_file() and p.suffix in TEXT}
    if os.environ.get("WX_UPDATE_GOLDEN") == "1":
        shutil.rmtree(GOLDEN, ignore_errors=True)
        for rel, path in pages.items():
            target = GOLDEN / "site" / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
        (GOLDEN / "files.txt").write_text(listing(site), encoding="utf-8")
    expected = {p.relative_to(GOLDEN / "site").as_posix(): p for p in (GOLDEN / "site").rglob("*") if p.is_file()}
    assert sorted(pages) == sorted(expected)
    for rel, path in pages.items():
        assert path.read_text(encoding="utf-8") == expected[rel].read_text(encoding="utf-8"), rel
    assert listing(site) == (GOLDEN / "files.txt").read_text(encoding="utf-8")
