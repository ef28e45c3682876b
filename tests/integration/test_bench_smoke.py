"""A smoke run of the benchmark harness (`bench/run.py --quick`) against DIRECT and GATEPASS.

Only the shape of the JSON it writes is checked; the figures are never asserted (timing
depends on the machine). Needs `wrk` and `taskset`; the harness installs wrk with apt-get
when it can.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GATEPASS_CONFIGS = ("gatepass-minimal", "gatepass-key", "gatepass-token")


def test_quick_harness_run_writes_a_result_for_each_configuration(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    command = [
        sys.executable,
        str(ROOT / "bench" / "run.py"),
        "--quick",
        "--duration",
        "1",
        "--configs",
        "direct,gatepass",
        "--out",
        str(out),
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    if done.returncode == 3:
        pytest.skip(done.stderr.strip() or "the harness's tools are unavailable")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads(out.read_text())

    assert report["mode"] == "quick"
    assert {"cpu_model", "cpus", "python", "packages", "placement"} <= report["machine"].keys()
    assert set(report["configs"]) == {"direct", *GATEPASS_CONFIGS}
    for name, result in report["configs"].items():
        assert "error" not in result, (name, result)
        assert [run["connections"] for run in result["http"]] == [1, 16, 64]
        for run in result["http"]:
            assert run["requests"] > 0
            assert run["errors"] == 0, (name, run)
            assert {"rps", "p50_ms", "p99_ms", "cpu_us_per_request"} <= run.keys()
        assert result["rss_mib_after"] > 0
        assert [s["connections"] for s in result["streams"]] == [1, 16]
        for stream in result["streams"]:
            assert stream["streams"] > 0, (name, stream)
            assert stream["errors"] == 0, (name, stream)
            assert {"ttfb_p50_ms", "first_delta_p99_ms", "total_p50_ms"} <= stream.keys()
    assert "| gatepass-token |" in done.stdout
    assert shutil.which("wrk") is not None
