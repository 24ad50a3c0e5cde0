"""``wx admin``: the editors' web back end (后台管理).

The routes in :mod:`wxcli.admin.app` are thin; what an editor can do lives in
:mod:`wxcli.admin.actions` (articles, columns, media, trash, the bot),
:mod:`wxcli.admin.preview` (the phone preview in the site's own theme) and
:mod:`wxcli.gitflow` (changes and 提交审核), which tests call directly.
"""
