#!/usr/bin/env python3
"""bench/wal-push.py: WAL archiving, arca against pgBackRest, same segments,
same machine, same run.

    bench/wal-push.py [--segments N] [--reps N] [--work DIR] [--out FILE]

The segments are real: a PostgreSQL cluster (initdb, as `nobody` when run
as root) runs pgbench (-i -s 20, then -T 60 -c 2) with
`archive_command = 'cp %p ...'` until N segments of 16 MiB are archived.
Then, for each tool and mode, each repetition starts from an empty
repository in a local directory and plays PostgreSQL's archiver: a fresh
pg_wal directory holding the N segments (hard links), every one marked
`archive_status/NAME.ready`; the command is run for each segment in order
(`%p` = pg_wal/NAME), and after each success NAME.ready is renamed
NAME.done, as PostgreSQL does. Measured: each call's latency (median, p90)
and the sustained rate (segments / total wall time). Then every segment is
fetched back by each tool and compared byte for byte (once, after the
last repetition).

Modes:
  arca sync      arca wal push %p --parallel 1  (token key: no Argon2id;
                 zstd level 1, wal push's default)
  arca parallel  arca wal push %p --parallel 4 (the default): pushes ahead
                 the next ready segments, 4 at once; later calls answer
                 from the spool
  arca async     arca wal push --async %p --parallel 4: a detached pusher
                 archives every ready segment continuously, 4 at once;
                 each call returns once its segment is archived
  pgbackrest sync   archive-push, compress-type=zst level 3 (its fastest
                    comparable setting), process-max=1
  pgbackrest async  archive-push with archive-async=y, process-max=4, a spool
The default pgBackRest compression (gz) is also run in sync mode, to show
what users get without tuning.

Results: a CSV under the work directory and a "WAL archiving" section in
the report (default docs/benchmarks.md) between the markers
<!-- wal-push:start --> and <!-- wal-push:end -->.
"""
import argparse
import csv
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchlib import ROOT, as_user, chown, cpu_name, pg_bin, run

class Cluster:
    def __init__(self, work, port):
        self.dir = work / "pg"
        self.data = self.dir / "data"
        self.port = port
        self.walsrc = work / "walsrc"

    def psql(self, q):
        o = run([pg_bin("psql"), "-X", "-A", "-t", "-h", str(self.dir), "-p", str(self.port),
                 "-U", "postgres", "-d", "postgres", "-c", q], capture_output=True, text=True)
        return o.stdout.strip()

    def ctl(self, *args):
        run(as_user([pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "log"), *args]),
            stdout=subprocess.DEVNULL)

    def make_segments(self, n):
        """Runs pgbench until n segments are archived; returns their paths."""
        if self.walsrc.exists() and len(list(self.walsrc.glob("0*"))) >= n:
            self.ctl("-w", "start")
            return
        shutil.rmtree(self.dir, ignore_errors=True)
        shutil.rmtree(self.walsrc, ignore_errors=True)
        self.dir.mkdir(parents=True)
        self.walsrc.mkdir()
        chown(self.dir)
        chown(self.walsrc)
        run(as_user([pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust"]),
            stdout=subprocess.DEVNULL)
        with open(self.data / "postgresql.conf", "a") as f:
            f.write(f"port = {self.port}\nlisten_addresses = ''\n"
                    f"unix_socket_directories = '{self.dir}'\nwal_level = replica\n"
                    f"archive_mode = on\narchive_command = 'cp %p {self.walsrc}/%f'\n"
                    "max_wal_size = 4GB\n")
        self.ctl("-w", "start")
        bench = [pg_bin("pgbench"), "-h", str(self.dir), "-p", str(self.port), "-U", "postgres"]
        run(bench + ["-i", "-s", "20", "postgres"], capture_output=True)
        while len([p for p in self.walsrc.glob("0*") if len(p.name) == 24]) < n + 1:
            run(bench + ["-T", "20", "-c", "2", "postgres"], capture_output=True)
            self.psql("SELECT pg_switch_wal()")
            time.sleep(1)

    def segments(self, n):
        return sorted(p for p in self.walsrc.glob("0*") if len(p.name) == 24)[:n]


def stage(work, segs, pg):
    """A fresh pg_wal with every segment ready, in a stand-in data
    directory (pgBackRest's async push wants pg_wal under pg1-path, and
    reads the cluster's identity from its pg_control)."""
    data = work / "run" / "data"
    wal = data / "pg_wal"
    shutil.rmtree(work / "run", ignore_errors=True)
    (wal / "archive_status").mkdir(parents=True)
    (data / "global").mkdir()
    shutil.copy(pg.data / "PG_VERSION", data / "PG_VERSION")
    shutil.copy(pg.data / "global" / "pg_control", data / "global" / "pg_control")
    for s in segs:
        os.link(s, wal / s.name)
        (wal / "archive_status" / f"{s.name}.ready").touch()
    chown(work / "run")
    return wal


def archive_loop(wal, segs, cmd_for):
    """PostgreSQL's archiver: one call per segment, in order."""
    lat = []
    start = time.perf_counter()
    for s in segs:
        t = time.perf_counter()
        r = subprocess.run(cmd_for(wal / s.name), capture_output=True, text=True)
        lat.append(time.perf_counter() - t)
        if r.returncode != 0:
            sys.exit(f"{cmd_for(wal / s.name)} failed: {r.stderr}")
        st = wal / "archive_status"
        os.rename(st / f"{s.name}.ready", st / f"{s.name}.done")
    return lat, time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--segments", type=int, default=64)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--work", default=str(ROOT / "target" / "bench-wal"))
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    a = ap.parse_args()
    work = Path(a.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    os.chmod(work, 0o755)
    arca = os.environ.get("ARCA_BIN") or str(ROOT / "target" / "release" / "arca")
    arca_copy = work / "arca"
    shutil.copy(arca, arca_copy)
    os.chmod(arca_copy, 0o755)
    desc = os.environ.get("ARCA_DESC", "")
    port = 25432
    pg = Cluster(work, port)
    try:
        pg.make_segments(a.segments)
        bench_all(a, work, arca_copy, desc, port, pg)
    finally:
        subprocess.run(as_user([pg_bin("pg_ctl"), "-D", str(pg.data), "-m", "fast", "-w", "stop"]),
                       capture_output=True)


def bench_all(a, work, arca_copy, desc, port, pg):
    segs = pg.segments(a.segments)
    assert len(segs) == a.segments, len(segs)
    wal_bytes = sum(s.stat().st_size for s in segs)

    env = {"PATH": os.environ["PATH"], "HOME": str(work)}

    def arca_setup(tag):
        repo = work / f"arca-repo-{tag}"
        cache = work / f"arca-cache-{tag}"
        shutil.rmtree(repo, ignore_errors=True)
        shutil.rmtree(cache, ignore_errors=True)
        token = work / f"arca-token-{tag}"
        token.unlink(missing_ok=True)
        e = dict(env, ARCA_REPOSITORY=str(repo), ARCA_PASSWORD="bench", ARCA_CACHE_DIR=str(cache))
        run([str(arca_copy), "init"], env=e, stdout=subprocess.DEVNULL)
        run([str(arca_copy), "key", "add", "--token-file", str(token)], env=e,
            stdout=subprocess.DEVNULL)
        chown(repo)
        chown(token)
        cache.mkdir(exist_ok=True)
        chown(cache)
        e = dict(env, ARCA_REPOSITORY=str(repo), ARCA_PASSWORD_FILE=str(token),
                 ARCA_CACHE_DIR=str(cache))
        return repo, e

    def pgbr_setup(tag, extra):
        base = work / f"pgbr-{tag}"
        shutil.rmtree(base, ignore_errors=True)
        base.mkdir()
        conf = base / "pgbackrest.conf"
        lines = [
            "[global]", f"repo1-path={base}/repo", f"log-path={base}/log",
            f"lock-path={base}/lock", f"spool-path={base}/spool",
            "log-level-console=warn", "log-level-file=off", "start-fast=y",
            *extra,
            "[bench]", f"pg1-path={pg.data}", f"pg1-socket-path={pg.dir}", f"pg1-port={port}",
            "pg1-user=postgres",
        ]
        conf.write_text("\n".join(lines) + "\n")
        # pushes see the stand-in data directory of stage()
        push_conf = base / "push.conf"
        push_conf.write_text("\n".join(lines).replace(
            f"pg1-path={pg.data}", f"pg1-path={work / 'run' / 'data'}") + "\n")
        chown(base)
        run(as_user(["pgbackrest", f"--config={conf}", "--stanza=bench", "stanza-create"]),
            capture_output=True)
        return base, ["pgbackrest", f"--config={push_conf}", "--stanza=bench"]

    modes = {
        "arca sync": ("arca", ["--parallel", "1"]),
        "arca parallel 4": ("arca", ["--parallel", "4"]),
        "arca async (4 at once)": ("arca", ["--async", "--parallel", "4"]),
        "pgbackrest sync (zst 3)": ("pgbr", ["compress-type=zst", "compress-level=3"]),
        "pgbackrest async (zst 3, 4 processes)": (
            "pgbr", ["compress-type=zst", "compress-level=3", "archive-async=y", "process-max=4"]),
        "pgbackrest sync (default: gz)": ("pgbr", []),
    }
    rows = []
    last_setup = {}
    for rep in range(1, a.reps + 1):
        for mode, (tool, opt) in modes.items():
            tag = mode.split()[0] + str(abs(hash(mode)) % 1000)
            wal = stage(work, segs, pg)
            if tool == "arca":
                repo, e = arca_setup(tag)
                cmd_for = lambda p, e=e, opt=opt: as_user(  # noqa: E731
                    ["env", *[f"{k}={v}" for k, v in e.items()], str(arca_copy),
                     "wal", "push", str(p), *opt])
                size_of = repo
            else:
                base, cmd = pgbr_setup(tag, opt)
                cmd_for = lambda p, cmd=cmd: as_user(cmd + ["archive-push", str(p)])  # noqa: E731
                size_of = base / "repo"
            lat, wall = archive_loop(wal, segs, cmd_for)
            stored = int(subprocess.run(["du", "-sb", str(size_of)], capture_output=True,
                                        text=True).stdout.split()[0])
            q = statistics.quantiles(lat, n=10)
            rows.append({
                "mode": mode, "rep": rep, "segments": len(segs), "wall_s": round(wall, 3),
                "segments_per_s": round(len(segs) / wall, 2),
                "mb_per_s": round(wal_bytes / wall / 1e6, 1),
                "median_ms": round(statistics.median(lat) * 1000, 1),
                "p90_ms": round(q[8] * 1000, 1), "stored_bytes": stored,
            })
            print(rows[-1], flush=True)
            last_setup[mode] = (tool, e if tool == "arca" else cmd)
    # every segment comes back intact, from each tool's last repository
    back = work / "back"
    for mode, (tool, x) in last_setup.items():
        shutil.rmtree(back, ignore_errors=True)
        back.mkdir()
        chown(back)
        for s in segs:
            dest = back / s.name
            if tool == "arca":
                c = as_user(["env", *[f"{k}={v}" for k, v in x.items()], str(arca_copy),
                             "wal", "fetch", s.name, str(dest)])
            else:
                c = as_user(x + ["archive-get", s.name, str(dest)])
            run(c, capture_output=True)
            if dest.read_bytes() != s.read_bytes():
                sys.exit(f"{mode}: {s.name} came back different")
        print(f"{mode}: all {len(segs)} segments fetched back identical", flush=True)

    with open(work / "wal-push.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)

    def med(mode, k):
        return statistics.median(r[k] for r in rows if r["mode"] == mode)

    best_pgbr = max((m for m in modes if m.startswith("pgbackrest")),
                    key=lambda m: med(m, "segments_per_s"))
    lines = [
        "<!-- wal-push:start -->",
        "## WAL archiving (`arca wal push` against pgBackRest)",
        "",
        f"Made by `bench/wal-push.py` on {time.strftime('%Y-%m-%d')}: {cpu_name()}, "
        f"{os.cpu_count()} cores; pgBackRest {subprocess.run(['pgbackrest', 'version'], capture_output=True, text=True).stdout.split()[-1]}, "
        f"arca {desc}. {len(segs)} real 16 MiB segments of a pgbench run "
        f"({wal_bytes / 2**20:.0f} MiB), archived one call per segment in order as "
        f"PostgreSQL's archiver does, into an empty local repository; medians of {a.reps} "
        "repetitions. Every segment was fetched back by each tool and compared.",
        "",
        "| mode | segments/s | MB/s | latency median | latency p90 | repository | rate vs best pgBackRest |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for m in modes:
        lines.append(
            f"| {m} | {med(m, 'segments_per_s'):.2f} | {med(m, 'mb_per_s'):.0f} | "
            f"{med(m, 'median_ms'):.0f} ms | {med(m, 'p90_ms'):.0f} ms | "
            f"{med(m, 'stored_bytes') / 2**20:.0f} MiB | "
            f"{med(m, 'segments_per_s') / med(best_pgbr, 'segments_per_s'):.2f}x |")
    lines += ["", "<!-- wal-push:end -->"]
    section = "\n".join(lines) + "\n"
    out = Path(a.out)
    text = out.read_text() if out.exists() else ""
    if "<!-- wal-push:start -->" in text:
        pre = text.split("<!-- wal-push:start -->")[0]
        post = text.split("<!-- wal-push:end -->", 1)[1].lstrip("\n")
        text = pre + section + ("\n" + post if post else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    out.write_text(text)
    print(section)


if __name__ == "__main__":
    main()
