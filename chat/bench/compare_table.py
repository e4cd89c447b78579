"""Reads the raw outputs of chat/bench/compare.sh and prints the medians of the chat and its
ceiling, with their ratios, as a markdown table.

The ratio is the median of the rounds' own ratios, each chat run against the ceiling run just
before it, and the last column shows the lowest and highest of them: this machine's speed drifts
over minutes, by more than the gaps measured, and a pair run back to back shares the drift."""

import argparse
import re
import statistics
from pathlib import Path


def figures(text: str) -> dict[str, float]:
    """The figures one run reports, in the units of the table."""
    found: dict[str, float] = {}
    if m := re.search(r"latency from schedule: p50 [\d.]+ ms, p99 ([\d.]+) ms", text):
        found["p99_ms"] = float(m.group(1))
    # Runs before the load generator reported it have no such line.
    if m := re.search(r"latency from send: p50 [\d.]+ ms, p99 ([\d.]+) ms", text):
        found["p99_from_send_ms"] = float(m.group(1))
    delivered = re.search(r"delivered \d+ \((\d+)/s\)", text)
    cpu = re.search(r"server CPU while measuring: (\d+) %", text)
    if delivered and cpu and int(delivered.group(1)) > 0:
        per_delivery = 1e6 / 100 / int(delivered.group(1))
        found["cpu_us"] = int(cpu.group(1)) * per_delivery
        split = re.search(
            r"server CPU while measuring: \d+ % of one core \(user ([\d.]+) %, system ([\d.]+) %\)",
            text,
        )
        if split:
            found["user_us"] = float(split.group(1)) * per_delivery
            found["system_us"] = float(split.group(2)) * per_delivery
            found["cpu_us"] = found["user_us"] + found["system_us"]
    clients = re.search(r"connected (\d+) of", text)
    grew = re.search(r"server RSS grew (\d+) KiB over the run", text)
    if clients and grew:
        found["grew_kib"] = int(grew.group(1)) / int(clients.group(1))
    if m := re.search(r"server RSS per connection: ([\d.]+) KiB", text):
        found["idle_kib"] = float(m.group(1))
    lost = re.search(r"lost (\d+)", text)
    found["lost"] = float(lost.group(1)) if lost else 0.0
    return found


ROWS = [
    ("fanout 1 room × 1000, 100k deliveries/s: p99", "fanout", "p99_ms", "ms"),
    ("fanout: CPU per delivery", "fanout", "cpu_us", "µs"),
    ("fanout: of which in user space", "fanout", "user_us", "µs"),
    ("fanout: of which in the kernel", "fanout", "system_us", "µs"),
    ("fanout: memory per connection under load", "fanout", "grew_kib", "KiB"),
    ("heavy 1 room × 1000, 500k deliveries/s: p99", "heavy", "p99_ms", "ms"),
    ("rooms 200 × 5, 5k deliveries/s: p99", "rooms", "p99_ms", "ms"),
    ("rooms: p99 from send, without the sender's timer", "rooms", "p99_from_send_ms", "ms"),
    ("rooms: CPU per delivery", "rooms", "cpu_us", "µs"),
    ("idle 5000 connections: memory per connection", "idle", "idle_kib", "KiB"),
]


Run = tuple[str, str, str]
"""A run's scenario, server and round, from its name (`fanout-chat-1`)."""


def runs(source: Path) -> dict[Run, dict[str, float]]:
    """Each run's figures, read once: from the files of a folder as compare.sh leaves them, or from
    one file that holds them all as `tail -n +1 *.txt` joins them, which is how bench/results keeps
    them."""
    if source.is_dir():
        outputs = {path.stem: path.read_text() for path in source.glob("*.txt")}
    else:
        parts = re.split(r"^==> (?:.*/)?(.+?)\.txt <==$", source.read_text(), flags=re.M)
        outputs = dict(zip(parts[1::2], parts[2::2]))
    return {tuple(name.rsplit("-", 2)): figures(text) for name, text in outputs.items()}


def by_round(
    runs: dict[Run, dict[str, float]], scenario: str, server: str, key: str
) -> dict[str, float]:
    """The figure of every round that reports it, by the round's number. Medians and ratios are
    taken over the rounds both servers report, so the columns describe the same runs."""
    return {
        round_number: found[key]
        for (run_scenario, run_server, round_number), found in runs.items()
        if (run_scenario, run_server) == (scenario, server) and key in found
    }


def pooled(sources: list[Path]) -> dict[Run, dict[str, float]]:
    """The runs of several compare.sh runs as one: a round is named by its source too, so each
    chat run still pairs with the ceiling run of its own source and round."""
    if len(sources) == 1:
        return runs(sources[0])
    return {
        (scenario, server, f"{index}:{round_number}"): found
        for index, source in enumerate(sources)
        for (scenario, server, round_number), found in runs(source).items()
    }


def main() -> None:
    """`compare_table.py SOURCE... [--server SERVER]`: each SOURCE a folder of compare.sh or a file
    of its joined outputs; several are pooled, pair by pair (the ratio is then the median of all
    their pairs). SERVER names the runs set against the ceiling's, `chat` unless a variant's runs
    are named otherwise (e.g. `fanout-chat_sched_batch-1`)."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("sources", nargs="+", type=Path)
    parser.add_argument("--server", default="chat")
    options = parser.parse_args()
    measured = pooled(options.sources)
    server = options.server
    print(f"| scenario | ceiling | {server} | ratio | pairs |")
    print("| --- | --- | --- | --- | --- |")
    for label, scenario, key, unit in ROWS:
        ceiling = by_round(measured, scenario, "ceiling", key)
        chat = by_round(measured, scenario, server, key)
        rounds = sorted(r for r in chat.keys() & ceiling.keys() if ceiling[r] > 0)
        if not rounds:
            print(f"| {label} | — | — | — | — |")
            continue
        pairs = sorted(chat[r] / ceiling[r] for r in rounds)
        under = sum(ratio < 1 for ratio in pairs)
        spread = f"{pairs[0]:.2f}–{pairs[-1]:.2f}×"
        if len(options.sources) > 1:
            spread += f", {under} of {len(pairs)} under 1.0"
        print(
            f"| {label} | {statistics.median(ceiling[r] for r in rounds):.2f} {unit}"
            f" | {statistics.median(chat[r] for r in rounds):.2f} {unit}"
            f" | {statistics.median(pairs):.2f}× | {spread} |"
        )
    for name in ("ceiling", server):
        lost = sum(
            found.get("lost", 0)
            for (_, run_server, _), found in measured.items()
            if run_server == name
        )
        print(f"\ndeliveries lost by the {name} over every run: {lost:.0f}")


if __name__ == "__main__":
    main()
