"""Smoke test of the benchmark suite: ``python -m benchmarks run --tiny`` end to end.

It starts the OCS all-in-one and moto's server as subprocesses, runs a few calls
of every workload from the client process, and checks that results.json has
every row with a figure for each server, and that the table prints. (Skipped
when moto's server is not installed.)
"""

from __future__ import annotations

import json
import math

import pytest

from benchmarks import report
from benchmarks.__main__ import main
from benchmarks.modes import FULL, QUICK, TINY

pytest.importorskip("moto.server", reason="moto[server] is needed to compare with")


def expected_rows(mode) -> set[str]:
    ids = {
        f"{w}.{m}" for w in ("run_1", "run_batch", "terminate_1", "terminate_batch") for m in ("p50", "p95")
    }
    for n in mode.levels:
        ids |= {f"describe_{q}.{n}.{m}" for q in ("page", "by_id", "filter") for m in ("p50", "p95")}
    ids |= {f"describe_{k}.{n}" for n in mode.throughput_levels for k in ("rps", "rps_raw")}
    ids.add(f"memory.{mode.memory_level}")
    return ids


def expected_ocs_only(mode) -> set[str]:
    ids = {f"run_to_running_{n}.{m}" for n in mode.r2r_sizes for m in ("p50", "p95")}
    for hosts in mode.scheduler_hosts:
        ids |= {
            f"scheduler_{k}_{c}.{hosts}" for k in ("core", "service", "service_batched") for c in (1, 100)
        }
    return ids


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    assert main(["run", "--tiny", "--out", str(out)]) == 0
    return out, json.loads((out / "results.json").read_text())


def test_every_row_has_both_servers_and_a_ratio(results):
    _, data = results
    rows = {r["id"]: r for r in data["rows"]}
    assert set(rows) == expected_rows(TINY)
    for row in rows.values():
        assert set(row["values"]) == {"ocs", "moto"}, row["id"]
        assert all(math.isfinite(v) and v > 0 for v in row["values"].values()), row
        assert row["ratio"]["ocs"] == pytest.approx(row["values"]["ocs"] / row["values"]["moto"])
    for row in data["rows"]:
        if row["unit"] == "ms":
            assert all(n >= 1 for n in row["samples"].values()), row["id"]
    assert all(not errors for r in data["rows"] for errors in r.get("errors", {}).values())


def test_ocs_only_rows_and_the_rest_of_the_document(results):
    out, data = results
    assert {r["id"] for r in data["ocs_only"]} == expected_ocs_only(TINY)
    assert all(r["values"]["ocs"] > 0 for r in data["ocs_only"])
    assert data["servers"] == ["ocs", "moto"]
    assert "ocs-scaleout" not in data["skipped"]  # not asked for: it runs in the full mode
    assert data["libvirt"]["skipped"]  # real guests are not booted in tiny mode
    assert data["mode"]["name"] == "tiny" and data["machine"]["cpus"]
    if data.get("plot"):
        assert (out / data["plot"]).read_bytes().startswith(b"\x89PNG")


def test_table_lists_every_row(results):
    _, data = results
    text = report.table(data["rows"], data["servers"])
    assert len(text.splitlines()) == len(data["rows"]) + 2
    assert "ocs/moto" in text.splitlines()[0]


def test_modes_measure_what_the_issue_asks():
    assert FULL.run_one_calls == 200 and FULL.throughput_seconds == 20 and FULL.throughput_clients == 4
    assert {1_000, 10_000} <= set(FULL.levels) and {1_000, 10_000} <= set(FULL.throughput_levels)
    assert max(QUICK.levels) <= 1_000 and QUICK.budget_seconds <= 15


def test_the_scale_out_setup_runs_in_the_full_mode_and_says_why_it_cannot(tmp_path):
    from benchmarks import suite
    from benchmarks.servers import OcsScaleOut, free_port

    assert "ocs-scaleout" in suite.DEFAULT_SERVERS["full"]
    assert "ocs-scaleout" not in suite.DEFAULT_SERVERS["quick"]  # two devcluster starts: past 2 minutes
    ok, why = OcsScaleOut(tmp_path, 10, database_port=free_port()).available()
    assert not ok and "PostgreSQL" in why
