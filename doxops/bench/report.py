"""The rows of ``./dox bench``: figure, ratio, target and an honest "met"; the table, the JSON and the plot."""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path


def median(samples: list[float]) -> float:
    return statistics.median(samples)


@dataclass
class Row:
    id: str
    label: str
    figure: str  # what is printed: "1.28 s / 0.57 s = 2.25"
    value: float  # the figure compared with the target (a ratio for ratio rows)
    target: str  # as printed: "<= 1.0 (stretch 0.7)"
    limit: float  # met when value <= limit
    ratio: float | None = None  # pipeline / bare tools (or rules / parsing) for ratio rows
    met: str = ""
    samples: dict = field(default_factory=dict)
    note: str = ""
    detail: str = ""  # exactly what is measured, beyond the short label

    def __post_init__(self) -> None:
        if not self.met:
            self.met = "yes" if self.value <= self.limit else "no"


def ratio_row(id_: str, label: str, pipeline: list[float], bare: list[float], limit: float, target: str,
              **extra) -> Row:
    p, b = median(pipeline), median(bare)
    ratio = p / b
    return Row(id_, label, f"{p:.2f} s / {b:.2f} s = {ratio:.2f}", round(ratio, 3), target, limit,
               ratio=round(ratio, 3), samples={"pipeline_s": _r(pipeline), "bare_s": _r(bare)}, **extra)


def seconds_row(id_: str, label: str, samples: list[float], limit: float, **extra) -> Row:
    value = median(samples)
    return Row(id_, label, f"{value:.2f} s", round(value, 3), f"< {limit:g} s", limit,
               samples={"seconds": _r(samples)}, **extra)


def _r(samples: list[float]) -> list[float]:
    return [round(s, 3) for s in samples]


def table(results: dict) -> str:
    rows = results["rows"]
    width = max(len(r["label"]) for r in rows)
    fig = max(len(r["figure"]) for r in rows)
    tgt = max(len(r["target"]) for r in rows)
    lines = [f"{'measure':<{width}}  {'figure':<{fig}}  {'target':<{tgt}}  met", "-" * (width + fig + tgt + 11)]
    for r in rows:
        lines.append(f"{r['label']:<{width}}  {r['figure']:<{fig}}  {r['target']:<{tgt}}  {r['met']}")
        if r.get("note"):
            lines.append(f"    {r['note']}")
    lines.append("")
    lines.append("environments  median s  per env s  peak MB (sum of Python processes)")
    for s in results.get("scaling", []):
        lines.append(f"{s['environments']:>12}  {s['seconds']:>8.2f}  {s['per_env_s']:>9.3f}  "
                     f"{s['peak_total_mb']:>7.0f}")
    lines.append(f"\n{results['cores']} cores, load average {results['load_start']} at the start and "
                 f"{results['load_end']} at the end; medians of {results['repeat']} runs, pipeline and bare tools "
                 f"alternating; `{results['command']}` on {results['date']}")
    if results.get("scanner"):
        lines.append(f"credential scanner: {results['scanner']}")
    lines.append("JSON, README table and plot: " + ", ".join(results["files"].values()))
    return "\n".join(lines)


def markdown(results: dict) -> str:
    """The README's table, from the results as they are."""
    lines = ["| measure | target | measured | met |", "|---|---|---|---|"]
    for r in results["rows"]:
        lines.append(f"| {r['label']} | {r['target']} | {r['figure']} | {r['met']} |")
    lines += ["", "| environments | median s | per environment s | peak MB, pipeline's processes |",
              "|---|---|---|---|"]
    for s in results.get("scaling", []):
        lines.append(f"| {s['environments']} | {s['seconds']:.2f} | {s['per_env_s']:.3f} | {s['peak_total_mb']:.0f} |")
    if results.get("scanner"):
        lines += ["", f"Credential scanner: {results['scanner']}."]
    return "\n".join(lines) + "\n"


def write(results: dict, out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    results["files"] = {"json": str(out / "results.json"), "svg": str(out / "scaling.svg"),
                        "markdown": str(out / "results.md")}
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "results.md").write_text(markdown(results))
    points = [(s["environments"], s["seconds"]) for s in results.get("scaling", [])]
    if points:
        svg_plot(points, out / "scaling.svg")
    return results


def as_dicts(rows: list[Row]) -> list[dict]:
    return [asdict(r) for r in rows]


def svg_plot(points: list[tuple[int, float]], path: Path) -> None:
    """A small line plot (no plotting dependency): seconds against the number of environments."""
    width, height, pad = 480, 300, 50
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    max_x, max_y = max(xs), max(ys) * 1.1 or 1

    def sx(x):
        return pad + (width - 2 * pad) * x / max_x

    def sy(y):
        return height - pad - (height - 2 * pad) * y / max_y

    line = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in points)
    labels = "".join(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3"/><text x="{sx(x):.1f}" y="{sy(y) - 8:.1f}" '
                     f'font-size="10" text-anchor="middle">{y:.1f}s</text>' for x, y in points)
    ticks = "".join(f'<text x="{sx(x):.1f}" y="{height - pad + 15}" font-size="10" text-anchor="middle">{x}</text>'
                    for x in xs)
    path.write_text(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif">'
        f'<rect width="100%" height="100%" fill="white"/>'
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="black"/>'
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="black"/>'
        f'<polyline points="{line}" fill="none" stroke="steelblue" stroke-width="2"/>{labels}{ticks}'
        f'<text x="{width / 2}" y="{height - 10}" font-size="12" text-anchor="middle">environments</text>'
        f'<text x="15" y="{height / 2}" font-size="12" transform="rotate(-90 15 {height / 2})" '
        f'text-anchor="middle">cold render+validate --no-server (s)</text></svg>\n')
