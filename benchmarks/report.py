"""Turn benchmarks/results/*.json (written by `semsearch bench`) into BENCHMARKS.md and a recall-against-QPS plot per corpus.

    python benchmarks/report.py            # reads benchmarks/results/, writes BENCHMARKS.md and benchmarks/*.png

It replaces only its own section of BENCHMARKS.md (between <!-- ann:begin --> and <!-- ann:end -->).
The hand-written part (which defaults the numbers chose, and why) lives in
benchmarks/defaults.md and is copied in after the tables.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from hybrid import write_section  # noqa: E402  (the sibling script: one way to write a section of BENCHMARKS.md)

# This script's section of BENCHMARKS.md; the other benchmark scripts write theirs, and the rest stays as it is.
START, END = "<!-- ann:begin -->", "<!-- ann:end -->"
# Corpora in the order they appear, with what to call them.
CORPORA = {
    "abcnews-sample": "The real sample: 21,293 ABC headlines (bundled)",
    "headlines-1m": "1,103,663 synthetic headlines (the size of the full ABC data set)",
}
TARGET_RECALL = 0.95
TARGET_QPS = 2000


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def params_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in params.items()) or "-"


def number(value: Any, digits: int = 0, scale: float = 1.0) -> str:
    if value is None:
        return "-"
    return f"{value * scale:,.{digits}f}"


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| setting | build params | search params | recall@10 | QPS, 1 at a time | QPS by CPU time | QPS, batched | p50 ms | p99 ms "
        "| build s | build CPU s | load | open ms | size MB | peak MB |",
        "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['label']} | {params_text(row['build_params'])} | | failed: {row['error']} |" + " |" * 11)
            continue
        lines.append(
            f"| {row['label']} | {params_text(row['build_params'])} | {params_text(row['search_params'])} | {row['recall']:.3f} "
            f"| {number(row['qps'])} | {number(row.get('cpu_qps'))} | {number(row['batch_qps'])} | {number(row['p50_ms'], 2)} "
            f"| {number(row['p99_ms'], 2)} | {number(row['build_seconds'], 1)} | {number(row.get('build_cpu_seconds'), 1)} "
            f"| {number(row.get('load_average'), 1)} | {number(row['open_seconds'], 0, 1000)} | {number(row['size_bytes'], 0, 1e-6)} "
            f"| {number(row['peak_memory_bytes'], 0, 1e-6)} |"
        )
    return "\n".join(lines)


def plot(stem: str, rows: list[dict[str, Any]], title: str, directory: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(12, 6))
    labels = list(dict.fromkeys(row["label"] for row in rows if row.get("qps")))
    colours = plt.get_cmap("tab20").colors
    for number, label in enumerate(labels):
        points = sorted((row["recall"], row["qps"]) for row in rows if row["label"] == label and row.get("qps"))
        style = {"linewidth": 3, "color": "black", "marker": "s"} if label.startswith("tutorial") else {
            "marker": "os^vD"[number % 5], "color": colours[number % len(colours)]}
        axes.plot([recall for recall, _ in points], [qps for _, qps in points], label=label, **style)
    axes.set_yscale("log")
    axes.set_xlabel("recall@10 against exact search in the full 512 dimensions")
    axes.set_ylabel("queries per second, one at a time, one thread (log scale)")
    axes.axvline(TARGET_RECALL, color="grey", linestyle="--", linewidth=1)
    axes.axhline(TARGET_QPS, color="grey", linestyle="--", linewidth=1)
    axes.set_title(title)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figure.tight_layout()
    path = directory / f"{stem}-recall-qps.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def machine_text(machine: dict[str, Any]) -> str:
    versions = ", ".join(f"{name} {version}" for name, version in machine["versions"].items() if version)
    return (f"{machine['cpu']}, {machine['cores']} cores, {machine['memory_gb']} GB; Python {machine['python']}; {versions}. "
            f"Run {machine['date']} as `{machine['command']}`.")


def main(results_dir: Path = HERE / "results", output: Path = ROOT / "BENCHMARKS.md", images: Path = HERE) -> int:
    found = {path.stem: load(path) for path in sorted(results_dir.glob("*.json"))}
    if not found:
        print(f"no results in {results_dir}: run `make bench` first", file=sys.stderr)
        return 1
    parts = [START, (HERE / "intro.md").read_text(encoding="utf-8").strip()]
    for stem in [*[name for name in CORPORA if name in found], *[name for name in found if name not in CORPORA]]:
        results = found[stem]
        rows = results["rows"]
        title = CORPORA.get(stem, stem)
        image = plot(stem, rows, title, images)
        first = next(row for row in rows if "documents" in row)
        parts.append(
            f"### {title}\n\n{first['documents']:,} documents indexed, {first['queries']:,} held out as queries.\n"
            f"Machine and command: {machine_text(results['machine'])}\n\n"
            f"![recall against QPS, {stem}]({os.path.relpath(image, output.parent)})\n\n{table(rows)}"
        )
    parts += [(HERE / "defaults.md").read_text(encoding="utf-8").strip(), END]
    write_section(output, "\n\n".join(parts), START, END)
    print(f"wrote {output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
