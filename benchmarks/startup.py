"""Start-up and memory: `flywheel serve` until `/healthz` answers, against importing its libraries.

Baseline: a fresh interpreter that only imports the third-party libraries the serve path
loads (found in this run by starting the serve path once and listing what it imported,
plus the core list: slack_bolt, slack_sdk, aiohttp, sqlmodel, sqlalchemy, alembic,
pydantic_settings, structlog, prometheus_client). Figures: the median time for
`flywheel serve` (Slack configured with dummy credentials, a temporary SQLite database)
to answer 200 on `/healthz`, as a multiple of the baseline's median (budget ≤ 1.5×), and the
resident memory of the idle serving process (VmRSS, budget < 200 MB).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from benchmarks import ROOT, Figures, median, report, verdict

CORE = (
    "slack_bolt",
    "slack_sdk",
    "aiohttp",
    "sqlmodel",
    "sqlalchemy",
    "alembic",
    "pydantic_settings",
    "structlog",
    "prometheus_client",
)
FIRST_PARTY = frozenset({"bot", "adapters", "handlers", "storage", "benchmarks", "tests"})
BUDGET_RATIO = 1.5
BUDGET_RSS_MB = 200.0

# Runs the real serve path in-process and, once `/healthz` answers, prints the third-party
# packages it imported, then stops the server the way an operator would (SIGTERM).
_DISCOVER = """
import json, os, signal, sys, threading, time, urllib.request
before = set(sys.modules)
def watch():
    url = "http://127.0.0.1:%s/healthz" % os.environ["PORT"]
    for _ in range(600):
        try:
            urllib.request.urlopen(url, timeout=1).read()
            break
        except OSError:
            time.sleep(0.05)
    names = set()
    for name, module in list(sys.modules.items()):
        top = name.split(".")[0]
        path = getattr(module, "__file__", None) or ""
        if name == top and top not in before and "site-packages" in path:
            names.add(top)
    print("IMPORTED " + json.dumps(sorted(names)), flush=True)
    os.kill(os.getpid(), signal.SIGTERM)
threading.Thread(target=watch, daemon=True).start()
from bot.cli import main
main(["serve"])
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _environment(folder: Path, port: int) -> dict[str, str]:
    # Slack is configured so the serve path loads everything it does in production; the
    # API URL points nowhere because start-up must not need Slack.
    return {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{folder / 'startup.db'}",
        "SLACK_BOT_TOKEN": "xoxb-startup-benchmark",
        "SLACK_SIGNING_SECRET": "startup-benchmark-signing-secret",
        "SLACK_API_URL": "http://127.0.0.1:9/api/",
        "FLYWHEEL_SECRET_KEY": "startup-benchmark-secret-key-0123456789",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "PYTHONPATH": str(ROOT),
    }


def _serve_command() -> list[str]:
    script = Path(sys.executable).parent / "flywheel"
    if script.exists():
        return [str(script), "serve"]
    found = shutil.which("flywheel")
    return [found, "serve"] if found else [sys.executable, "-m", "bot", "serve"]


def discover_imports(folder: Path) -> list[str]:
    """The third-party top-level packages `flywheel serve` has loaded once it is healthy."""
    port = _free_port()
    result = subprocess.run(
        [sys.executable, "-c", _DISCOVER],
        cwd=folder,
        env=_environment(folder, port),
        capture_output=True,
        text=True,
        timeout=120,
    )
    for line in result.stdout.splitlines():
        if line.startswith("IMPORTED "):
            names: list[str] = json.loads(line.removeprefix("IMPORTED "))
            return sorted((set(names) - FIRST_PARTY) | set(CORE))
    raise RuntimeError(f"could not list the serve path's imports: {result.stderr[-500:]}")


def time_imports(modules: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import " + ", ".join(modules)], check=True)
    return time.perf_counter() - started


def time_serve(folder: Path, idle: float) -> tuple[float, float, float]:
    """Seconds until `/healthz` answers 200, then VmRSS and VmHWM (MB) after `idle` seconds."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}/healthz"
    log = (folder / "serve.log").open("a")
    started = time.perf_counter()
    process = subprocess.Popen(
        _serve_command(), cwd=folder, env=_environment(folder, port), stdout=log, stderr=log
    )
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"flywheel serve exited with {process.returncode}; see {log.name}"
                )
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.005)
        ready = time.perf_counter() - started
        time.sleep(idle)
        rss, peak = _memory(process.pid)
    finally:
        process.terminate()
        process.wait(30)
        log.close()
    return ready, rss, peak


def _memory(pid: int) -> tuple[float, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024  # kB → MB
    return fields["VmRSS"], fields["VmHWM"]


def measure(runs: int, idle: float) -> Figures:
    with tempfile.TemporaryDirectory(prefix="flywheel-bench-") as name:
        folder = Path(name)
        subprocess.run(
            [sys.executable, "-m", "bot", "db", "upgrade"],
            cwd=folder,
            env=_environment(folder, _free_port()),
            check=True,
            capture_output=True,
        )
        modules = discover_imports(folder)
        # Warm the OS file cache for both, so neither pays for the first read from disk.
        time_imports(modules)
        time_serve(folder, 0)
        baseline, core, serve, rss, peak = [], [], [], [], []
        for _ in range(runs):
            baseline.append(time_imports(modules))
            core.append(time_imports(list(CORE)))
            ready, resident, high = time_serve(folder, idle)
            serve.append(ready)
            rss.append(resident)
            peak.append(high)
    ratio = median(serve) / median(baseline)
    idle_rss = median(rss)
    return {
        "runs": runs,
        "imports (baseline), median (s)": round(median(baseline), 3),
        "flywheel serve → /healthz 200, median (s)": round(median(serve), 3),
        "serve / imports": round(ratio, 2),
        "budget ≤ 1.5×": verdict(ratio, BUDGET_RATIO, at_most=True),
        "core list only, median (s)": round(median(core), 3),
        "serve / core list only": round(median(serve) / median(core), 2),
        f"idle VmRSS after {idle:g} s, median (MB)": round(idle_rss, 1),
        "budget < 200 MB": verdict(idle_rss, BUDGET_RSS_MB - 1e-9, at_most=True),
        "peak VmHWM, median (MB)": round(median(peak), 1),
        "baseline imports": " ".join(modules),
    }


def main(argv: list[str] | None = None) -> Figures:
    parser = argparse.ArgumentParser(prog="python -m benchmarks startup", description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="measurements of each (5)")
    parser.add_argument("--idle", type=float, default=2.0, help="seconds idle before VmRSS (2)")
    args = parser.parse_args(argv)
    print(f"startup: {args.runs} runs of `flywheel serve` and of the bare imports")
    figures = measure(args.runs, args.idle)
    report("startup", figures)
    return figures


if __name__ == "__main__":
    main()
