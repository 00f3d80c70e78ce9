"""The publishing workflow: valid YAML with a build and a Pages deploy, running the same
commands as the README, and the offline settings of _config.yml."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "book.yml"


def _workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def _commands(text: str) -> list[str]:
    """Lines that run the project's tools (the README and the workflow must agree on them)."""
    out = []
    for line in text.splitlines():
        line = line.strip().rstrip("\\").strip()
        for start in ("bash tools/", "python tools/"):
            if start in line:
                out.append(line[line.index(start) :].split("  #")[0].strip())
    return out


def test_workflow_parses_and_deploys_to_pages():
    wf = _workflow()
    on = wf.get("on", wf.get(True))  # YAML 1.1 reads the key `on` as True
    assert "push" in on and on["push"]["branches"] == ["main"]
    assert wf["permissions"] == {"contents": "read", "pages": "write", "id-token": "write"}
    build, deploy = wf["jobs"]["build"], wf["jobs"]["deploy"]
    uses = [s.get("uses", "") for s in build["steps"]]
    assert any(u.startswith("actions/upload-pages-artifact@") for u in uses)
    assert any(u.startswith("actions/upload-artifact@") for u in uses)  # screenshots
    pages = next(s for s in build["steps"] if s.get("uses", "").startswith("actions/upload-pages"))
    assert pages["with"]["path"] == "_build/html"
    assert deploy["needs"] == "build"
    assert deploy["steps"][0]["uses"].startswith("actions/deploy-pages@")


def test_workflow_runs_the_readmes_commands():
    readme = (ROOT / "README.md").read_text()
    publishing = readme.split("## Publishing", 1)[1].split("\n## ", 1)[0]
    runs = "\n".join(s["run"] for s in _workflow()["jobs"]["build"]["steps"] if "run" in s)
    ran = _commands(runs)
    assert ran[0] == "bash tools/book.sh" and "python tools/browser_check.py" in ran[1]
    assert ran == _commands(publishing)
    for cmd in ran:  # every tool it names exists
        assert (ROOT / cmd.split()[1]).exists(), cmd


def test_site_is_built_for_offline_use():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert "sphinx-mathjax-offline" in config["sphinx"]["extra_extensions"]
    assert config["sphinx"]["config"]["nb_ipywidgets_js"] == {}  # no widget JS from a CDN
    req = (ROOT / "requirements.txt").read_text()
    assert "sphinx-mathjax-offline" in req and "selenium" in req
