#!/usr/bin/env bash
# bench/prune-scale.sh: arca prune's wall time and peak RSS on repositories
# of 1M, 10M, ... indexed blobs.
#
#   bench/prune-scale.sh [--blobs "1000000 10000000"] [--chunker 64,256,1024]
#                        [--file-mib 4] [--per-dir 16] [--reps N] [--out FILE]
#                        [--work DIR]
#
# How the repository is made: a real arca repository, written by arca
# itself. `arca init --chunker MIN,AVG,MAX` with the smallest sizes FastCDC
# allows (64,256,1024 bytes: about 330-byte chunks on random data), then a
# source of FILE-MiB files of seeded random bytes (incompressible, so every
# chunk is a distinct blob), sized so that backup 1 writes about N data
# blobs (the bytes per blob are calibrated first on a 32 MiB file). Then
# half of the files are deleted (every other file of the first half, so
# that the packs holding them are half used and must be repacked, and the
# whole third quarter, so that the packs holding it hold nothing used and
# are deleted outright), backup 2 records what is left, and backup 1 is
# forgotten: half of the blobs are then unused. The files go PER-DIR to a
# directory (default 16), so that the largest tree (one directory's nodes
# with every extent of its files: about 50 bytes per extent) is the same
# at every size: a walk holds one tree per level, so tree size is an axis
# of its own, and holding it fixed shows what grows with the number of
# blobs. Measured with
# /usr/bin/time -v: `arca prune --dry-run` (the plan alone) and
# `arca prune --now` (both generations: it repacks, condemns and deletes).
# Then `arca check` and a restore of a sample of files compared with cmp.
#
# Results: a CSV under the work directory and a section in the Markdown
# report (default docs/benchmarks.md) between <!-- prune-scale: begin -->
# and <!-- prune-scale: end --> (appended when missing).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BLOBS="1000000 10000000"
CHUNKER=64,256,1024
FILE_MIB=4
PER_DIR=16
REPS=1
OUT=$ROOT/docs/benchmarks.md
WORK=${BENCH_WORK:-/tmp/arca-bench}/prune-scale
while [ $# -gt 0 ]; do
  case $1 in
    --blobs) BLOBS=$2; shift 2 ;;
    --chunker) CHUNKER=$2; shift 2 ;;
    --file-mib) FILE_MIB=$2; shift 2 ;;
    --per-dir) PER_DIR=$2; shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 2; }
if [ -n "${ARCA_BIN:-}" ]; then
  ARCA=$ARCA_BIN
else
  ( cd "$ROOT" && cargo build --release -p arca-cli >&2 )
  ARCA=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/arca
fi
export ARCA_PASSWORD=bench-password
mkdir -p "$WORK"
CSV=$WORK/prune-scale.csv
[ -f "$CSV" ] || echo "blobs_target,rep,step,wall_s,cpu_s,rss_kb,repo_bytes,data_blobs,detail" >"$CSV"
T0=$(date +%s)

gen_files() { # $1 dir $2 first index $3 count $4 bytes per file: seeded random files
  python3 - "$@" "$PER_DIR" <<'PY'
import os, random, sys
d, first, count, size, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
for i in range(first, first + count):
    sub = os.path.join(d, "d%04d" % (i // per))
    os.makedirs(sub, exist_ok=True)
    with open(os.path.join(sub, "f%06d.bin" % i), "wb") as f:
        f.write(random.Random(i).randbytes(size))
PY
}

measure() { # $1 blobs $2 rep $3 step $4 command...; records a CSV row
  local n=$1 rep=$2 step=$3; shift 3
  local tf=$WORK/time-$n-$step.txt log=$WORK/$n-$step.log
  sync
  if ! /usr/bin/time -v -o "$tf" "$@" >"$log" 2>&1; then
    echo "FAILED: $step ($*); see $log" >&2; tail -5 "$log" >&2
    echo "$n,$rep,$step,,,,,,failed" >>"$CSV"
    return 1
  fi
  local wall cpu rss
  read -r wall cpu rss < <(python3 - "$tf" <<'PY'
import sys
v = {}
for line in open(sys.argv[1]):
    k, _, x = line.strip().rpartition(": ")
    v[k] = x
w = v["Elapsed (wall clock) time (h:mm:ss or m:ss)"].split(":")
wall = sum(float(p) * 60 ** i for i, p in enumerate(reversed(w)))
cpu = float(v["User time (seconds)"]) + float(v["System time (seconds)"])
print(round(wall, 2), round(cpu, 2), v["Maximum resident set size (kbytes)"])
PY
)
  local size; size=$(du -sb "$REPO" | cut -f1)
  echo "$n,$rep,$step,$wall,$cpu,$rss,$size,${DATA_BLOBS:-},${DETAIL:-}" >>"$CSV"
  printf '%9s %s %-14s %8ss wall %8ss cpu %9s KB %13s B\n' "$n" "$rep" "$step" "$wall" "$cpu" "$rss" "$size" >&2
}

# bytes per data blob with this chunker, on random data
CAL=$WORK/calibrate
rm -rf "$CAL"; mkdir -p "$CAL/src"
gen_files "$CAL/src" 999999 1 $((32 << 20))
ARCA_REPOSITORY=$CAL/repo ARCA_CACHE_DIR=$CAL/cache "$ARCA" init -q --chunker "$CHUNKER"
ARCA_REPOSITORY=$CAL/repo ARCA_CACHE_DIR=$CAL/cache "$ARCA" backup -q "$CAL/src"
PER_BLOB=$(ARCA_REPOSITORY=$CAL/repo ARCA_CACHE_DIR=$CAL/cache "$ARCA" snapshots --json |
  python3 -c 'import json,sys; s=json.load(sys.stdin)[0]["summary"]; print(s["bytes_read"] / (s["blobs_added"] - 2))')
rm -rf "$CAL"
echo "chunker $CHUNKER: $PER_BLOB bytes per blob on random data" >&2

for n in $BLOBS; do
  D=$WORK/n$n
  rm -rf "$D"; mkdir -p "$D"
  export ARCA_REPOSITORY=$D/repo ARCA_CACHE_DIR=$D/cache
  REPO=$D/repo
  FILE_BYTES=$((FILE_MIB << 20))
  FILES=$(python3 -c "import math; print(max(4, math.ceil($n * $PER_BLOB / $FILE_BYTES / 4) * 4))")
  need=$(python3 -c "print(int($FILES * $FILE_BYTES * 2.6 / 2**30) + 1)")
  avail=$(df -BG --output=avail "$WORK" | tail -1 | tr -dc 0-9)
  if [ "$avail" -lt "$need" ]; then echo "skipping $n blobs: needs about $need GiB, $avail GiB free" >&2; continue; fi
  t=$(date +%s)
  gen_files "$D/src" 0 "$FILES" "$FILE_BYTES"
  echo "$n blobs: $FILES files of $FILE_MIB MiB generated in $(( $(date +%s) - t )) s" >&2
  DATA_BLOBS="" DETAIL=""
  measure "$n" 0 init "$ARCA" init -q --chunker "$CHUNKER"
  DETAIL="$FILES files" measure "$n" 0 backup1 "$ARCA" backup -q "$D/src"
  DATA_BLOBS=$("$ARCA" snapshots --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["summary"]["blobs_added"])')
  # half of the data goes: every other file of the first half (their packs
  # are then half used: repacked) and the whole third quarter (packs with
  # nothing used: deleted)
  python3 - "$D/src" "$FILES" "$PER_DIR" <<'PY'
import os, sys
d, files, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(files):
    if (i < files // 2 and i % 2 == 1) or (files // 2 <= i < 3 * files // 4):
        os.remove(os.path.join(d, "d%04d" % (i // per), "f%06d.bin" % i))
PY
  measure "$n" 0 backup2 "$ARCA" backup -q "$D/src"
  FIRST=$("$ARCA" snapshots --json | python3 -c 'import json,sys; print(sorted(json.load(sys.stdin), key=lambda s: s["time"])[0]["id"])')
  measure "$n" 0 forget "$ARCA" forget -q "$FIRST"
  sync
  if [ "$REPS" -gt 1 ]; then cp -a "$D/repo" "$D/pre-repo"; cp -a "$D/cache" "$D/pre-cache"; fi
  for rep in $(seq 1 "$REPS"); do
    if [ "$rep" -gt 1 ]; then
      rm -rf "$D/repo" "$D/cache"; cp -a "$D/pre-repo" "$D/repo"; cp -a "$D/pre-cache" "$D/cache"
    fi
    measure "$n" "$rep" prune_dry_run "$ARCA" prune --dry-run --json
    DETAIL=$(python3 -c '
import json, sys
p = json.load(open(sys.argv[1]))
def b(k):
    x = p.get(k) or {}
    return "%s packs/%.0f MiB" % (x.get("packs", "?"), (x.get("bytes") or 0) / 2**20) if isinstance(x, dict) else str(x)
print("keep %s; repack %s; condemn %s; copy %s blobs" % (b("keep"), b("repack"), b("condemn"), p.get("copy_blobs")))' "$WORK/$n-prune_dry_run.log" 2>/dev/null | tr ',' ';' || echo "")
    measure "$n" "$rep" prune_now "$ARCA" prune -q --now
    DETAIL=""
  done
  measure "$n" 0 check "$ARCA" check -q
  # a restore of a sample of the files that are left, compared with cmp
  ok=yes
  for i in 0 2 $((FILES * 3 / 4)) $((FILES - 1)); do
    f=$D/src/$(printf 'd%04d/f%06d.bin' $((i / PER_DIR)) "$i")
    if ! "$ARCA" dump latest "$f" | cmp -s - "$f"; then ok=no; echo "RESTORE DIFFERS: $f" >&2; fi
  done
  echo "$n,0,verify,,,,,,$ok" >>"$CSV"
  echo "$n blobs: check passed, sample restore $ok; $(( $(date +%s) - t )) s for this size" >&2
  rm -rf "$D/src" "$D/pre-repo" "$D/pre-cache"
done
ELAPSED=$(( $(date +%s) - T0 ))

python3 - "$CSV" "$OUT" "$CHUNKER" "$FILE_MIB" "$PER_BLOB" "$($ARCA --version)${ARCA_DESC:+, $ARCA_DESC}" "$ELAPSED" "$PER_DIR" <<'PY'
import csv, os, statistics, sys, datetime, platform, subprocess
path, out, chunker, file_mib, per_blob, version, elapsed, per_dir = sys.argv[1:9]
rows = list(csv.DictReader(open(path)))
sizes = []
for r in rows:
    if r["blobs_target"] not in sizes:
        sizes.append(r["blobs_target"])
def get(n, step, key):
    v = [float(r[key]) for r in rows if r["blobs_target"] == n and r["step"] == step and r[key] not in ("", None)]
    return statistics.median(v) if v else None
def one(n, step, key):
    v = [r[key] for r in rows if r["blobs_target"] == n and r["step"] == step and r[key]]
    return v[-1] if v else ""
cpu = subprocess.run(["sh", "-c", "lscpu | sed -n 's/^Model name: *//p' | head -1"], capture_output=True, text=True).stdout.strip()
mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
L = ["<!-- prune-scale: begin (generated by bench/prune-scale.sh; replaced on each run) -->",
     "### Prune memory at scale", "",
     f"Generated by `bench/prune-scale.sh` on {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC ({int(elapsed) // 60} min in all) "
     f"on {cpu} ({os.cpu_count()} cores), {mem:.0f} GiB RAM; {version}.", "",
     f"How each repository was made: a real arca repository written by arca itself, `arca init --chunker {chunker}` "
     f"(the smallest chunks FastCDC allows; {float(per_blob):.0f} bytes per blob on random data), backup 1 of "
     f"{file_mib} MiB files of seeded random bytes (every chunk a distinct, incompressible blob), {per_dir} to a "
     "directory (so that the largest tree, one directory's listing with every extent of its files, is the same "
     "at every size), then half of the "
     "files deleted (every other file of the first half, so their packs are half used and get repacked, and the "
     "whole third quarter, so their packs hold nothing used and are deleted), backup 2, and `arca forget` of "
     "backup 1: half of the data blobs are unused. Measured with `/usr/bin/time -v`; "
     "then `arca check` and a sample restore compared with `cmp`.", "",
     "| data blobs | repository before prune, MiB | backup 1 wall s / RSS MiB | `prune --dry-run` wall s / RSS MiB | "
     "`prune --now` wall s | `prune --now` CPU s | `prune --now` peak RSS MiB | repository after, MiB | verified |",
     "|---|---|---|---|---|---|---|---|---|"]
for n in sizes:
    if get(n, "prune_now", "wall_s") is None:
        continue
    blobs = one(n, "prune_now", "data_blobs")
    L.append(f"| {int(blobs):,} | {get(n, 'forget', 'repo_bytes') / 2**20:.0f} | "
             f"{get(n, 'backup1', 'wall_s'):.1f} / {get(n, 'backup1', 'rss_kb') / 1024:.0f} | "
             f"{get(n, 'prune_dry_run', 'wall_s'):.1f} / {get(n, 'prune_dry_run', 'rss_kb') / 1024:.0f} | "
             f"{get(n, 'prune_now', 'wall_s'):.1f} | {get(n, 'prune_now', 'cpu_s'):.1f} | "
             f"{get(n, 'prune_now', 'rss_kb') / 1024:.0f} | {get(n, 'prune_now', 'repo_bytes') / 2**20:.0f} | "
             f"{'check passed, restore identical' if one(n, 'verify', 'detail') == 'yes' else 'FAILED'} |")
plans = [(n, one(n, "prune_now", "detail")) for n in sizes if one(n, "prune_now", "detail")]
if plans:
    L += ["", "The plans (`prune --dry-run --json`): " + "; ".join(f"{int(one(n, 'prune_now', 'data_blobs') or 0):,} blobs: {d}" for n, d in plans) + "."]
L.append("<!-- prune-scale: end -->")
block = "\n".join(L)
old = open(out).read() if os.path.exists(out) else ""
b, e = "<!-- prune-scale: begin", "<!-- prune-scale: end -->"
if b in old and e in old:
    new = old[:old.index(b)] + block + old[old.index(e) + len(e):]
elif "<!-- retention: end -->" in old:
    i = old.index("<!-- retention: end -->") + len("<!-- retention: end -->")
    new = old[:i] + "\n\n" + block + old[i:]
else:
    new = old.rstrip("\n") + "\n\n" + block + "\n"
open(out, "w").write(new)
print(out)
PY
echo "raw results: $CSV" >&2
