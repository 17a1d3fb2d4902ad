#!/usr/bin/env bash
# Run every benchmark of bench/README.md one after another (never two at once: the machine has 2 cores)
# and append each JSON line to bench/results/<stamp>.jsonl, tagged with which command produced it.
#
# usage: bash bench/run_all.sh [SIZES...]        (default sizes: 1000 10000 100000)
# env:   PEER_VENV (default /tmp/peer-venv), PEER_SCRIPT, REPEAT (runs of ours per size, default 3),
#        SQLA_CAP (seconds before the sqla peer's burst is cut short, default 600),
#        PARTS (default "peers ours e2e": which groups to run), SNAPSHOT_FROM (code to measure)
set -euo pipefail

cd "$(dirname "$0")/.."
SIZES=("${@:-1000 10000 100000}")
read -r -a SIZES <<<"${SIZES[*]}"
K=1000
PEER_VENV=${PEER_VENV:-/tmp/peer-venv}
PEER_SCRIPT=${PEER_SCRIPT:-/work/shared/bench/peer_beat_schedulers.py}
REPEAT=${REPEAT:-3}
SQLA_CAP=${SQLA_CAP:-600}
PARTS=${PARTS:-peers ours e2e}
export PYTHONDONTWRITEBYTECODE=1

mkdir -p bench/results
OUT=bench/results/$(date -u +%Y%m%d-%H%M%S).jsonl
ERR=/tmp/mc-bench-$(date -u +%Y%m%d-%H%M%S).stderr

# Others edit mission_control/ while this runs (it takes ~20 min), so every run of ours imports one
# frozen copy of the product code, put first on PYTHONPATH, and the results name its digest.
SNAPDIR=$(mktemp -d /tmp/mc-snapshot-XXXXXX)
SRC=${SNAPSHOT_FROM:-.}  # SNAPSHOT_FROM=DIR re-measures a copy kept from an earlier run
cp -r "$SRC"/mission_control "$SRC"/celeryconfig.py "$SRC"/beat_schedule.py "$SNAPDIR"/
find "$SNAPDIR" -name __pycache__ -prune -exec rm -rf {} +
DIGEST=$(cd "$SNAPDIR" && find . -type f \( -name '*.py' -o -name '*.ini' \) | sort | xargs sha256sum | sha256sum | cut -c1-16)
PY="env PYTHONPATH=$SNAPDIR .venv/bin/python"
printf '{"label": "meta", "cmd": "snapshot", "result": {"snapshot": "%s", "digest": "%s", "started_utc": "%s"}}\n' \
    "$SNAPDIR" "$DIGEST" "$(date -u +%FT%TZ)" | tee -a "$OUT"

record() {  # record LABEL COMMAND...: run it, keep its JSON line with the label and the command
    local label=$1
    shift
    local line
    echo "== $label: $*" >&2
    line=$("$@" 2>>"$ERR" | tail -n 1)
    printf '{"label": "%s", "cmd": "%s", "result": %s}\n' "$label" "$*" "$line" | tee -a "$OUT"
}

peer_cleanup() {
    dropdb -h 127.0.0.1 -U postgres --if-exists peer_beat 2>/dev/null || true
    redis-cli -n 14 FLUSHDB >/dev/null || true
}
cleanup() {
    peer_cleanup
    redis-cli -n 12 FLUSHDB >/dev/null || true
    rm -rf "${SNAPDIR:?}"
}
trap cleanup EXIT

# --- the peers, in their own venv, against their own database (dropped at exit) and Redis db 14
if [[ " $PARTS " == *" peers "* ]]; then
peer_cleanup
createdb -h 127.0.0.1 -U postgres peer_beat
for n in "${SIZES[@]}"; do
    record "peer-sqla-$n" "$PEER_VENV/bin/python" "$PEER_SCRIPT" sqla "$n" "$K" --cap "$SQLA_CAP"
    record "peer-redbeat-$n" "$PEER_VENV/bin/python" "$PEER_SCRIPT" redbeat "$n" "$K"
done
# the peer script has no two-beat check; ours (bench/peer_two_beats.py) runs in the peers' venv
record "peer-two-sqla" "$PEER_VENV/bin/python" bench/peer_two_beats.py sqla "$K" --seconds 20
record "peer-two-redbeat" "$PEER_VENV/bin/python" bench/peer_two_beats.py redbeat "$K" --seconds 20
peer_cleanup
fi

# --- ours: memory:// like the peers' default, then once over Redis db 12 at the largest size
largest=${SIZES[${#SIZES[@]}-1]}
if [[ " $PARTS " == *" ours "* ]]; then
for n in "${SIZES[@]}"; do
    for i in $(seq 1 "$REPEAT"); do
        record "ours-$n-run$i" $PY bench/scheduler_bench.py "$n" "$K" --seed "$i"
    done
done
record "ours-$largest-redis" $PY bench/scheduler_bench.py "$largest" "$K" --broker redis://127.0.0.1:6379/12
# the RSS of a real `celery beat` process (not the bench process) over the largest registry
record "beat-rss-$largest" $PY bench/e2e_bench.py beat-rss --jobs "$largest" --due "$K"
fi

# --- end to end: throughput with 1 and 2 worker processes, then firing lag for 60 s
if [[ " $PARTS " == *" e2e "* ]]; then
record "e2e-throughput-w1" $PY bench/e2e_bench.py throughput --jobs 2000 --workers 1
record "e2e-throughput-w2" $PY bench/e2e_bench.py throughput --jobs 2000 --workers 2
record "e2e-lag" $PY bench/e2e_bench.py lag --jobs 100 --seconds 60 --workers 1
fi

echo "results: $OUT (stderr: $ERR)" >&2
