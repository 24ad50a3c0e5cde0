"""``application``: the WSGI app of the project in ``$WX_PROJECT`` (default: the current folder).

For servers that import their app by name: uWSGI (what ``wx serve`` runs), or
``gunicorn --preload wxcli.wsgi:application``. ``WX_APP=callback`` serves only
the WeChat callback at ``/wechat``; by default build/site is served as well.
Importing this module loads the bot and jieba, so a pre-forking server that
imports it before forking shares them between its workers.
"""

from __future__ import annotations

import os
from pathlib import Path

from wxcli import serving

application, _preload = serving.build(Path(os.environ.get("WX_PROJECT") or "."), os.environ.get("WX_APP") or "site")
_preload()
serving.freeze()
