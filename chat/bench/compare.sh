#!/usr/bin/env bash
# The chat against its ceiling (chat/examples/ceiling.rs: a bare broadcast loop), scenario by
# scenario, alternately, ROUNDS times each (default 5), in one run; prints the medians and the
# ratios of the pairs (each chat run against the ceiling run just before it) as the table in
# chat/README.md ("Against the ceiling") and keeps every raw output.
#   chat/bench/compare.sh [results folder]        (default target/bench-compare)
#   SCENARIOS="fanout" chat/bench/compare.sh      (some of fanout heavy rooms idle, to iterate)
# Builds the release binaries first. Run it on a quiet machine: both servers share the two cores
# with the load generator, and anything else running shows up in the latencies.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="${1:-$root/target/bench-compare}"
rounds=${ROUNDS:-5}
seconds=${SECONDS_PER_RUN:-20}
mkdir -p "$out"
(cd "$root" && cargo build --release -q -p chat -p chat-loadgen --bins --example ceiling)

for round in $(seq "$rounds"); do
  for scenario in ${SCENARIOS:-fanout heavy rooms idle}; do
    for server in ceiling chat; do
      echo "round $round: $scenario on $server" >&2
      SERVER=$server "$root/chat/bench/run.sh" "$scenario" "$seconds" >"$out/$scenario-$server-$round.txt" 2>&1
      sleep 2
    done
  done
done
python3 "$root/chat/bench/compare_table.py" "$out"
