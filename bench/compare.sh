#!/usr/bin/env bash
# bench/compare.sh: arca side by side with restic, borg and rustic, on the
# same data, on the same machine, in one run, alternating tools.
#
#   bench/compare.sh [--scale N] [--reps N] [--tools "arca restic borg rustic"]
#                    [--many-files N] [--retention DAYS] [--out FILE] [--work DIR]
#
# For each repetition and each tool, in turn:
#   init; backup v1 (a working directory holding v1); backup v2 (the same
#   directory changed in place into v2 with rsync --inplace, so unchanged
#   files keep their metadata as on a real host); restore of v2 (checked with
#   diff -r); check --read-data; a second restore of v2 into a directory that
#   already holds v1 (restore over existing data, checked with diff -r).
# Each step is measured with /usr/bin/time (wall, user+sys CPU, peak RSS);
# repository sizes after v1 and v2 come from du. The corpus is built with
# ../shared/bench/make-corpus when missing. Results: a CSV under the work
# directory and a Markdown report (default docs/benchmarks.md) with medians
# and arca's figures as ratios to the best peer.
#
# --retention DAYS (default 0: off) then runs bench/retention.sh with the
# same binary, repetitions and tools (borg excepted): DAYS daily backups of
# a changing copy of v1, then forget --keep-daily 7 --keep-weekly 4 and
# prune, timed for each tool; its "Retention" section is written into the
# same report (see bench/retention.sh).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SCALE=1
REPS=3
TOOLS="arca restic borg rustic"
MANY=0
RETENTION=0
OUT=$ROOT/docs/benchmarks.md
WORK=${BENCH_WORK:-/tmp/arca-bench}
while [ $# -gt 0 ]; do
  case $1 in
    --scale) SCALE=$2; shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
    --tools) TOOLS=$2; shift 2 ;;
    --many-files) MANY=$2; shift 2 ;;
    --retention) RETENTION=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

CORPUS=${BENCH_CORPUS:-$ROOT/target/bench-corpus/s$SCALE}
if [ ! -d "$CORPUS/v1" ] || [ ! -d "$CORPUS/v2" ]; then
  echo "building the corpus (SCALE $SCALE) in $CORPUS" >&2
  "$ROOT/../shared/bench/make-corpus" "$CORPUS" "$SCALE" >&2
fi
V1=$CORPUS/v1
V2=$CORPUS/v2
if [ "$MANY" -gt 0 ]; then
  # a synthetic many-files tree: N small files in 2-level directories; v2
  # changes 1% of them and adds 1%
  MF=$ROOT/target/bench-corpus/many-$MANY
  if [ ! -d "$MF/v2" ]; then
    python3 - "$MF" "$MANY" <<'PY'
import os, random, sys
out, n = sys.argv[1], int(sys.argv[2])
r = random.Random(7)
for gen in ("v1", "v2"):
    rr = random.Random(7)
    for i in range(n + (n // 100 if gen == "v2" else 0)):
        d = os.path.join(out, gen, "d%03d" % (i % 500), "e%02d" % (i % 37))
        os.makedirs(d, exist_ok=True)
        size = rr.randrange(200, 8000)
        body = (("record %d " % i) * (size // 10 + 1))[:size].encode()
        if gen == "v2" and i % 100 == 0:
            body = body[::-1]
        with open(os.path.join(d, "f%07d.txt" % i), "wb") as f:
            f.write(body)
PY
  fi
  V1=$MF/v1
  V2=$MF/v2
  CORPUS=$MF
fi

command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 2; }
command -v rsync >/dev/null || { echo "needs rsync" >&2; exit 2; }
export PATH=$PATH:$HOME/.cargo/bin
# ARCA_BIN: an arca binary to measure instead of building this checkout's
# (for before/after comparisons of two builds on the same machine)
if [ -n "${ARCA_BIN:-}" ]; then
  ARCA=$ARCA_BIN
else
  ( cd "$ROOT" && cargo build --release -p arca-cli >&2 )
  ARCA=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/arca
fi

available=()
for t in $TOOLS; do
  case $t in
    arca) available+=(arca) ;;
    restic|borg|rustic)
      if command -v "$t" >/dev/null; then available+=("$t"); else echo "skipping $t: not installed" >&2; fi ;;
    *) echo "unknown tool $t" >&2; exit 2 ;;
  esac
done

mkdir -p "$WORK"
DATA=$WORK/data
CSV=$WORK/results.csv
echo "tool,rep,step,wall_s,cpu_s,rss_kb,repo_bytes,verified" >"$CSV"
PASS=bench-password

tool_env() { # $1 tool
  local repo=$WORK/repo-$1 cache=$WORK/cache-$1
  case $1 in
    arca) export ARCA_REPOSITORY=$repo ARCA_PASSWORD=$PASS ARCA_CACHE_DIR=$cache ;;
    restic) export RESTIC_REPOSITORY=$repo RESTIC_PASSWORD=$PASS RESTIC_CACHE_DIR=$cache ;;
    rustic) export RUSTIC_REPOSITORY=$repo RUSTIC_PASSWORD=$PASS RUSTIC_CACHE_DIR=$cache ;;
    borg) export BORG_REPO=$repo BORG_PASSPHRASE=$PASS BORG_BASE_DIR=$cache BORG_RELOCATED_REPO_ACCESS_IS_OK=yes ;;
  esac
}

cmd_for() { # $1 tool $2 step $3 target -> prints the command
  local t=$1 s=$2 target=${3:-}
  case $t/$s in
    arca/init) echo "$ARCA init -q" ;;
    arca/backup1|arca/backup2) echo "$ARCA backup -q $DATA" ;;
    arca/restore|arca/restore_over) echo "$ARCA restore -q latest --target $target" ;;
    arca/check) echo "$ARCA check -q --read-data" ;;
    restic/init) echo "restic init -q" ;;
    restic/backup1|restic/backup2) echo "restic backup -q $DATA" ;;
    restic/restore|restic/restore_over) echo "restic restore -q latest --target $target" ;;
    restic/check) echo "restic check -q --read-data" ;;
    rustic/init) echo "rustic init" ;;
    rustic/backup1|rustic/backup2) echo "rustic backup $DATA" ;;
    rustic/restore|rustic/restore_over) echo "rustic restore latest $target" ;;
    rustic/check) echo "rustic check --read-data" ;;
    borg/init) echo "borg init -e repokey-blake2" ;;
    borg/backup1) echo "borg create ::v1 $DATA" ;;
    borg/backup2) echo "borg create ::v2 $DATA" ;;
    borg/restore|borg/restore_over) echo "sh -c 'cd $target && borg extract ::v2'" ;;
    borg/check) echo "borg check --verify-data" ;;
  esac
}

measure() { # $1 tool $2 rep $3 step $4 target
  local t=$1 rep=$2 step=$3 target=${4:-} tf=$WORK/time.txt
  local c; c=$(cmd_for "$t" "$step" "$target")
  # start every step with no dirty pages left by the previous one, so that
  # no tool pays for another's writeback
  sync
  if ! /usr/bin/time -f "%e %U %S %M" -o "$tf" sh -c "$c" >"$WORK/$t-$step.log" 2>&1; then
    echo "FAILED: $t $step ($c); see $WORK/$t-$step.log" >&2
    tail -5 "$WORK/$t-$step.log" >&2
    echo "$t,$rep,$step,,,,,failed" >>"$CSV"
    return 1
  fi
  read -r wall user sys rss <"$tf"
  local cpu; cpu=$(python3 -c "print(round($user + $sys, 2))")
  local size=""
  case $step in backup1|backup2) size=$(du -sb "$WORK/repo-$t" | cut -f1) ;; esac
  local verified=""
  case $step in
    restore)
      local rel=${DATA#/}
      if diff -r "$V2" "$target/$rel" >/dev/null 2>&1; then verified=identical; else verified=DIFFERENT; echo "RESTORE DIFFERS: $t $step" >&2; fi ;;
    restore_over)
      # every file of v2 must be identical; files only v1 had may remain
      # (no tool here deletes what the snapshot lacks by default)
      local rel=${DATA#/}
      if diff -rq "$V2" "$target/$rel" 2>&1 | grep -v "^Only in $target/$rel" | grep -q .; then
        verified=DIFFERENT; echo "RESTORE DIFFERS: $t $step" >&2
      else
        verified=identical
      fi ;;
  esac
  echo "$t,$rep,$step,$wall,$cpu,$rss,$size,$verified" >>"$CSV"
  printf '%-7s rep %s %-13s %7ss wall %7ss cpu %8s KB %s %s\n' "$t" "$rep" "$step" "$wall" "$cpu" "$rss" "$size" "$verified" >&2
}

for rep in $(seq 1 "$REPS"); do
  for t in "${available[@]}"; do
    tool_env "$t"
    rm -rf "$WORK/repo-$t" "$WORK/cache-$t" "$DATA" "$WORK/restore" "$WORK/restore-over"
    cp -a "$V1" "$DATA"
    sync
    measure "$t" "$rep" init || continue
    measure "$t" "$rep" backup1 || continue
    rsync -a -c --delete --inplace --no-whole-file "$V2/" "$DATA/"
    sync
    measure "$t" "$rep" backup2 || continue
    mkdir -p "$WORK/restore"
    measure "$t" "$rep" restore "$WORK/restore" || true
    measure "$t" "$rep" check || true
    # restore over existing data: the target already holds v1
    mkdir -p "$WORK/restore-over/$(dirname "${DATA#/}")"
    cp -a "$V1" "$WORK/restore-over/${DATA#/}"
    measure "$t" "$rep" restore_over "$WORK/restore-over" || true
    rm -rf "$WORK/restore" "$WORK/restore-over"
  done
done

versions() {
  for t in "${available[@]}"; do
    case $t in
      arca) echo "- arca: $($ARCA --version) (release build, $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown))" ;;
      restic) echo "- restic: $(restic version | head -1)" ;;
      rustic) echo "- rustic: $(rustic --version 2>&1 | head -1)" ;;
      borg) echo "- borg: $(borg --version) (repokey-blake2, default lz4 compression)" ;;
    esac
  done
}

mkdir -p "$(dirname "$OUT")"
python3 - "$CSV" "$OUT" "$SCALE" "$REPS" "$CORPUS" "$(versions)" "$MANY" <<'PY'
import csv, statistics, sys, platform, os, subprocess, datetime
path, out, scale, reps, corpus, versions, many = sys.argv[1:8]
rows = [r for r in csv.DictReader(open(path))]
steps = ["init", "backup1", "backup2", "restore", "check", "restore_over"]
names = {"init": "init", "backup1": "backup v1", "backup2": "backup v2 (incremental)",
         "restore": "restore v2", "check": "check --read-data", "restore_over": "restore v2 over v1"}
tools = []
for r in rows:
    if r["tool"] not in tools:
        tools.append(r["tool"])
def med(tool, step, key):
    v = [float(r[key]) for r in rows if r["tool"] == tool and r["step"] == step and r[key] not in ("", None)]
    return statistics.median(v) if v else None
def fmt(x, unit=""):
    if x is None: return "—"
    return f"{x:.2f}{unit}" if x < 100 else f"{x:.0f}{unit}"
def mib(kb): return None if kb is None else kb / 1024
lines = []
cpu = subprocess.run(["sh", "-c", "lscpu | sed -n 's/^Model name: *//p' | head -1"], capture_output=True, text=True).stdout.strip()
mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
lines += [f"# Benchmarks: arca against restic, borg and rustic", "",
          f"Generated by `bench/compare.sh` on {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC: "
          f"{reps} repetitions, tools alternating within each repetition, medians shown.", "",
          "## Machine", "", f"- CPU: {cpu} ({os.cpu_count()} cores), {mem:.0f} GiB RAM, {platform.system()} {platform.release()}",
          f"- corpus: `{corpus}`" + (f" (synthetic: {many} small files)" if many != "0" else f" (make-corpus SCALE {scale})"),
          "- the machine is shared and noisy: compare ratios within one run, not across runs", "",
          "## Versions", "", versions, "",
          "## Results (median of the repetitions)", "",
          "| step | " + " | ".join(f"{t} wall s | {t} CPU s | {t} RSS MiB" for t in tools) + " |",
          "|---|" + "---|" * (3 * len(tools))]
for s in steps:
    cells = []
    for t in tools:
        cells += [fmt(med(t, s, "wall_s")), fmt(med(t, s, "cpu_s")), fmt(mib(med(t, s, "rss_kb")))]
    lines.append(f"| {names[s]} | " + " | ".join(cells) + " |")
lines += ["", "| repository size | " + " | ".join(f"{t}" for t in tools) + " |", "|---|" + "---|" * len(tools)]
for s, label in (("backup1", "after v1 (MiB)"), ("backup2", "after v1+v2 (MiB)")):
    lines.append(f"| {label} | " + " | ".join(fmt(None if med(t, s, 'repo_bytes') is None else med(t, s, 'repo_bytes') / 2**20) for t in tools) + " |")
verified = {t: sorted({r["verified"] for r in rows if r["tool"] == t and r["step"].startswith("restore")}) for t in tools}
lines += ["", "Restores checked with `diff -r` against v2: " + "; ".join(f"{t}: {', '.join(v) or '—'}" for t, v in verified.items()), ""]
if "arca" in tools and len(tools) > 1:
    lines += ["## arca as a ratio to the best peer", "",
              "Time ratios are peer/arca (above 1: arca is faster); size and RSS ratios are arca/peer (below 1: arca is smaller).", "",
              "| step | best peer | wall (peer/arca) | CPU (peer/arca) | RSS (arca/peer) |", "|---|---|---|---|---|"]
    peers = [t for t in tools if t != "arca"]
    for s in steps:
        a = med("arca", s, "wall_s")
        best = min((p for p in peers if med(p, s, "wall_s") is not None), key=lambda p: med(p, s, "wall_s"), default=None)
        if a is None or best is None:
            continue
        bc, ac = med(best, s, "cpu_s"), med("arca", s, "cpu_s")
        br, ar = med(best, s, "rss_kb"), med("arca", s, "rss_kb")
        lines.append(f"| {names[s]} | {best} | {med(best, s, 'wall_s') / max(a, 1e-9):.2f}x | "
                     f"{(bc or 0) / max(ac or 1e-9, 1e-9):.2f}x | {(ar or 0) / max(br or 1, 1):.2f} |")
    sizes = [(p, med(p, "backup2", "repo_bytes")) for p in peers if med(p, "backup2", "repo_bytes")]
    if sizes and med("arca", "backup2", "repo_bytes"):
        p, b = min(sizes, key=lambda x: x[1])
        lines.append(f"\nRepository after v1+v2: arca {med('arca', 'backup2', 'repo_bytes') / 2**20:.1f} MiB, "
                     f"smallest peer ({p}) {b / 2**20:.1f} MiB: ratio {med('arca', 'backup2', 'repo_bytes') / b:.3f}.")
# Keep the hand-written analysis (everything from the marker on).
marker = "<!-- analysis: kept across runs of bench/compare.sh -->"
tail = ""
if os.path.exists(out):
    old = open(out).read()
    if marker in old:
        tail = "\n" + old[old.index(marker):]
open(out, "w").write("\n".join(lines) + "\n" + tail)
print(out)
PY
echo "raw results: $CSV" >&2

if [ "$RETENTION" -gt 0 ]; then
  rtools=""
  for t in "${available[@]}"; do [ "$t" = borg ] || rtools="$rtools $t"; done
  ARCA_BIN=$ARCA "$ROOT/bench/retention.sh" --days "$RETENTION" --reps "$REPS" --tools "${rtools# }" \
    --scale "$SCALE" --out "$OUT" --work "$WORK/retention"
fi
