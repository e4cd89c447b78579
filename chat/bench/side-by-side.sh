#!/usr/bin/env bash
# Two servers at once, each with a load generator of its own, each in the fanout room at half its
# rate (1 room × 1000, 50 messages/s: 50 000 deliveries/s each, 100 000 together as in `fanout`):
# both meet the machine as it is at the same moment. Runs one after the other (compare.sh) share
# this machine's drift only roughly, and cannot resolve a gap of a few per cent; side by side, two
# copies of the same server come out within 1 % of each other (chat/README.md, "Side by side").
#   chat/bench/side-by-side.sh [A] [B]    (default: ceiling chat; each `ceiling`, `chat` or the path
#                                         of another chat build; prints B against A)
#   ROUNDS=5 SECONDS_PER_RUN=20           (the defaults)
#   A_PREFIX="chrt -b 0"                  (run A under a command; B_PREFIX likewise)
#   A_TEXT_BYTES=128                      (the text of A's messages, 64 bytes by default; B_TEXT_BYTES)
#   SCENARIO=rooms                        (another scenario of run.sh for both, fanout-half by default)
# Raw outputs go to target/bench-side-by-side (or $OUT), joined as `tail -n +1` joins files.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
a=${1:-ceiling} b=${2:-chat}
rounds=${ROUNDS:-5}
seconds=${SECONDS_PER_RUN:-20}
out=${OUT:-$root/target/bench-side-by-side}
mkdir -p "$out"
rm -f "$out"/*.txt
(cd "$root" && cargo build --release -q -p chat -p chat-loadgen --bins --example ceiling)
# Two chats would both take the default metrics port.
export CHAT_METRICS_ADDR=127.0.0.1:0

# run <server> <port> <prefix> <text bytes> <output>
run() {
  local server=$1 port=$2 prefix=$3 text_bytes=$4 output=$5
  local env=(PORT="$port" LOADGEN_ARGS="--threads 1 --text-bytes $text_bytes")
  case "$server" in
    ceiling) env+=(SERVER=ceiling CEILING_PREFIX="$prefix") ;;
    chat) env+=(SERVER=chat CHAT_PREFIX="$prefix") ;;
    *) env+=(SERVER=chat CHAT_PREFIX="$prefix" CHAT_BIN="$server") ;;
  esac
  env "${env[@]}" "$root/chat/bench/run.sh" "${SCENARIO:-fanout-half}" "$seconds" >"$output" 2>&1
}

for round in $(seq "$rounds"); do
  echo "round $round: $a and $b side by side" >&2
  run "$a" 9311 "${A_PREFIX:-}" "${A_TEXT_BYTES:-64}" "$out/a-$round.txt" &
  first=$!
  run "$b" 9312 "${B_PREFIX:-}" "${B_TEXT_BYTES:-64}" "$out/b-$round.txt" &
  wait "$first" $!
  sleep 2
done

PYTHONPATH="$root/chat/bench" python3 - "$out" "$a${A_PREFIX:+ ($A_PREFIX)}" "$b${B_PREFIX:+ ($B_PREFIX)}" <<'PY'
import statistics, sys
from pathlib import Path

from compare_table import figures

out, a, b = Path(sys.argv[1]), sys.argv[2], sys.argv[3]

def cpu_and_p99(path):
    found = figures(path.read_text())
    return found["cpu_us"], found["p99_ms"]

print(f"A: {a}\nB: {b}\n")
print("| round | A CPU per delivery | B CPU per delivery | B/A | A p99 | B p99 | B/A |")
print("| --- | --- | --- | --- | --- | --- | --- |")
cpu_ratios, p99_ratios = [], []
for path in sorted(out.glob("a-*.txt"), key=lambda p: int(p.stem[2:])):
    round_number = path.stem[2:]
    (a_cpu, a_p99), (b_cpu, b_p99) = cpu_and_p99(path), cpu_and_p99(out / f"b-{round_number}.txt")
    cpu_ratios.append(b_cpu / a_cpu)
    p99_ratios.append(b_p99 / a_p99)
    print(f"| {round_number} | {a_cpu:.2f} µs | {b_cpu:.2f} µs | {cpu_ratios[-1]:.3f}× "
          f"| {a_p99:.2f} ms | {b_p99:.2f} ms | {p99_ratios[-1]:.2f}× |")
print(f"\nB against A, median of the rounds: CPU per delivery {statistics.median(cpu_ratios):.3f}× "
      f"({min(cpu_ratios):.3f}–{max(cpu_ratios):.3f}), p99 {statistics.median(p99_ratios):.2f}× "
      f"({min(p99_ratios):.2f}–{max(p99_ratios):.2f})")
PY
