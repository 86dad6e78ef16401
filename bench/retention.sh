#!/usr/bin/env bash
# bench/retention.sh: a retention series, arca side by side with restic and
# rustic, on the same data, on the same machine, in one run.
#
#   bench/retention.sh [--days N] [--reps N] [--tools "arca restic rustic"]
#                      [--change PCT] [--regions K] [--seed S]
#                      [--subset "ENTRY ..."] [--scale N] [--out FILE] [--work DIR]
#                      [--keep-state]
#
# The series: a working copy of the corpus's v1 (or of the named top-level
# entries of it, --subset) is backed up N times (default 30) by every tool,
# with --time one day apart (2026-01-01 02:00:00, then a day later each
# time). Before each backup after the first, every file of at least 1 MiB
# has PCT percent (default 2) of its data rewritten in place with random
# bytes, in K regions (default 8) at random offsets inside its data extents
# (holes of sparse files stay holes). The rewrite is seeded by (seed, day,
# path), so every run writes the same bytes, and all tools back up the same
# state of the source each day.
#
# Then, from a copy of each tool's repository and cache taken after the
# series (copied back before every repetition), each repetition measures:
#   arca    forget --keep-daily 7 --keep-weekly 4 --prune --now
#           (both prune generations in the run: space is freed, as restic does)
#   arca    forget --keep-daily 7 --keep-weekly 4 --prune   (one generation),
#           then prune (the second generation, which deletes what the first
#           condemned)
#   restic  forget --keep-daily 7 --keep-weekly 4 --prune
#   rustic  forget --keep-daily 7 --keep-weekly 4 --prune --instant-delete
#           (deletes in the run, as restic does)
#   rustic  forget --keep-daily 7 --keep-weekly 4 --prune
#           (its default: packs are only marked, deleted by a prune 23 h later)
# each with /usr/bin/time (wall, user+sys CPU, peak RSS), and the repository
# size after it (du). After the last repetition, each tool's pruned
# repository is checked (its structure check), the number of snapshots left
# is compared (9 for the default series), and the newest and the oldest kept
# snapshot are restored and compared with diff -r against the source as it
# was at those backups.
#
# Results: a CSV under the work directory and a "Retention" section in the
# Markdown report (default docs/benchmarks.md), written between the markers
# <!-- retention: begin --> and <!-- retention: end --> (appended when they
# are missing; the rest of the file is left alone). bench/compare.sh runs
# this with --retention N. --keep-state keeps the copies of the repositories
# and caches as they were before forget (pre-repo-TOOL, pre-cache-TOOL under
# the work directory), for profiling one step again.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DAYS=30
REPS=3
TOOLS="arca restic rustic"
CHANGE=2
REGIONS=8
SEED=1
SUBSET=""
SCALE=1
KEEP_STATE=0
OUT=$ROOT/docs/benchmarks.md
WORK=${BENCH_WORK:-/tmp/arca-bench}/retention
while [ $# -gt 0 ]; do
  case $1 in
    --days) DAYS=$2; shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
    --tools) TOOLS=$2; shift 2 ;;
    --change) CHANGE=$2; shift 2 ;;
    --regions) REGIONS=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --subset) SUBSET=$2; shift 2 ;;
    --scale) SCALE=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    --keep-state) KEEP_STATE=1; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[ "$DAYS" -ge 2 ] && [ "$DAYS" -le 365 ] || { echo "--days must be 2..365" >&2; exit 2; }

CORPUS=${BENCH_CORPUS:-$ROOT/target/bench-corpus/s$SCALE}
if [ ! -d "$CORPUS/v1" ]; then
  echo "building the corpus (SCALE $SCALE) in $CORPUS" >&2
  "$ROOT/../shared/bench/make-corpus" "$CORPUS" "$SCALE" >&2
fi
V1=$CORPUS/v1

command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 2; }
export PATH=$PATH:$HOME/.cargo/bin
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
    restic|rustic)
      if command -v "$t" >/dev/null; then available+=("$t"); else echo "skipping $t: not installed" >&2; fi ;;
    *) echo "unknown tool $t (the series supports arca, restic, rustic)" >&2; exit 2 ;;
  esac
done

rm -rf "$WORK"
mkdir -p "$WORK"
DATA=$WORK/data
CSV=$WORK/retention.csv
echo "tool,rep,step,wall_s,cpu_s,rss_kb,repo_bytes,snapshots,verified" >"$CSV"
PASS=bench-password
KEEP="--keep-daily 7 --keep-weekly 4"
T0=$(date +%s)

tool_env() { # $1 tool
  local repo=$WORK/repo-$1 cache=$WORK/cache-$1
  case $1 in
    arca) export ARCA_REPOSITORY=$repo ARCA_PASSWORD=$PASS ARCA_CACHE_DIR=$cache ;;
    restic) export RESTIC_REPOSITORY=$repo RESTIC_PASSWORD=$PASS RESTIC_CACHE_DIR=$cache ;;
    rustic) export RUSTIC_REPOSITORY=$repo RUSTIC_PASSWORD=$PASS RUSTIC_CACHE_DIR=$cache ;;
  esac
}

day_time() { # $1 day (1-based) -> "YYYY-MM-DD 02:00:00"
  date -u -d "2026-01-01 02:00:00 UTC + $(($1 - 1)) days" '+%Y-%m-%d %H:%M:%S'
}

cmd_for() { # $1 tool $2 step $3 extra
  local t=$1 s=$2 x=${3:-}
  case $t/$s in
    arca/init) echo "$ARCA init -q" ;;
    arca/backup) echo "$ARCA backup -q --time '$x' $DATA" ;;
    arca/forget_prune_now) echo "$ARCA forget -q $KEEP --prune --now" ;;
    arca/forget_prune_gen1) echo "$ARCA forget -q $KEEP --prune" ;;
    arca/prune_gen2) echo "$ARCA prune -q" ;;
    arca/check) echo "$ARCA check -q" ;;
    arca/restore) echo "$ARCA restore -q $x" ;;
    restic/init) echo "restic init -q" ;;
    restic/backup) echo "restic backup -q --time '$x' $DATA" ;;
    restic/forget_prune) echo "restic forget -q $KEEP --prune" ;;
    restic/check) echo "restic check -q" ;;
    restic/restore) echo "restic restore -q $x" ;;
    rustic/init) echo "rustic init" ;;
    rustic/backup) echo "rustic backup --time '$x' $DATA" ;;
    rustic/forget_prune) echo "rustic forget $KEEP --prune --instant-delete" ;;
    rustic/forget_prune_marked) echo "rustic forget $KEEP --prune" ;;
    rustic/check) echo "rustic check" ;;
    rustic/restore) echo "rustic restore $x" ;;
  esac
}

variants_for() { # the forget+prune steps measured for a tool
  case $1 in
    arca) echo "forget_prune_now forget_prune_gen1" ;;
    restic) echo "forget_prune" ;;
    rustic) echo "forget_prune forget_prune_marked" ;;
  esac
}

snapshot_count() { # $1 tool
  local j
  case $1 in
    arca) j=$($ARCA snapshots --json 2>/dev/null) ;;
    restic) j=$(restic snapshots --json 2>/dev/null) ;;
    rustic) j=$(rustic snapshots --json 2>/dev/null) ;;
  esac
  printf '%s' "$j" | python3 -c '
import json, sys
def walk(x):
    if isinstance(x, dict):
        if "time" in x and "tree" in x: yield x
        else:
            for v in x.values(): yield from walk(v)
    elif isinstance(x, list):
        for v in x: yield from walk(v)
print(len(list(walk(json.load(sys.stdin)))))'
}

snapshot_of_day() { # $1 tool $2 YYYY-MM-DD -> the id of the snapshot taken that day
  local j
  case $1 in
    arca) j=$($ARCA snapshots --json 2>/dev/null) ;;
    restic) j=$(restic snapshots --json 2>/dev/null) ;;
    rustic) j=$(rustic snapshots --json 2>/dev/null) ;;
  esac
  printf '%s' "$j" | python3 -c '
import json, sys
day = sys.argv[1]
def walk(x):
    if isinstance(x, dict):
        if "time" in x and "tree" in x: yield x
        else:
            for v in x.values(): yield from walk(v)
    elif isinstance(x, list):
        for v in x: yield from walk(v)
ids = [s["id"] for s in walk(json.load(sys.stdin)) if s["time"].startswith(day)]
print(ids[0] if len(ids) == 1 else "")' "$2"
}

measure() { # $1 tool $2 rep $3 step $4 extra; records a CSV row
  local t=$1 rep=$2 step=$3 extra=${4:-} tf=$WORK/time.txt
  local c; c=$(cmd_for "$t" "$step" "$extra")
  sync
  if ! /usr/bin/time -f "%e %U %S %M" -o "$tf" sh -c "$c" >"$WORK/$t-$step.log" 2>&1; then
    echo "FAILED: $t $step ($c); see $WORK/$t-$step.log" >&2
    tail -5 "$WORK/$t-$step.log" >&2
    echo "$t,$rep,$step,,,,,,failed" >>"$CSV"
    return 1
  fi
  read -r wall user sys rss <"$tf"
  local cpu; cpu=$(python3 -c "print(round($user + $sys, 2))")
  local size; size=$(du -sb "$WORK/repo-$t" | cut -f1)
  local snaps=""
  case $step in forget*|prune*) snaps=$(snapshot_count "$t") ;; esac
  echo "$t,$rep,$step,$wall,$cpu,$rss,$size,$snaps," >>"$CSV"
  printf '%-7s %3s %-20s %7ss wall %7ss cpu %8s KB %12s B %s\n' "$t" "$rep" "$step" "$wall" "$cpu" "$rss" "$size" "$snaps" >&2
}

mutate() { # $1 day: rewrite CHANGE% of every file >= 1 MiB in DATA, seeded
  python3 - "$DATA" "$1" "$CHANGE" "$REGIONS" "$SEED" <<'PY'
import os, random, sys
root, day, pct, regions, seed = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
def extents(fd, size):
    out, pos = [], 0
    while pos < size:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError:
            break
        end = os.lseek(fd, start, os.SEEK_HOLE)
        out.append((start, end))
        pos = end
    return out
files = []
for d, dirs, names in os.walk(root):
    dirs.sort()
    for n in sorted(names):
        p = os.path.join(d, n)
        if os.path.isfile(p) and not os.path.islink(p) and os.path.getsize(p) >= 1 << 20:
            files.append(p)
changed = 0
for p in files:
    rel = os.path.relpath(p, root)
    r = random.Random(f"{seed}:{day}:{rel}")
    fd = os.open(p, os.O_RDWR)
    try:
        ext = extents(fd, os.fstat(fd).st_size)
        total = sum(e - s for s, e in ext)
        if total == 0:
            continue
        n = max(1, int(total * pct / 100 / regions))
        for _ in range(regions):
            # a position in the data, mapped to its extent; a region does
            # not cross into a hole
            x = r.randrange(total)
            for s, e in ext:
                if x < e - s:
                    off = s + x
                    ln = min(n, e - off)
                    break
                x -= e - s
            os.pwrite(fd, r.randbytes(ln), off)
            changed += ln
    finally:
        os.close(fd)
print(f"day {day}: rewrote {changed / 2**20:.1f} MiB in {len(files)} files", file=sys.stderr)
PY
}

# --- the series ----------------------------------------------------------
if [ -n "$SUBSET" ]; then
  mkdir -p "$DATA"
  for e in $SUBSET; do cp -a "$V1/$e" "$DATA/$e"; done
else
  cp -a "$V1" "$DATA"
fi
echo "source: $(du -sh --apparent-size "$DATA" | cut -f1) apparent, $(du -sh "$DATA" | cut -f1) allocated, $(find "$DATA" -type f | wc -l) files" >&2
for t in "${available[@]}"; do
  tool_env "$t"
  measure "$t" 0 init
done
# the oldest snapshot the policy keeps: the newest of the 4th newest ISO
# week that has one, when the series is long enough; else the oldest daily
OLDEST_KEPT=$(python3 - "$DAYS" <<'PY'
import datetime, sys
days = int(sys.argv[1])
t = [datetime.date(2026, 1, 1) + datetime.timedelta(d) for d in range(days)]
keep = set(t[-7:])
weeks = []
for d in reversed(t):
    w = d.isocalendar()[:2]
    if w not in [x[0] for x in weeks]:
        weeks.append((w, d))
keep |= {d for _, d in weeks[:4]}
print(t.index(min(keep)) + 1)
PY
)
for day in $(seq 1 "$DAYS"); do
  if [ "$day" -gt 1 ]; then mutate "$day"; fi
  when=$(day_time "$day")
  for t in "${available[@]}"; do
    tool_env "$t"
    measure "$t" "$day" backup "$when" || { echo "the series needs every backup" >&2; exit 1; }
  done
  if [ "$day" = "$OLDEST_KEPT" ]; then
    rm -rf "$WORK/source-oldest-kept"
    cp -a "$DATA" "$WORK/source-oldest-kept"
  fi
done
echo "series done in $(( $(date +%s) - T0 )) s; the oldest kept snapshot is day $OLDEST_KEPT" >&2

# --- forget + prune, from the same state each repetition ------------------
for t in "${available[@]}"; do
  tool_env "$t"
  sync
  cp -a "$WORK/repo-$t" "$WORK/pre-repo-$t"
  mkdir -p "$WORK/cache-$t"
  cp -a "$WORK/cache-$t" "$WORK/pre-cache-$t"
  echo "$t,0,before_prune,,,,$(du -sb "$WORK/repo-$t" | cut -f1),$(snapshot_count "$t")," >>"$CSV"
done
reset_repo() { # $1 tool
  rm -rf "$WORK/repo-$1" "$WORK/cache-$1"
  cp -a "$WORK/pre-repo-$1" "$WORK/repo-$1"
  cp -a "$WORK/pre-cache-$1" "$WORK/cache-$1"
}
verify() { # $1 tool $2 label: check, snapshot count, restores of the newest and the oldest kept
  local t=$1 label=$2 ok=yes
  local c; c=$(cmd_for "$t" check)
  if ! sh -c "$c" >"$WORK/$t-check.log" 2>&1; then ok=no; echo "CHECK FAILED: $t ($label)" >&2; tail -5 "$WORK/$t-check.log" >&2; fi
  local rel=${DATA#/} day src id target=$WORK/restore
  for day in "$DAYS" "$OLDEST_KEPT"; do
    if [ "$day" = "$DAYS" ]; then src=$DATA; else src=$WORK/source-oldest-kept; fi
    id=$(snapshot_of_day "$t" "$(day_time "$day" | cut -d' ' -f1)")
    if [ -z "$id" ]; then ok=no; echo "NO SNAPSHOT of day $day: $t ($label)" >&2; continue; fi
    rm -rf "$target"; mkdir -p "$target"
    case $t in
      arca|restic) c="$(cmd_for "$t" restore "$id --target $target")" ;;
      rustic) c="$(cmd_for "$t" restore "$id $target")" ;;
    esac
    if ! sh -c "$c" >"$WORK/$t-restore.log" 2>&1; then ok=no; echo "RESTORE FAILED: $t day $day ($label)" >&2; tail -5 "$WORK/$t-restore.log" >&2; continue; fi
    if ! diff -r "$src" "$target/$rel" >/dev/null 2>&1; then ok=no; echo "RESTORE DIFFERS: $t day $day ($label)" >&2; fi
  done
  rm -rf "$target"
  echo "$t,0,verify_$label,,,,,$(snapshot_count "$t"),$ok" >>"$CSV"
  echo "$t verify ($label): check + restores of day $DAYS and day $OLDEST_KEPT: $ok" >&2
}
for rep in $(seq 1 "$REPS"); do
  for t in "${available[@]}"; do
    tool_env "$t"
    for v in $(variants_for "$t"); do
      reset_repo "$t"
      measure "$t" "$rep" "$v" || continue
      if [ "$v" = forget_prune_gen1 ]; then
        measure "$t" "$rep" prune_gen2 || continue
        if [ "$rep" = "$REPS" ]; then verify "$t" two_generations; fi
      fi
      if [ "$rep" = "$REPS" ] && [ "$v" != forget_prune_marked ] && [ "$v" != forget_prune_gen1 ]; then
        verify "$t" "$v"
      fi
    done
  done
done
if [ "$KEEP_STATE" = 0 ]; then
  for t in "${available[@]}"; do rm -rf "$WORK/pre-repo-$t" "$WORK/pre-cache-$t"; done
fi
ELAPSED=$(( $(date +%s) - T0 ))
echo "retention benchmark done in $ELAPSED s" >&2

# --- the report ----------------------------------------------------------
versions() {
  for t in "${available[@]}"; do
    case $t in
      arca) echo "- arca: $($ARCA --version) (release build${ARCA_DESC:+, $ARCA_DESC})" ;;
      restic) echo "- restic: $(restic version | head -1)" ;;
      rustic) echo "- rustic: $(rustic --version 2>&1 | head -1)" ;;
    esac
  done
}
SRC_DESC="$(if [ -n "$SUBSET" ]; then echo "the entries \`$SUBSET\` of"; else echo "all of"; fi) \`$V1\`: $(du -sh --apparent-size "$DATA" | cut -f1) apparent, $(du -sh "$DATA" | cut -f1) allocated, $(find "$DATA" -type f | wc -l) files, $(find "$DATA" -type f -size +1048575c | wc -l) of them of 1 MiB or more"
python3 - "$CSV" "$OUT" "$DAYS" "$REPS" "$CHANGE" "$REGIONS" "$SEED" "$SRC_DESC" "$(versions)" "$OLDEST_KEPT" "$ELAPSED" <<'PY'
import csv, statistics, sys, os, platform, subprocess, datetime
path, out, days, reps, change, regions, seed, src, versions, oldest, elapsed = sys.argv[1:12]
rows = list(csv.DictReader(open(path)))
tools = []
for r in rows:
    if r["tool"] not in tools:
        tools.append(r["tool"])
def vals(tool, step, key):
    return [float(r[key]) for r in rows if r["tool"] == tool and r["step"] == step and r[key] not in ("", None)]
def med(tool, step, key):
    v = vals(tool, step, key)
    return statistics.median(v) if v else None
def fmt(x):
    if x is None: return "—"
    return f"{x:.2f}" if x < 100 else f"{x:.0f}"
def mib(b): return None if b is None else b / 2**20
cpu = subprocess.run(["sh", "-c", "lscpu | sed -n 's/^Model name: *//p' | head -1"], capture_output=True, text=True).stdout.strip()
mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
rowsdef = [
    ("arca", "forget_prune_now", "arca forget --prune --now (both generations: space freed in the run)"),
    ("restic", "forget_prune", "restic forget --prune"),
    ("rustic", "forget_prune", "rustic forget --prune --instant-delete (space freed in the run)"),
    ("arca", "forget_prune_gen1", "arca forget --prune (one generation: condemns, frees nothing yet)"),
    ("arca", "prune_gen2", "then arca prune (second generation: deletes what the first condemned)"),
    ("rustic", "forget_prune_marked", "rustic forget --prune (its default: marks packs, deletes 23 h later)"),
]
L = ["<!-- retention: begin (generated by bench/retention.sh; replaced on each run) -->",
     "## Retention", "",
     f"Generated by `bench/retention.sh` on {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC "
     f"({int(elapsed) // 60} min {int(elapsed) % 60} s in all): {reps} repetitions of the forget+prune step, "
     "tools alternating within each repetition, medians shown.", "",
     f"- machine: {cpu} ({os.cpu_count()} cores), {mem:.0f} GiB RAM, {platform.system()} {platform.release()}; "
     "shared and noisy: compare ratios within one run",
     f"- source: {src}",
     f"- series: {days} backups per tool with `--time` one day apart (2026-01-01 02:00:00 on); before each "
     f"backup after the first, every file of 1 MiB or more has {change}% of its data rewritten with random bytes "
     f"in {regions} regions at random offsets inside its data extents (seeded: seed {seed}, day, path; "
     "all tools back up the same state each day)",
     "- policy: `forget --keep-daily 7 --keep-weekly 4`, default grouping (host, paths); each tool's "
     "repository and cache are copied back to their state after the series before every measured step",
     "- defaults otherwise: `--max-unused 5%` for all three; rustic also `--max-repack 10%`",
     "- afterwards each pruned repository passes its tool's `check`, and the newest snapshot (day "
     f"{days}) and the oldest kept (day {oldest}) restore identical (`diff -r`) to the source as it was then",
     "", "Versions:", "", versions, "",
     "### Forget + prune (median)", "",
     "| step | wall s | CPU s | peak RSS MiB | repository after, MiB | snapshots left |",
     "|---|---|---|---|---|---|"]
for t, s, label in rowsdef:
    if t not in tools or not vals(t, s, "wall_s"):
        continue
    L.append(f"| {label} | {fmt(med(t, s, 'wall_s'))} | {fmt(med(t, s, 'cpu_s'))} | {fmt(med(t, s, 'rss_kb') and med(t, s, 'rss_kb') / 1024)} "
             f"| {fmt(mib(med(t, s, 'repo_bytes')))} | {fmt(med(t, s, 'snapshots')).replace('.00', '')} |")
L += ["", "| repository, MiB | " + " | ".join(tools) + " |", "|---|" + "---|" * len(tools),
      "| after the series (before forget) | " + " | ".join(fmt(mib(med(t, "before_prune", "repo_bytes"))) for t in tools) + " |",
      "| after forget + prune (space freed in the run) | " + " | ".join(
          fmt(mib(med(t, {"arca": "forget_prune_now"}.get(t, "forget_prune"), "repo_bytes"))) for t in tools) + " |"]
L += ["", "Series backups (all days; the first is a full backup):", "",
      "| tool | total wall s | total CPU s | median daily wall s | max RSS MiB |", "|---|---|---|---|---|"]
for t in tools:
    w, c, m = vals(t, "backup", "wall_s"), vals(t, "backup", "cpu_s"), vals(t, "backup", "rss_kb")
    daily = [float(r["wall_s"]) for r in rows if r["tool"] == t and r["step"] == "backup" and r["rep"] != "1" and r["wall_s"]]
    if w:
        L.append(f"| {t} | {sum(w):.1f} | {sum(c):.1f} | {statistics.median(daily):.2f} | {max(m) / 1024:.0f} |")
ver = [(r["tool"], r["step"][7:], r["verified"], r["snapshots"]) for r in rows if r["step"].startswith("verify_")]
L += ["", "Verification after the last repetition (check, restores of the newest and the oldest kept snapshot): " +
      "; ".join(f"{t} {s}: {'passed' if v == 'yes' else 'FAILED'} ({n} snapshots)" for t, s, v, n in ver)]
if "arca" in tools and len(tools) > 1:
    peers = [t for t in tools if t != "arca"]
    a = "forget_prune_now"
    if vals("arca", a, "wall_s"):
        best = min(peers, key=lambda p: med(p, "forget_prune", "wall_s") or 1e18)
        smallest = min(peers, key=lambda p: med(p, "forget_prune", "repo_bytes") or 1e18)
        aw, ac, ar, asz = (med("arca", a, k) for k in ("wall_s", "cpu_s", "rss_kb", "repo_bytes"))
        L += ["", "### arca as a ratio to the peers", "",
              "Time ratios are peer/arca (above 1: arca is faster); RSS and size ratios are arca/peer (below 1: arca is smaller). "
              "arca's row is `forget --prune --now`; the peers' are the rows that free space in the run.", "",
              "| measure | against | ratio | target |", "|---|---|---|---|"]
        L.append(f"| prune wall time | fastest peer ({best}, {fmt(med(best, 'forget_prune', 'wall_s'))} s) | "
                 f"{med(best, 'forget_prune', 'wall_s') / aw:.2f}x | >= 3x |")
        L.append(f"| prune CPU | {best} | {med(best, 'forget_prune', 'cpu_s') / max(ac, 1e-9):.2f}x | — |")
        if "restic" in peers:
            L.append(f"| peak RSS | restic ({fmt(med('restic', 'forget_prune', 'rss_kb') / 1024)} MiB) | "
                     f"{ar / med('restic', 'forget_prune', 'rss_kb'):.2f} | <= 1 |")
        L.append(f"| repository after | smallest peer ({smallest}, {fmt(mib(med(smallest, 'forget_prune', 'repo_bytes')))} MiB) | "
                 f"{asz / med(smallest, 'forget_prune', 'repo_bytes'):.3f} | <= 1 |")
L.append("<!-- retention: end -->")
block = "\n".join(L) + "\n"
old = open(out).read() if os.path.exists(out) else ""
b, e = "<!-- retention: begin", "<!-- retention: end -->"
if b in old and e in old:
    i, j = old.index(b), old.index(e) + len(e)
    new = old[:i] + block.rstrip("\n") + old[j:]
else:
    new = old.rstrip("\n") + "\n\n" + block
open(out, "w").write(new)
print(out)
PY
echo "raw results: $CSV" >&2
