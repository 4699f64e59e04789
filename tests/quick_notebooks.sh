#!/usr/bin/env bash
# Every notebook in quick mode under nbval, on two cores: the notebooks both lanes need first, then the two lanes
# of tests/quick_digest.py at once (each in its dependency order; neither reads the other's results). Each lane's
# output is shown when it ends; the run fails if any notebook fails.   usage: tests/quick_notebooks.sh PYTHON
set -uo pipefail
PY=${1:?usage: tests/quick_notebooks.sh PYTHON}
mapfile -t LANES < <("$PY" tests/quick_digest.py lanes) || exit 1
nbval() { RR_QUICK=1 RR_REQUIRE_CACHED=1 "$PY" -m pytest --nbval-lax --nbval-current-env -q -p no:cacheprovider "$@"; }
if [ -n "${LANES[0]}" ]; then
    echo "nbval, first: ${LANES[0]}"
    nbval ${LANES[0]} || exit 1
fi
pids=() logs=()
for lane in "${LANES[@]:1}"; do
    [ -n "$lane" ] || continue
    log=$(mktemp)
    nbval $lane > "$log" 2>&1 &
    pids+=("$!") logs+=("$log")
done
rc=0
for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || rc=1
    echo "nbval, lane $((i + 1)): ${LANES[$((i + 1))]}"
    cat "${logs[$i]}"
    rm -f "${logs[$i]}"
done
exit $rc
