"""The README's commands, extracted from README.md and run as written against a fresh
instance served by `kabar run` (what `make run` does after installing).

Only two things differ from a person at a terminal: the port (a free one instead of
7308, replaced in the text) and the admin password (the one `kabar init` printed, put
where the README says PASSWORD). `curl` fails on an HTTP error here, so a command that
answers an error fails the test with Kabar's answer."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from tests.gateway import Gateway, free_port

ROOT = Path(__file__).resolve().parents[2]


def readme_blocks() -> list[str]:
    """Every ```sh block of the README, in order."""
    return re.findall(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


def test_the_readme_serves_with_make_run():
    (run_block, *_rest) = readme_blocks()
    assert run_block.startswith("make run"), run_block
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\nrun:", 1)[1].split("\n\n", 1)[0]
    assert "kabar init" in recipe and "kabar run" in recipe, recipe


def test_the_readme_commands_work_as_written(tmp_path: Path):
    blocks = [b for b in readme_blocks() if not re.match(r"make \w+", b)]
    assert len(blocks) >= 3, "the Quickstart, first session and first workflow blocks"
    port = free_port()
    env = {
        **os.environ,
        "KABAR_INSTANCE_PATH": str(tmp_path / "instance"),
        "KABAR_WEB_WORKERS": "1",
        "KABAR_ARGON2_MEMORY_COST": "1024",
        "PYTHONPATH": str(ROOT),
    }
    for name in ("KABAR_DATABASE_URL", "KABAR_ADMIN_PASSWORD", "KABAR_PORT"):
        env.pop(name, None)
    init = subprocess.run(
        [sys.executable, "-m", "server.cli", "init"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    password = re.search(r"password:\s+(\S+)", init.stdout).group(1)

    # The folder a person is in: the checkout, with its .venv/bin/kabar and workflows/.
    work = tmp_path / "checkout"
    (work / ".venv" / "bin").mkdir(parents=True)
    kabar = work / ".venv" / "bin" / "kabar"
    kabar.write_text(
        f"#!/bin/sh\nexec {shlex.quote(sys.executable)} "
        f'{shlex.quote(str(ROOT / "tests/e2e/readme_kabar.py"))} "$@"\n'
    )
    kabar.chmod(0o755)
    (work / "workflows").symlink_to(ROOT / "workflows")

    log = open(tmp_path / "kabar.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "run", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        gateway = Gateway(f"http://127.0.0.1:{port}")
        gateway.wait(lambda: gateway.call("GET", "/api/v1/ready")[0] == 200, what="ready")
        script = "\n".join(blocks).replace("7308", str(port)).replace("PASSWORD", password)
        prelude = 'set -euo pipefail\ncurl() { command curl --fail-with-body "$@"; }\n'
        done = subprocess.run(
            ["bash", "-c", prelude + script],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert (work / "qr.png").read_bytes().startswith(b"\x89PNG"), output
    assert '"username":"admin"' in output.replace(" ", "")
    assert "Paired as" in output and "Delivered as message" in output
    flat = output.replace(" ", "")
    assert '"status":"queued"' in flat and '"text":"halo"' in flat  # answer queued; history
    survey_runs = output.rsplit('"items"', 1)[1]
    assert '"workflow":"survey"' in survey_runs and '"status":"completed"' in survey_runs, output
