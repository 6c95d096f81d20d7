"""One self-contained HTML page: inline style and script, figures as data URIs, no network.

The page opens from disk in any browser; its data (a live run's messages and measures) sits in
a ``<script type="application/json">`` block that the page's own script reads.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

STYLE = (Path(__file__).parent / "assets" / "style.css").read_text(encoding="utf-8")


def esc(x) -> str:
    return html.escape(str(x), quote=True)


def figure(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<figure><img alt="{esc(alt)}" src="data:image/png;base64,{data}"></figure>'


def table(header: list[str], rows: list[list], id_: str | None = None) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(f'<td class="num">{esc(c)}</td>' if isinstance(c, (int, float)) else f"<td>{esc(c)}</td>" for c in r)
        + "</tr>"
        for r in rows
    )
    ident = f' id="{esc(id_)}"' if id_ else ""
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def section(title: str, body: str, id_: str) -> str:
    return f'<section id="{esc(id_)}"><h2>{esc(title)}</h2>{body}</section>'


def data_block(data) -> str:
    # "</" inside a script element would end it early: JSON allows "<\/" for "</".
    text = json.dumps(data, allow_nan=False, separators=(",", ":")).replace("</", "<\\/")
    return f'<script type="application/json" id="report-data">{text}</script>'


def page(title: str, subtitle: str, sections: list[str], data=None, script: str = "") -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>",
        f"<header><h1>{esc(title)}</h1><p>{esc(subtitle)}</p></header><main>",
        *sections,
        "</main>",
        data_block(data) if data is not None else "",
        f"<script>{script}</script>" if script else "",
        "</body></html>",
    ]
    return "\n".join(parts)


def verdict_section(lines: list[str]) -> str:
    return section("Verdict", f"<pre>{esc(chr(10).join(lines))}</pre>", "verdict")


def text_section(text: str) -> str:
    return section("Full tables", f"<details><summary>as in report.txt</summary><pre>{esc(text)}</pre></details>", "tables")


def scenario_section(text: str | None) -> str:
    if not text:
        return ""
    return section("Scenario", f"<pre>{esc(text)}</pre>", "scenario")


PALETTE = ("#1d3557", "#e76f51", "#2a9d8f", "#e9c46a", "#8d99ae", "#6a4c93")


def line_chart(x, series: dict, xlabel: str, ylabel: str, log_y: bool = False, width: int = 640, height: int = 300) -> str:
    """Lines as inline SVG, drawn without matplotlib so that every run can afford its report."""
    import math

    pad_l, pad_b, pad_t, pad_r = 64, 40, 12, 150
    xs = [float(v) for v in x]
    ys = {k: [float(v) for v in vals] for k, vals in series.items()}

    def ty(v):
        return math.log10(v) if log_y else v

    finite = [ty(v) for vals in ys.values() for v in vals if math.isfinite(v) and (v > 0 or not log_y)]
    if not xs or not finite:
        return ""
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(finite), max(finite)
    if y1 <= y0:
        y0, y1 = y0 - 1, y1 + 1
    if x1 <= x0:
        x1 = x0 + 1
    w, h = width - pad_l - pad_r, height - pad_t - pad_b
    px = lambda v: pad_l + (v - x0) / (x1 - x0) * w  # noqa: E731
    py = lambda v: pad_t + (1 - (ty(v) - y0) / (y1 - y0)) * h  # noqa: E731
    out = [f'<svg class="chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">']
    out.append(f'<rect x="{pad_l}" y="{pad_t}" width="{w}" height="{h}" fill="none" stroke="#ccc"/>')
    for k in range(5):
        v = y0 + (y1 - y0) * k / 4
        yy = pad_t + (1 - k / 4) * h
        label = f"{10**v:.2g}" if log_y else f"{v:.3g}"
        out.append(f'<text x="{pad_l - 6}" y="{yy + 4:.1f}" font-size="11" text-anchor="end">{label}</text>')
        out.append(f'<line x1="{pad_l}" x2="{pad_l + w}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#eee"/>')
    for k in range(5):
        v = x0 + (x1 - x0) * k / 4
        out.append(f'<text x="{px(v):.1f}" y="{pad_t + h + 16}" font-size="11" text-anchor="middle">{v:.4g}</text>')
    out.append(f'<text x="{pad_l + w / 2}" y="{height - 4}" font-size="12" text-anchor="middle">{esc(xlabel)}</text>')
    out.append(
        f'<text x="14" y="{pad_t + h / 2}" font-size="12" text-anchor="middle" '
        f'transform="rotate(-90 14 {pad_t + h / 2})">{esc(ylabel)}</text>'
    )
    for i, (name, vals) in enumerate(ys.items()):
        pts = " ".join(
            f"{px(a):.1f},{py(b):.1f}" for a, b in zip(xs, vals, strict=False) if math.isfinite(b) and (b > 0 or not log_y)
        )
        colour = PALETTE[i % len(PALETTE)]
        dash = ' stroke-dasharray="5 4"' if name.startswith("theory") else ""
        out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.8"{dash} points="{pts}"/>')
        out.append(f'<text x="{pad_l + w + 8}" y="{pad_t + 14 + 16 * i}" font-size="12" fill="{colour}">{esc(name)}</text>')
    out.append("</svg>")
    return "".join(out)
