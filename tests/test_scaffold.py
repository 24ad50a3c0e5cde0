"""``wx init``'s review workflow: installs wxcli from a pinned source and watches the branch init creates."""

import subprocess

import pytest
import yaml
from typer.testing import CliRunner

from wxcli.cli import app
from wxcli.errors import WxError
from wxcli.scaffold import BRANCH, WORKFLOW_PATH, init_project, wxcli_source

runner = CliRunner()
PINNED = "git+https://git.bank.example/digital/wxcli.git@v0.1.0"


def _workflow(root):
    data = yaml.safe_load((root / WORKFLOW_PATH).read_text(encoding="utf-8"))
    return data, data[True]  # YAML 1.1 reads the key ``on`` as True


def _install_script(data) -> str:
    steps = data["jobs"]["review"]["steps"]
    return next(step["run"] for step in steps if "pip install" in step.get("run", ""))


def test_workflow_installs_the_pinned_source_and_watches_the_init_branch(tmp_path, monkeypatch):
    monkeypatch.delenv("WXCLI_SOURCE", raising=False)
    root = tmp_path / "bank"
    result = runner.invoke(app, ["init", str(root), "--wxcli-source", PINNED])
    assert result.exit_code == 0, result.output
    data, triggers = _workflow(root)
    script = _install_script(data)
    assert data["env"]["WXCLI_SOURCE"] == PINNED
    assert 'pip install "$WXCLI_SOURCE"' in script
    assert "pip install wxcli" not in script
    branch = subprocess.run(["git", "symbolic-ref", "--short", "HEAD"], cwd=root, capture_output=True, text=True)
    assert branch.stdout.strip() == BRANCH
    assert triggers["push"]["branches"] == [BRANCH]
    assert "pull_request" in triggers


def test_without_a_source_the_workflow_stops_with_a_message(tmp_path, monkeypatch):
    monkeypatch.delenv("WXCLI_SOURCE", raising=False)
    root = tmp_path / "bank"
    result = runner.invoke(app, ["init", str(root), "--no-git"])
    assert result.exit_code == 0 and "WXCLI_SOURCE" in result.output
    data, _ = _workflow(root)
    script = _install_script(data)
    guard = subprocess.run(["bash", "-c", script.split("sudo apt-get")[0]],
                           env={"WXCLI_SOURCE": data["env"]["WXCLI_SOURCE"], "PATH": "/usr/bin:/bin"},
                           capture_output=True, text=True)
    assert guard.returncode == 1 and "WXCLI_SOURCE" in guard.stdout


def test_the_source_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("WXCLI_SOURCE", "./vendor/wxcli-0.1.0.tar.gz")
    init_project(tmp_path / "bank", git=False)
    data, _ = _workflow(tmp_path / "bank")
    assert data["env"]["WXCLI_SOURCE"] == "./vendor/wxcli-0.1.0.tar.gz"


@pytest.mark.parametrize("bad", ["wxcli", "wxcli==0.1.0", "WXCLI>=0.1", 'x"; rm -rf /', "a\nb"])
def test_public_index_names_and_unsafe_text_are_refused(bad):
    with pytest.raises(WxError):
        wxcli_source(bad, environ={})
