"""The wxcli commands the site benchmark times, each in a fresh process.

``wx build`` also compiles the bot database and imports every command module; this
measures the site build alone, the way ``pelican`` and ``hugo`` are measured.

    python benchmarks/site_wx.py PROJECT_DIR [--clean]
    python benchmarks/site_wx.py PROJECT_DIR --watch-edit ARTICLE

``--watch-edit`` runs the ``wx serve --watch`` rebuilder (as ``hugo server`` is run
for Hugo), edits ARTICLE once and prints how long the rebuild took.
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

from wxcli.project import load_project
from wxcli.site import build_site


def watch_edit(root: Path, article: Path) -> float:
    from site_build import edit

    from wxcli.site.preview import Preview

    messages: list[str] = []
    preview = Preview(load_project(root), "127.0.0.1", 0, watch=True, log=messages.append).start()
    try:
        version = preview.status.version
        edit(article)
        deadline = time.monotonic() + 120
        while preview.status.version == version and time.monotonic() < deadline:
            time.sleep(0.005)
        if preview.status.error:
            raise SystemExit(preview.status.error)
        return float(re.findall(r"用时 (\d+\.\d+) 秒", messages[-1])[-1])
    finally:
        preview.stop()


if __name__ == "__main__":
    root = Path(sys.argv[1])
    if "--watch-edit" in sys.argv:
        print(json.dumps({"seconds": watch_edit(root, Path(sys.argv[sys.argv.index("--watch-edit") + 1]))}))
    else:
        report = build_site(load_project(root), clean="--clean" in sys.argv[2:])
        data = report.as_dict()
        data.pop("warnings")
        print(json.dumps(data))
