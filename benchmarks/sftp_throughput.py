"""SFTP transfer speed and memory of the connector, beside OpenSSH's own clients on the same server.

    python benchmarks/sftp_throughput.py [--sizes 10,50] [--repeat 3] [--json]

Starts OpenSSH's sshd on 127.0.0.1 (as tests/sftp_support.py does), writes a file of each size
(random bytes), and times, on that file and that server:

- the connector (``bhhub.connectors.sftp.client.SftpClient``): download and upload, each in a fresh
  process doing only that (connect, transfer, close), whose peak-RSS growth during the transfer
  is its memory figure. An upload takes its content as bytes (the hub stores every batch), so
  those bytes are loaded before the baseline and the growth is what the transfer adds;
- OpenSSH's ``sftp -b`` (get and put) and ``scp`` (which speaks SFTP since OpenSSH 9.0), each
  a fresh process too; their memory figure is the peak RSS of the client (sftp or scp with the
  ssh it runs), measured by GNU time (/usr/bin/time) when it is installed.

Every figure includes making the connection and logging in, as each exchange does. Each is the
median of ``--repeat`` runs. Targets: the connector within 3x of the faster OpenSSH client's
throughput, and its memory flat in file size (growth at the largest size no more than 5 MB above
the smallest). Timings on a shared 2-core machine move by 10-30% between runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(PROJECT), str(PROJECT / "tests")]

GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None  # Debian package "time"
TARGET_RATIO = 3.0
FLAT_MARGIN_MB = 5.0
MB = 1024 * 1024


def peak_rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


# --- the child: one connector transfer, nothing else ----------------------------------------------


def child(direction: str, settings_json: str, remote: str, local: str) -> dict:
    from bhhub.connectors.sftp.client import SftpClient
    from bhhub.connectors.sftp.settings import SftpSettings

    settings = SftpSettings(**json.loads(settings_json))
    data = Path(local).read_bytes() if direction == "upload" else None
    spool = Path(local)
    before = peak_rss_mb()
    start = time.perf_counter()
    with SftpClient(settings) as client:
        if direction == "download":
            got = client.download(remote, spool)
        else:
            client.upload(data, posixpath_dirname(remote), remote.rsplit("/", 1)[-1], method="rename")
    seconds = time.perf_counter() - start
    if direction == "download":
        got.path.unlink()
    return {"seconds": seconds, "rss_growth_mb": peak_rss_mb() - before, "peak_rss_mb": peak_rss_mb()}


def posixpath_dirname(path: str) -> str:
    return path.rsplit("/", 1)[0] if "/" in path else "."


# --- the parent: server, files, runs, table --------------------------------------------------------


def run_connector(direction: str, settings: dict, remote: str, local: Path) -> dict:
    run = subprocess.run([sys.executable, __file__, "--child", direction, json.dumps(settings), remote, str(local)],
                         capture_output=True, text=True, timeout=600)
    if run.returncode != 0:
        raise SystemExit(f"connector {direction} failed:\n{run.stderr[-3000:]}")
    return json.loads(run.stdout)


def run_openssh(command: list[str], work: Path) -> dict:
    """Time an OpenSSH client; its peak RSS through GNU time, started from a small process.

    (A child forked straight from this Python would carry this process's memory as its floor.)
    """
    report = work / "time.out"
    wrapped = [GNU_TIME, "-f", "%M", "-o", str(report), *command] if GNU_TIME else command
    start = time.perf_counter()
    run = subprocess.run(wrapped, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         timeout=600)
    seconds = time.perf_counter() - start
    if run.returncode != 0:
        raise SystemExit(f"{' '.join(command[:2])} failed: {run.stderr.decode(errors='replace')[-2000:]}")
    peak = int(report.read_text().split()[-1]) / 1024 if GNU_TIME else None
    return {"seconds": seconds, "peak_rss_mb": peak}


def write_random_file(path: Path, size: int) -> None:
    with path.open("wb") as out:
        for _ in range(size // MB):
            out.write(os.urandom(MB))
        out.write(os.urandom(size % MB))


def measure(sizes_mb: list[int], repeat: int) -> dict:
    from sftp_support import openssh_server

    results = {"sizes_mb": sizes_mb, "repeat": repeat, "rows": []}
    with tempfile.TemporaryDirectory(prefix="bhhub-sftp-bench-") as work_name:
        work = Path(work_name)
        with openssh_server(work / "sshd") as server:
            known_hosts = work / "known_hosts"
            known_hosts.write_text(server.known_hosts_line + "\n")
            ssh_options = ["-o", f"UserKnownHostsFile={known_hosts}", "-o", "StrictHostKeyChecking=yes",
                           "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-i", str(server.client_key),
                           "-P", str(server.port)]
            target = f"{server.username}@{server.host}"
            settings = {"host": server.host, "port": server.port, "username": server.username,
                        "known_hosts": [server.host_public_key], "key_file": str(server.client_key)}
            for size_mb in sizes_mb:
                size = size_mb * MB
                local = work / f"local-{size_mb}.bin"
                write_random_file(local, size)
                shutil.copyfile(local, server.root / f"remote-{size_mb}.bin")
                spool = work / "spool"
                spool.mkdir(exist_ok=True)
                batch = work / "batch"
                cases = {
                    ("download", "connector"): lambda: run_connector("download", settings, f"remote-{size_mb}.bin", spool),
                    ("upload", "connector"): lambda: run_connector("upload", settings, f"up-{size_mb}.bin", local),
                    ("download", "sftp -b"): lambda: _sftp(batch, f"get remote-{size_mb}.bin {work}/got.bin",
                                                           ssh_options, target),
                    ("upload", "sftp -b"): lambda: _sftp(batch, f"put {local} up-sftp-{size_mb}.bin", ssh_options, target),
                    ("download", "scp"): lambda: run_openssh(["scp", "-q", *ssh_options,
                                                              f"{target}:remote-{size_mb}.bin", str(work / "got.bin")], work),
                    ("upload", "scp"): lambda: run_openssh(["scp", "-q", *ssh_options, str(local),
                                                            f"{target}:up-scp-{size_mb}.bin"], work),
                }
                for (direction, tool), case in cases.items():
                    runs = [case() for _ in range(repeat)]
                    seconds = statistics.median(r["seconds"] for r in runs)
                    row = {"size_mb": size_mb, "direction": direction, "tool": tool, "seconds": seconds,
                           "mb_per_s": size / MB / seconds,
                           "peak_rss_mb": None if runs[0]["peak_rss_mb"] is None else max(r["peak_rss_mb"] for r in runs)}
                    if tool == "connector":
                        row["rss_growth_mb"] = max(r["rss_growth_mb"] for r in runs)
                    results["rows"].append(row)
                if not (server.root / f"up-{size_mb}.bin").stat().st_size == size:
                    raise SystemExit("the connector's upload did not arrive whole")
                local.unlink()
    return summarize(results)


def _sftp(batch: Path, command: str, ssh_options: list[str], target: str) -> dict:
    batch.write_text(command + "\n")
    return run_openssh(["sftp", "-q", "-b", str(batch), *ssh_options, target], batch.parent)


def summarize(results: dict) -> dict:
    rows = results["rows"]
    largest, smallest = max(results["sizes_mb"]), min(results["sizes_mb"])

    def rate(size, direction, tool):
        return next(r["mb_per_s"] for r in rows if (r["size_mb"], r["direction"], r["tool"]) == (size, direction, tool))

    ratios = {}
    for direction in ("download", "upload"):
        openssh_best = max(rate(largest, direction, tool) for tool in ("sftp -b", "scp"))
        ratios[direction] = openssh_best / rate(largest, direction, "connector")
    growth = {direction: {r["size_mb"]: r["rss_growth_mb"] for r in rows
                          if r["tool"] == "connector" and r["direction"] == direction}
              for direction in ("download", "upload")}
    results["ratios"] = ratios
    results["rss_growth_mb"] = growth
    results["memory_flat"] = all(g[largest] <= g[smallest] + FLAT_MARGIN_MB for g in growth.values())
    results["within_target"] = all(r <= TARGET_RATIO for r in ratios.values())
    return results


def print_table(results: dict) -> None:
    print(f"{'size':>6}  {'direction':<9} {'client':<10} {'seconds':>8} {'MB/s':>8} {'peak RSS':>9} {'RSS growth':>11}")
    for r in results["rows"]:
        growth = f"{r['rss_growth_mb']:>8.1f} MB" if "rss_growth_mb" in r else ""
        peak = "n/a" if r["peak_rss_mb"] is None else f"{r['peak_rss_mb']:.1f} MB"
        print(f"{r['size_mb']:>3} MB  {r['direction']:<9} {r['tool']:<10} {r['seconds']:>8.3f} {r['mb_per_s']:>8.1f} "
              f"{peak:>9} {growth:>11}")
    largest = max(results["sizes_mb"])
    print()
    for direction, ratio in results["ratios"].items():
        verdict = "met" if ratio <= TARGET_RATIO else "NOT met"
        print(f"{direction:<8} at {largest} MB: faster OpenSSH client / connector = {ratio:.2f}x "
              f"(target <= {TARGET_RATIO:.1f}x): {verdict}")
    for direction, growth in results["rss_growth_mb"].items():
        figures = ", ".join(f"+{mb:.1f} MB at {size} MB" for size, mb in sorted(growth.items()))
        print(f"{direction:<8} connector memory: {figures}")
    print(f"memory flat in file size (growth at the largest size <= smallest + {FLAT_MARGIN_MB:.0f} MB): "
          f"{'yes' if results['memory_flat'] else 'NO'}")


def main() -> int:
    if len(sys.argv) == 6 and sys.argv[1] == "--child":
        print(json.dumps(child(*sys.argv[2:])))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,50", help="file sizes in MB, comma-separated (default 10,50)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure; the median is shown (default 3)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    from sftp_support import sshd_available

    if not sshd_available():
        print("OpenSSH's sshd is not installed (apt-get install -y openssh-server)", file=sys.stderr)
        return 2
    results = measure(sorted({int(s) for s in args.sizes.split(",")}), args.repeat)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print_table(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
