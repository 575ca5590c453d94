"""The benchmark keeps working as a command (its timings are not asserted here, only its run)."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import PROJECT


def test_the_benchmark_command_runs_and_reports_every_figure():
    run = subprocess.run(
        [sys.executable, str(PROJECT / "benchmarks" / "intake_and_837p.py"), "--encounters", "30", "--json"],
        capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stderr
    figures = json.loads(run.stdout)
    assert figures["encounters"] == 30
    for key in ("intake_ratio", "intake_single_process_ratio", "generate_ratio", "intake_peak_mb", "segments"):
        assert figures[key] > 0


def test_the_sftp_benchmark_runs_beside_openssh_and_reports_every_figure():
    import pytest

    from sftp_support import sshd_available

    if not sshd_available():
        pytest.skip("OpenSSH's sshd is not installed")
    run = subprocess.run(
        [sys.executable, str(PROJECT / "benchmarks" / "sftp_throughput.py"), "--sizes", "1,2", "--repeat", "1", "--json"],
        capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stderr
    rows = json.loads(run.stdout)["rows"]
    tools = {(r["size_mb"], r["direction"], r["tool"]) for r in rows}
    for size in (1, 2):
        for direction in ("download", "upload"):
            assert {(size, direction, "connector"), (size, direction, "scp")} <= tools
    assert all(r["mb_per_s"] > 0 for r in rows)


def test_the_835_benchmark_runs_and_judges_every_target():
    run = subprocess.run(
        [sys.executable, str(PROJECT / "benchmarks" / "remit_835.py"), "--claims", "50,200", "--pyx12-loop-claims", "20",
         "--json"],
        capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stderr
    figures = json.loads(run.stdout)
    readers = {(r["claims_in_file"], r["reader"]) for r in figures["rows"]}
    for n in (50, 200):
        for reader in ("read_835", "pyx12 bare segments", "pyx12 loop-aware", "str.split floor", "post (bhhub intake)"):
            assert (n, reader) in readers
    assert set(figures["targets"]) == {"of_oxedi_mb_per_s", "over_pyx12_loop_aware_claims_per_s",
                                       "over_pyx12_bare_mb_per_s", "flat_memory"}


def test_the_scrub_benchmark_runs_beside_the_837p_writer():
    run = subprocess.run([sys.executable, str(PROJECT / "benchmarks" / "scrub_vs_837p.py"), "--claims", "40", "--json"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    figures = json.loads(run.stdout)
    assert figures["claims"] == 40 and figures["scrub_seconds"] > 0 and figures["write_837p_seconds"] > 0
    assert {"duplicates", "ledger.credentialing", "coding", "core.timely_filing"} <= set(figures["checks"])


def test_the_hl7_benchmark_runs_beside_hl7apy_and_imports_every_message():
    run = subprocess.run([sys.executable, str(PROJECT / "benchmarks" / "hl7_intake.py"), "--messages", "40", "--json"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    figures = json.loads(run.stdout)
    assert figures["messages"] == 40 and figures["intake_claims"] == figures["intake_ready_claims"] > 0
    assert figures["intake_records"] > 0
    for key in ("intake_messages_per_s", "hl7apy_messages_per_s", "hl7apy_groups_messages_per_s", "ratio"):
        assert figures[key] > 0


def test_the_export_benchmark_times_the_whole_command_beside_its_baseline():
    run = subprocess.run([sys.executable, str(PROJECT / "benchmarks" / "export_837.py"), "--claims", "40", "--json"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    figures = json.loads(run.stdout)
    assert figures["claims"] > 0 and figures["authorizations"] > 0
    for key in ("export_seconds", "per_claim_ledger_seconds", "baseline_seconds", "command_seconds", "ratio"):
        assert figures[key] > 0


def test_the_workspace_benchmark_signs_in_to_bhhub_serve_and_times_every_page_beside_its_query():
    run = subprocess.run([sys.executable, str(PROJECT / "benchmarks" / "workspace.py"), "--claims", "60", "--small", "30",
                          "--requests", "2", "--overview-requests", "1", "--load-seconds", "1", "--json"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    figures = json.loads(run.stdout)
    assert [size["claims"] for size in figures["sizes"]] == [30, 60]
    for size in figures["sizes"]:
        assert size["denials"] > 0  # the denied filter and the claim pages have something to show
        assert {row["request"] for row in size["rows"]} == {
            "overview", "overview API", "claims?status=denied", "claims API ?status=denied", "claim page", "claim API"}
        for row in size["rows"]:
            for key in ("p50_ms", "p95_ms", "direct_p50_ms", "direct_p95_ms", "ratio_p50", "ratio_p95"):
                assert row[key] > 0
        for key in ("throughput", "throughput_without_overview"):
            assert size[key]["requests"] > 0 and size[key]["rps"] > 0
        assert size["server_mb"]["peak"] >= size["server_mb"]["rss"] > 0
    assert set(figures["verdict"]) == {"p95_under_200ms", "within_2x_direct", "memory_flat", "no_errors_under_load"}
