"""The README's walkthrough, run as written (issue 12, item 5): its shell blocks, in order, against a fresh
`cme serve` on the embedded SQLite default; a school roll and registers, a health list, and the LA
reading its candidates. A block with a placeholder (`<kid>`) is only shown, not run."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SECTION = "## Try it"

pytestmark = pytest.mark.skipif(
    shutil.which("curl") is None or shutil.which("bash") is None, reason="the walkthrough needs bash and curl"
)


def walkthrough_blocks(text: str) -> list[str]:
    """The ```sh blocks of the README's walkthrough section, in order."""
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    section = text[start : end if end != -1 else len(text)]
    return re.findall(r"^```sh\n(.*?)^```$", section, flags=re.MULTILINE | re.DOTALL)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CME_") and k != "DATABASE_URL"}
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    # `cme` and the interpreter of this test run first on PATH, as `.venv/bin` is in the README.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["CME_LEGAL_WINDOW_END"] = "2100-01-01"
    env["CME_MATCH_ROUND_WAIT_SECONDS"] = "0"
    port = _free_port()
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        else:
            raise AssertionError("the service did not become ready")
        yield url, env
    finally:
        server.terminate()
        server.wait(20)
        log.close()


def test_the_walkthrough_has_its_steps() -> None:
    script = "\n".join(walkthrough_blocks(README.read_text()))
    for step in ("-W06000015.json", "cme validate", "cme submit", "health_register", "/v1/cme/candidates"):
        assert step in script, step


def test_the_readme_walkthrough_runs_as_written(service: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    url, env = service
    blocks = [block for block in walkthrough_blocks(README.read_text()) if "<" not in block]
    script = "\n".join(["set -euo pipefail", *blocks])
    script = script.replace("URL=http://127.0.0.1:8000", f"URL={url}")
    assert url in script  # the README's first block names the service's address
    result = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]

    health = json.loads((tmp_path / "var" / "health-result.json").read_text())
    assert health["receipt_verified"] is True
    assert health["job"]["status"] == "succeeded", health["job"]
    outcomes = health["job"]["result"]["outcomes"]
    assert outcomes["matched"] > 0 and outcomes["unmatched"] > 0  # the school rolls were there to match
    candidates = json.loads((tmp_path / "var" / "candidates.json").read_text())
    assert 0 < len(candidates["items"]) <= 3
    assert all(item["status"] == "open" for item in candidates["items"])
    # The summary line the README quotes.
    assert re.search(r"receipt signature verified; job \S+ succeeded \(\d+ matched", result.stderr)
