"""The README's examples, run as written against a real ``jobqueue serve``."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from tests.support.serve import running

README = Path(__file__).resolve().parents[2] / "README.md"
DOCUMENTED_URL = "http://127.0.0.1:3000"


def readme_block(start_marker: str, language: str) -> str:
    """The first fenced ``language`` block after ``start_marker`` in the README."""
    text = README.read_text()
    after = text[text.index(start_marker) :]
    match = re.search(rf"```{language}\n(.*?)```", after, re.DOTALL)
    assert match, f"no {language} block after {start_marker!r} in README.md"
    return match.group(1)


def test_the_readme_curl_example_sends_an_email(tmp_path: Path) -> None:
    script = readme_block("<!-- readme-example:start -->", "sh")
    with running(tmp_path) as server:
        result = subprocess.run(
            ["bash", "-c", script.replace(DOCUMENTED_URL, server.base_url)],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
            env={"PATH": "/usr/bin:/bin", "NO_PROXY": "*"},
        )
        job = json.loads(result.stdout)
        assert job["status"] == "pending"
        server.wait_for_status(job["id"], "completed", attempts=1)
    (eml,) = (tmp_path / "outbox").glob("*.eml")
    assert "Subject: Welcome" in eml.read_text()


def test_the_readme_handler_example_runs_and_fails_permanently(tmp_path: Path) -> None:
    module = _handler_example()
    package = tmp_path / "code" / "myapp"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "jobs.py").write_text(module)
    settings = {"JOBQUEUE_HANDLERS": "myapp.jobs", "PYTHONPATH": str(tmp_path / "code")}
    with running(tmp_path, settings) as server:
        good = server.create_job("resize-image", {"url": "https://example.com/a.png"})
        sync = server.create_job("make-report")
        bad = server.create_job("resize-image", {})
        finished = server.wait_for_status(good["id"], "completed", attempts=1)
        assert finished["result"] == {"resized": "https://example.com/a.png", "attempt": 1}
        server.wait_for_status(sync["id"], "completed", attempts=1)
        failed = server.wait_for_status(bad["id"], "failed", attempts=1)
    assert failed["lastError"] == "payload.url is required"


def _handler_example() -> str:
    text = README.read_text()
    match = re.search(r"```python\n(# myapp/jobs\.py\n.*?)```", text, re.DOTALL)
    assert match, "README.md has no '# myapp/jobs.py' example"
    return match.group(1)


def test_the_readme_workflows_example_runs_the_root_after_its_children(tmp_path: Path) -> None:
    script = readme_block("<!-- workflows-example:start -->", "sh")
    with running(tmp_path) as server:
        result = subprocess.run(
            ["bash", "-c", script.replace(DOCUMENTED_URL, server.base_url)],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
            env={"PATH": "/usr/bin:/bin", "NO_PROXY": "*"},
        )
        flow = json.loads(result.stdout)
        jobs = {job["key"]: job for job in flow["jobs"]}
        assert (jobs["0"]["status"], jobs["0"]["pendingParents"]) == ("waiting", 2)
        assert sorted(jobs["0"]["dependsOn"]) == sorted([jobs["0.0"]["id"], jobs["0.1"]["id"]])
        root = server.wait_for_status(jobs["0"]["id"], "completed", attempts=1)
        children = [server.get_job(jobs[key]["id"]).json() for key in ("0.0", "0.1")]
        assert all(child["status"] == "completed" for child in children)
        assert root["updatedAt"] >= max(child["updatedAt"] for child in children)
        done = server.client.get(f"/api/flows/{flow['id']}").json()
        assert done["status"] == "completed"
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 2
