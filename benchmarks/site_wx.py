"""The wxcli command the site benchmark times: ``build_site`` alone, in a fresh process.

``wx build`` also compiles the bot database and imports every command module;
this measures the site build the way ``pelican`` and ``hugo`` are measured.
Usage: python benchmarks/site_wx.py PROJECT_DIR [--clean]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from wxcli.project import load_project
from wxcli.site import build_site

if __name__ == "__main__":
    report = build_site(load_project(Path(sys.argv[1])), clean="--clean" in sys.argv[2:])
    data = report.as_dict()
    data.pop("warnings")
    print(json.dumps(data))
