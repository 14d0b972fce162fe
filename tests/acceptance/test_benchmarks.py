"""The benchmark suite's smoke run, in a subprocess: every scenario runs on
asyncio and Trio with a few hundred jobs. Nothing here is timed: the figures
of a smoke run mean nothing, the test only proves the suite works."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import uuid
from typing import TYPE_CHECKING

import psycopg
import pytest

from tests.conftest import ADMIN_DSN

if TYPE_CHECKING:
    from pathlib import Path

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCENARIOS = {
    "defer-single",
    "defer-batch",
    "drain",
    "drain-sync",
    "sustained",
    "latency",
    "waiters",
    "backlog-small",
    "backlog",
    "sleepy-16",
    "sleepy-64",
    "limits-none",
    "limits",
    "cost-defer",
    "cost-drain",
}

pytestmark = pytest.mark.slow


@pytest.mark.timeout(300)
def test_smoke_run_prints_the_tables(tmp_path: Path) -> None:
    """``python -m benchmarks --smoke`` runs every scenario on both backends,
    exits 0, prints the tables and the JSON, and drops its databases."""
    prefix = f"pa_bench_smoke_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    json_path = tmp_path / "smoke.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--smoke",
            "--backends",
            "asyncio,trio",
            "--dsn",
            ADMIN_DSN,
            "--db-prefix",
            prefix,
            "--json",
            str(json_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    for heading in ("## Side by side", "## Targets", "## All measurements"):
        assert heading in result.stdout
    assert "Durability: fsync=" in result.stdout
    assert "| latency p50 (ms)" in result.stdout
    assert "INCOMPLETE" not in result.stdout
    data = json.loads(json_path.read_text(encoding="utf-8"))
    ran = {(m["scenario"], m["runtime"]) for m in data["measurements"]}
    assert ran == {(s, b) for s in SCENARIOS for b in ("asyncio", "trio")}
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        left = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s",
            [prefix + "%"],
        ).fetchall()
    assert left == []


@pytest.mark.timeout(120)
def test_chaos_smoke_run() -> None:
    """``python -m benchmarks.chaos`` on a few hundred jobs, with workers
    killed (no PostgreSQL restart: the test server is shared): nothing lost,
    nothing left doing, duplicates within the bound, its database dropped."""
    before = _chaos_databases()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.chaos",
            "--dsn",
            ADMIN_DSN,
            "--jobs",
            "300",
            "--workers",
            "2",
            "--concurrency",
            "5",
            "--kill-every",
            "1",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "lost 0, doing 0, duplicates" in result.stdout
    assert "kills 0" not in result.stdout
    assert _chaos_databases() == before


def _chaos_databases() -> set[str]:
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'pa_chaos_%'"
        ).fetchall()
    return {row[0] for row in rows}
