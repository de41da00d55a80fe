"""The CLI without uv or the repository: the wheel built from this tree, installed into a clean
virtual environment (the locked dependency versions), runs `omnirelay --help` and serves the
sandbox from its console script (the container's entry point), /docs assets included."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx
import pytest
import yaml

from tests.e2e.conftest import BASIC, free_port
from tests.processes import interrupt

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]


def uv() -> str:
    found = os.environ.get("UV") or shutil.which("uv") or str(ROOT / ".tools" / "bin" / "uv")
    if not Path(found).exists():
        if os.environ.get("CI"):
            raise AssertionError("no uv to build the wheel with")
        pytest.skip("no uv (make bootstraps it into .tools)")
    return found


def test_the_wheel_installs_and_serves(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}

    def run(*args: str) -> None:
        subprocess.run([uv(), *args], env=env, check=True, capture_output=True, timeout=240)

    run("build", "--wheel", "--out-dir", str(tmp_path), str(ROOT))
    (wheel,) = tmp_path.glob("omnirelay-*-py3-none-any.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        entry_points = next(z.read(n).decode() for n in names if n.endswith("entry_points.txt"))
    assert "omnirelay = omnirelay.cli:main" in entry_points
    assert "omnirelay/http/static/swagger-ui/swagger-ui-bundle.js" in names
    assert {"omnirelay/http/static/console/console.js", "omnirelay/http/static/console/console.css"} <= names

    requirements = tmp_path / "requirements.txt"
    run(
        "export",
        "--frozen",
        "--no-dev",
        "--no-emit-project",
        "--no-hashes",
        "-q",
        "--project",
        str(ROOT),
        "-o",
        str(requirements),
    )
    venv = tmp_path / "venv"
    run("venv", "-q", "--python", sys.executable, str(venv))
    python = venv / "bin" / "python"
    run("pip", "install", "-q", "--python", str(python), "-r", str(requirements), str(wheel))
    omnirelay = venv / "bin" / "omnirelay"
    helped = subprocess.run([str(omnirelay), "--help"], env=env, capture_output=True, text=True, check=True)
    assert helped.stdout.startswith("Usage: omnirelay")
    where = subprocess.run(
        [str(python), "-c", "import omnirelay; print(omnirelay.__file__)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert where.stdout.startswith(str(venv)), where.stdout  # the installed copy, not this tree

    port = free_port()
    proc = subprocess.Popen(
        [str(omnirelay), "serve", "--port", str(port), "--data-dir", str(tmp_path / "data")],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.communicate()[1].decode()
            assert time.monotonic() < deadline, "the installed gateway did not start"
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        body = {"destinations": [{"to": {"phoneNumber": "41793026727"}}], "sms": {"text": "from the wheel"}}
        sent = httpx.post(f"{base}/omni/1/advanced", json=body, headers=BASIC, timeout=10)
        assert sent.status_code == 200, sent.text
        message_id = sent.json()["messages"][0]["messageId"]
        deadline = time.monotonic() + 30
        while True:
            results = httpx.get(f"{base}/omni/1/reports", headers=BASIC, timeout=10).json()["results"]
            if results:
                break
            assert time.monotonic() < deadline, "no report"
            time.sleep(0.1)
        assert [(r["messageId"], r["status"]["name"]) for r in results] == [
            (message_id, "DELIVERED_TO_HANDSET")
        ]
        assert httpx.get(f"{base}/docs/swagger-ui.css", timeout=10).status_code == 200
        assert httpx.get(f"{base}/console/static/console.js", timeout=10).status_code == 200
        # The image's health check, as the Dockerfile runs it, in the installed environment
        check = subprocess.run(
            healthcheck(python), env={**env, "OMNIRELAY_PORT": str(port)}, capture_output=True, check=False
        )
        assert check.returncode == 0, check.stderr
    finally:
        interrupt(proc)
    stopped = subprocess.run(
        healthcheck(python), env={**env, "OMNIRELAY_PORT": str(port)}, capture_output=True, check=False
    )
    assert stopped.returncode != 0  # the check fails when nothing answers


def dockerfile() -> dict[str, str]:
    """The Dockerfile's last stage, instruction -> arguments (continuation lines joined)."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    last = text[text.rindex("\nFROM ") :]
    out: dict[str, str] = {}
    for line in last.splitlines():
        if line.strip() and not line.startswith("#"):
            word, _, rest = line.strip().partition(" ")
            out[word] = rest.strip()
    return out


def healthcheck(python: Path) -> list[str]:
    """The HEALTHCHECK's command (exec form), with the venv's python for the image's."""
    command = json.loads(dockerfile()["HEALTHCHECK"].split(" CMD ", 1)[1])
    assert command[0] == "python"
    return [str(python), *command[1:]]


def test_the_image_runs_the_wheels_entry_point_as_a_non_root_user():
    # No Docker engine on the project's machines (README): what the image would run is checked here.
    image = dockerfile()
    assert json.loads(image["ENTRYPOINT"]) == ["omnirelay"] and json.loads(image["CMD"]) == ["serve"]
    assert image["USER"] == "omnirelay" and "useradd --system" in image["RUN"]
    assert "/dist/omnirelay-*.whl" in image["RUN"]
    assert "/health" in image["HEALTHCHECK"]
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    gateways = [s for name, s in services.items() if name.startswith("gateway")]
    assert len(gateways) == 2 and services["db"]["image"].startswith("postgres")
    urls = {g["environment"]["OMNIRELAY_DATABASE_URL"] for g in gateways}
    assert len(urls) == 1 and "@db:5432/" in urls.pop()
    assert len({g["environment"]["OMNIRELAY_NODE_ID"] for g in gateways}) == 2
    assert {g["ports"][0] for g in gateways} == {"8080:8080", "8081:8080"}
