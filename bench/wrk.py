"""wrk (Debian: ``apt-get install wrk``) as the load of the HTTP benchmarks: C keep-alive
connections, one thread, a Lua script that makes each request; its figures come back as
a dict (requests, non-2xx answers, req/s, latency percentiles in ms).

``rate`` paces the load: each connection waits ``connections / rate`` seconds between
its requests, so the load stays near ``rate`` requests a second while the server keeps
up (wrk measures latency without that wait). Without it each connection sends its next
request as soon as the answer came: the most the server can do.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from typing import Any

# Appended to every script: the figures as one JSON line on stdout.
DONE = r"""
done = function(summary, latency, requests)
  local errors = summary.errors
  io.write("WRK_JSON {\"requests\":", summary.requests, ",\"duration_us\":", summary.duration,
    ",\"non2xx\":", errors.status, ",\"socket_errors\":",
    errors.connect + errors.read + errors.write + errors.timeout,
    ",\"p50\":", latency:percentile(50), ",\"p90\":", latency:percentile(90),
    ",\"p99\":", latency:percentile(99), ",\"max\":", latency.max, "}\n")
end
"""


def available() -> bool:
    return shutil.which("wrk") is not None


def lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string literal is a valid Lua one for this ASCII text


def run(
    url: str, script: str, *, connections: int, seconds: float, rate: float | None = None
) -> dict[str, Any]:
    """Load ``url`` with ``script`` (Lua that defines ``request``); the figures."""
    if not available():
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    if rate:
        script += f"\ndelay = function() return {1000 * connections / rate:.3f} end\n"
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as file:
        file.write(script + DONE)
    try:
        done = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{seconds:g}s",
                "--timeout",
                "30s",
                "-s",
                file.name,
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        os.unlink(file.name)
    line = next(x for x in done.stdout.splitlines() if x.startswith("WRK_JSON "))
    figures = json.loads(line.removeprefix("WRK_JSON "))
    seconds_run = figures["duration_us"] / 1e6
    ok = figures["requests"] - figures["non2xx"]
    return {
        **figures,
        "ok": ok,
        "rps": ok / seconds_run,
        **{k: figures[k] / 1000 for k in ("p50", "p90", "p99", "max")},
    }


def summary(figures: dict[str, Any], *, per_request: int = 1, unit: str = "req/s") -> str:
    errors = figures["non2xx"] + figures["socket_errors"]
    return (
        f"{figures['rps'] * per_request:,.0f} {unit}, p50 {figures['p50']:.1f} ms, "
        f"p90 {figures['p90']:.1f} ms, p99 {figures['p99']:.1f} ms "
        f"({figures['ok']} answered"
        f"{f', {errors} FAILED' if errors else ''})"
    )


def load_average() -> str:
    return f"load average {os.getloadavg()[0]:.1f}"
