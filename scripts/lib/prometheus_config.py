"""Renders monitoring/prometheus/prometheus.yml (the Compose profile's configuration) for the native
stack: every job keeps its settings, its dns_sd_configs become static targets on 127.0.0.1 (one per
replica's metrics port), the rule files become the repository's own, and the scrape interval may be
shortened (PROMETHEUS_SCRAPE_INTERVAL, for tests that cannot wait).

    prometheus_config.py <output> job=port[,port...] ...
"""

import os
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "monitoring" / "prometheus" / "prometheus.yml"


def render(targets: dict[str, list[int]], interval: str | None) -> dict:
    config = yaml.safe_load(SOURCE.read_text())
    if interval:
        config["global"]["scrape_interval"] = interval
        config["global"]["evaluation_interval"] = interval
        config["global"]["scrape_timeout"] = interval
    config["rule_files"] = [str(SOURCE.parent / Path(path).name) for path in config["rule_files"]]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    unknown = set(targets) - set(jobs)
    if unknown:
        sys.exit(f"no such scrape job in {SOURCE}: {', '.join(sorted(unknown))}")
    for name, job in jobs.items():
        if name not in targets:
            sys.exit(f"no targets given for the scrape job {name}")
        job.pop("dns_sd_configs", None)
        job["static_configs"] = [{"targets": [f"127.0.0.1:{port}" for port in targets[name]]}]
    return config


def main() -> None:
    output, *pairs = sys.argv[1:]
    targets = {}
    for pair in pairs:
        job, _, ports = pair.partition("=")
        targets[job] = [int(port) for port in ports.split(",") if port]
    config = render(targets, os.environ.get("PROMETHEUS_SCRAPE_INTERVAL") or None)
    header = f"# Rendered by scripts/stack from {SOURCE.relative_to(ROOT)} for the native stack.\n"
    Path(output).write_text(header + yaml.safe_dump(config, sort_keys=False))


if __name__ == "__main__":
    main()
