#!/usr/bin/env bash
# Run the heartbeat and staleness benchmarks of bench/README.md ("Heartbeats and staleness") and
# append each JSON line to bench/results/heartbeats-<stamp>.jsonl, tagged with the command.
#
# usage: bash bench/run_heartbeats.sh
# env:   REF (git revision to measure, default HEAD; REF=worktree copies the working tree instead),
#        REPEAT (runs of each benchmark, default 3), PARTS (default "statements ingest staleness profile";
#        also: "nochannel" staleness without a channel x REPEAT, "light" ingest at -c 8 once,
#        "stalespy" one staleness run with py-spy on the worker),
#        LOCK (default /tmp/mc-machine.lock: every measurement holds it, one at a time)
set -euo pipefail

cd "$(dirname "$0")/.."
REF=${REF:-HEAD}
REPEAT=${REPEAT:-3}
PARTS=${PARTS:-statements ingest staleness profile}
LOCK=${LOCK:-/tmp/mc-machine.lock}
export PYTHONDONTWRITEBYTECODE=1
command -v wrk >/dev/null || { echo "wrk is not installed: apt-get install -y wrk" >&2; exit 1; }

mkdir -p bench/results
STAMP=$(date -u +%Y%m%d-%H%M%S)
OUT=bench/results/heartbeats-$STAMP.jsonl
ERR=/tmp/mc-hb-bench-$STAMP.stderr

# Others edit mission_control/ meanwhile: every process imports one frozen copy of the product code.
SNAPDIR=$(mktemp -d /tmp/mc-snapshot-hb-XXXXXX)
trap 'rm -rf "${SNAPDIR:?}"' EXIT
if [[ $REF == worktree ]]; then
    cp -r mission_control celeryconfig.py beat_schedule.py "$SNAPDIR"/
    find "$SNAPDIR" -name __pycache__ -prune -exec rm -rf {} +
    COMMIT="worktree on $(git rev-parse HEAD)"
else
    git archive "$REF" mission_control celeryconfig.py beat_schedule.py | tar -x -C "$SNAPDIR"
    COMMIT=$(git rev-parse "$REF")
fi
PY="env PYTHONPATH=$SNAPDIR .venv/bin/python"
printf '{"label": "meta", "cmd": "snapshot", "result": {"snapshot": "%s", "commit": "%s", "started_utc": "%s"}}\n' \
    "$SNAPDIR" "$COMMIT" "$(date -u +%FT%TZ)" | tee -a "$OUT"

record() {  # record LABEL COMMAND...: run it under the machine lock, keep each JSON line it prints
    local label=$1
    shift
    echo "== $label: $*" >&2
    {
        flock "$LOCK" "$@" 2>>"$ERR" | while IFS= read -r line; do
            printf '{"label": "%s", "cmd": "%s", "result": %s}\n' "$label" "$*" "$line" | tee -a "$OUT"
        done
    } || echo "== $label failed: see $ERR" >&2
}

if [[ " $PARTS " == *" statements "* ]]; then
    record statements $PY bench/heartbeat_bench.py --statements-only
fi
for i in $(seq 1 "$REPEAT"); do
    if [[ " $PARTS " == *" ingest "* ]]; then
        record "ingest-run$i" $PY bench/heartbeat_bench.py --services 1000 --workers 2 4 --auth admin token
    fi
    if [[ " $PARTS " == *" staleness "* ]]; then
        record "staleness-run$i" $PY bench/staleness_bench.py --services 10000 --seed "$i"
    fi
done
for i in $(seq 1 "$REPEAT"); do
    if [[ " $PARTS " == *" nochannel "* ]]; then
        record "staleness-nochannel-run$i" $PY bench/staleness_bench.py --services 10000 --seed "$i" --no-channel
    fi
done
if [[ " $PARTS " == *" light "* ]]; then
    # Latency below saturation: 8 connections, as many as 2 workers x 4 threads serve at once.
    record light $PY bench/heartbeat_bench.py --services 1000 --workers 2 --auth admin token --connections 8
fi
if [[ " $PARTS " == *" stalespy "* ]]; then
    record stalespy $PY bench/staleness_bench.py --services 10000 \
        --profile-dir "bench/results/heartbeats-$STAMP-spy"
fi
if [[ " $PARTS " == *" profile "* ]]; then
    # One more pass with py-spy attached (its own figures are slowed by the sampling; kept for the record).
    record profile $PY bench/heartbeat_bench.py --workers 2 --auth admin token --duration 10 \
        --profile-dir "bench/results/heartbeats-$STAMP-spy"
fi
echo "results: $OUT" >&2
