#!/usr/bin/env python3
"""bench/dump-dedup.py: stored bytes per day for daily PostgreSQL dumps of a
database with scattered updates, arca against restic, borg and rustic, same
dumps, same machine, same run.

    bench/dump-dedup.py [--scale N] [--days N] [--tx N] [--work DIR] [--out FILE]
                        [--arca-chunks LIST]

The database is pgbench's (-i -s N: N x 100,000 accounts) with the
accounts' `filler` column filled with hex text (two MD5s per row, as real
rows carry names, addresses and hashes: pgbench leaves it blank, which
zstd squeezes to almost nothing and hides every difference between the
tools). Each day pgbench runs --tx transactions (TPC-B: each updates one
random account, teller and branch and inserts a history row), then a
VACUUM, as a nightly job would; then the day's dumps are taken: plain SQL
(`pg_dump -Fp`) and custom format without compression (`pg_dump -Fc -Z0`,
what one dumps for a deduplicating store).

Each tool gets a fresh repository per format in a local directory, and the
day's dump is backed up from one fixed path, day after day. Stored bytes
per day are the growth of the repository directory (everything in it:
packs, indexes, snapshots). Tools and settings:
  arca CHUNK   arca with `backup --chunk-size CHUNK` (default 512K: the
               repository's own chunker); zstd level 3 (arca's default)
  restic       restic 0.14 defaults (compression auto; chunks 512K-8M, avg 1M)
  borg         borg 1.2, --compression zstd,3 (chunks 2^19-2^23, avg 2M)
  rustic       rustic 0.11 defaults (restic's format and chunker)

Results: a CSV under the work directory and a "Daily database dumps"
section in the report (default docs/benchmarks.md) between the markers
<!-- dump-dedup:start --> and <!-- dump-dedup:end -->.
"""
import argparse
import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

from benchlib import ROOT, as_user, chown, cpu_name, pg_bin, run

def dir_bytes(p):
    return sum(f.stat().st_size for f in Path(p).rglob("*") if f.is_file())


class Cluster:
    def __init__(self, work, port):
        self.dir = work / "pg"
        self.data = self.dir / "data"
        self.port = port

    def conn(self):
        return ["-h", str(self.dir), "-p", str(self.port), "-U", "postgres"]

    def psql(self, q):
        run([pg_bin("psql"), "-X", "-q", *self.conn(), "-d", "bench", "-c", q],
            stdout=subprocess.DEVNULL)

    def ctl(self, *args):
        run(as_user([pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "log"), *args]),
            stdout=subprocess.DEVNULL)

    def start(self, scale):
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        chown(self.dir)
        run(as_user([pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust"]),
            stdout=subprocess.DEVNULL)
        with open(self.data / "postgresql.conf", "a") as f:
            f.write(f"port = {self.port}\nlisten_addresses = ''\n"
                    f"unix_socket_directories = '{self.dir}'\nmax_wal_size = 4GB\n"
                    "fsync = off\nsynchronous_commit = off\n")
        self.ctl("-w", "start")
        run([pg_bin("createdb"), *self.conn(), "bench"])
        run([pg_bin("pgbench"), *self.conn(), "-q", "-i", "-s", str(scale), "bench"],
            capture_output=True)
        self.psql("UPDATE pgbench_accounts SET filler = md5(aid::text) || md5((aid * 7)::text)")
        self.psql("VACUUM FULL pgbench_accounts")

    def day(self, tx):
        run([pg_bin("pgbench"), *self.conn(), "-c", "2", "-j", "2", "-t", str(tx // 2), "bench"],
            capture_output=True)
        self.psql("VACUUM")

    def dump(self, out, fmt):
        args = ["-Fp"] if fmt == "plain" else ["-Fc", "-Z0"]
        with open(out, "wb") as f:
            run([pg_bin("pg_dump"), *self.conn(), *args, "bench"], stdout=f)

    def stop(self):
        subprocess.run(as_user([pg_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w",
                                "stop"]), capture_output=True)


FORMATS = {"plain": "db.sql", "custom": "db.dump"}


def make_dumps(a, work):
    """Day 0 (after the load) and a.days changed days, both formats."""
    dumps = work / "dumps"
    stamp = dumps / f"done-s{a.scale}-d{a.days}-t{a.tx}"
    if stamp.exists():
        return dumps
    shutil.rmtree(dumps, ignore_errors=True)
    dumps.mkdir(parents=True)
    pg = Cluster(work, 25433)
    try:
        pg.start(a.scale)
        for day in range(a.days + 1):
            if day > 0:
                pg.day(a.tx)
            for fmt, name in FORMATS.items():
                pg.dump(dumps / f"day{day}-{name}", fmt)
            print(f"day {day} dumped", file=sys.stderr)
    finally:
        pg.stop()
    stamp.touch()
    return dumps


class Tool:
    """One tool in one configuration, backing up one fixed path."""

    def __init__(self, name, repo, env, init, backup):
        self.name, self.repo, self.env = name, repo, env
        self.init_cmd, self.backup_cmd = init, backup

    def init(self):
        shutil.rmtree(self.repo, ignore_errors=True)
        run(self.init_cmd, env=self.env, capture_output=True)

    def backup(self, path):
        r = subprocess.run(self.backup_cmd(path), env=self.env, capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"{self.name}: {self.backup_cmd(path)} failed: {r.stderr[-2000:]}")


def tools(a, work):
    base = {"PATH": os.environ["PATH"], "HOME": str(work)}
    arca = os.environ.get("ARCA_BIN") or str(ROOT / "target" / "release" / "arca")
    rustic = os.environ.get("RUSTIC_BIN") or shutil.which("rustic")
    out = []
    for chunk in a.arca_chunks.split(","):
        repo = work / f"repo-arca-{chunk}"
        env = dict(base, ARCA_REPOSITORY=str(repo), ARCA_PASSWORD="bench",
                   ARCA_CACHE_DIR=str(work / f"cache-arca-{chunk}"))
        shutil.rmtree(work / f"cache-arca-{chunk}", ignore_errors=True)
        flag = [] if chunk == "512K" else ["--chunk-size", chunk]
        out.append(Tool(f"arca {chunk}", repo, env, [arca, "init"],
                        lambda p, flag=flag: [arca, "backup", "--quiet", *flag, str(p)]))
    repo = work / "repo-restic"
    env = dict(base, RESTIC_REPOSITORY=str(repo), RESTIC_PASSWORD="bench",
               RESTIC_CACHE_DIR=str(work / "cache-restic"))
    out.append(Tool("restic", repo, env, ["restic", "init"],
                    lambda p: ["restic", "backup", "--quiet", str(p)]))
    repo = work / "repo-borg"
    env = dict(base, BORG_REPO=str(repo), BORG_PASSPHRASE="bench",
               BORG_BASE_DIR=str(work / "borg-base"))
    n = iter(range(1000))
    out.append(Tool("borg", repo, env, ["borg", "init", "-e", "repokey-blake2"],
                    lambda p: ["borg", "create", "--compression", "zstd,3",
                               f"::day{next(n)}", str(p)]))
    if rustic:
        repo = work / "repo-rustic"
        env = dict(base, RUSTIC_REPOSITORY=str(repo), RUSTIC_PASSWORD="bench",
                   RUSTIC_CACHE_DIR=str(work / "cache-rustic"))
        out.append(Tool("rustic", repo, env, [rustic, "init"],
                        lambda p: [rustic, "backup", str(p)]))
    else:
        print("rustic not found (cargo install --locked rustic-rs): left out", file=sys.stderr)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=int, default=10)
    ap.add_argument("--days", type=int, default=4)
    ap.add_argument("--tx", type=int, default=10000)
    ap.add_argument("--arca-chunks", default="512K,64K,16K,8K")
    ap.add_argument("--work", default=str(ROOT / "target" / "bench-dumps"))
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    a = ap.parse_args()
    work = Path(a.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    os.chmod(work, 0o755)
    dumps = make_dumps(a, work)
    rows = []
    for fmt, name in FORMATS.items():
        src = work / "src"
        shutil.rmtree(src, ignore_errors=True)
        src.mkdir()
        for t in tools(a, work):
            t.init()
            prev = dir_bytes(t.repo)
            for day in range(a.days + 1):
                path = src / name
                shutil.copyfile(dumps / f"day{day}-{name}", path)
                t.backup(path)
                now = dir_bytes(t.repo)
                rows.append({"format": fmt, "tool": t.name, "day": day,
                             "dump_bytes": path.stat().st_size, "stored_bytes": now - prev,
                             "repo_bytes": now})
                print(f"{fmt} {t.name} day {day}: +{now - prev}", file=sys.stderr)
                prev = now
            shutil.rmtree(t.repo, ignore_errors=True)
    with open(work / "dump-dedup.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    report(a, rows)


def mib(n):
    return f"{n / 1048576:.1f}"


def report(a, rows):
    desc = os.environ.get("ARCA_DESC", "")
    lines = ["<!-- dump-dedup:start -->", "## Daily database dumps (stored bytes per day)", "",
             f"Made by `bench/dump-dedup.py` on {subprocess.run(['date', '-u', '+%Y-%m-%d'], capture_output=True, text=True).stdout.strip()}: "
             f"{cpu_name()}, {os.cpu_count()} cores{', ' + desc if desc else ''}. pgbench -s {a.scale} "
             f"({a.scale * 100000} accounts, `filler` holding hex text), {a.tx} TPC-B transactions "
             "and a VACUUM per day, then `pg_dump -Fp` and `pg_dump -Fc -Z0`; each day's dump "
             "backed up from one path into a fresh repository per tool and format. MiB stored "
             "per day (repository growth); day 0 is the first, full backup.", ""]
    for fmt in FORMATS:
        sel = [r for r in rows if r["format"] == fmt]
        names = list(dict.fromkeys(r["tool"] for r in sel))
        dump = {r["day"]: r["dump_bytes"] for r in sel}
        lines.append(f"### {fmt} (`{'pg_dump -Fp' if fmt == 'plain' else 'pg_dump -Fc -Z0'}`)")
        lines.append("")
        lines.append("| day | dump | " + " | ".join(names) + " |")
        lines.append("| --- | --- | " + " | ".join("---" for _ in names) + " |")
        for day in range(a.days + 1):
            cells = [mib(next(r["stored_bytes"] for r in sel
                              if r["tool"] == n and r["day"] == day)) for n in names]
            lines.append(f"| {day} | {mib(dump[day])} | " + " | ".join(cells) + " |")
        totals = []
        for n in names:
            later = [r["stored_bytes"] for r in sel if r["tool"] == n and r["day"] > 0]
            totals.append(mib(sum(later) / len(later)))
        lines.append("| mean of days 1.. | | " + " | ".join(totals) + " |")
        lines.append("")
    lines.append("<!-- dump-dedup:end -->")
    out = Path(a.out)
    text = out.read_text() if out.exists() else ""
    block = "\n".join(lines)
    if "<!-- dump-dedup:start -->" in text:
        head, rest = text.split("<!-- dump-dedup:start -->", 1)
        tail = rest.split("<!-- dump-dedup:end -->", 1)[1]
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    out.write_text(text)
    print(block)


if __name__ == "__main__":
    main()
