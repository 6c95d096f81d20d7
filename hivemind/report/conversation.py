"""A live run's page: the verdict, the figure, and the conversation to browse by round and by
agent, each message beside its measures, with the agents' graph coloured by a measure."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from hivemind.io.documents import LiveSummary
from hivemind.report import page as P
from hivemind.report import verdict as V

# Measures shown beside each message, in this order, where the run has them; the first one
# present colours the graph.
MEASURES = {
    "distance_to_anchor": "distance to anchor (rad)",
    "probe": "probe (-2..2)",
    "jaccard_to_anchor": "Jaccard to anchor",
    "compliant": "compliant",
}
# Beyond this many agents the graph's layout costs more than it shows.
GRAPH_LIMIT = 1500


def _clean(a: np.ndarray) -> list:
    return [[None if not math.isfinite(v) else round(float(v), 4) for v in row] for row in a]


def _layout(n: int, src: np.ndarray, dst: np.ndarray) -> list[list[float]]:
    import networkx as nx

    g = nx.Graph()
    g.add_nodes_from(range(n))
    g.add_edges_from(zip(src.tolist(), dst.tolist(), strict=True))
    pos = nx.spring_layout(g, seed=0, iterations=60 if n < 300 else 25)
    xy = np.array([pos[i] for i in range(n)])
    lo, hi = xy.min(0), xy.max(0)
    xy = (xy - lo) / np.where(hi > lo, hi - lo, 1.0)
    return np.round(xy * 380 + 20, 1).tolist()


def data(out: Path, summary: LiveSummary, messages: list[dict]) -> dict:
    """What the page's script reads: messages and measures by decoding, round and agent, the graph."""
    import xarray as xr

    with xr.open_dataset(out / "live.nc") as ds:
        agents = [str(a) for a in ds.agent.values]
        decodings = [str(d) for d in ds.decoding.values]
        rounds = int(ds.sizes["round"])
        measures = {k: label for k, label in MEASURES.items() if k in ds}
        values = {d: {k: _clean(ds[k].sel(decoding=d).values) for k in measures} for d in decodings}
        src = ds.edge_src.values.astype(int) if "edge_src" in ds else np.zeros(0, int)
        dst = ds.edge_dst.values.astype(int) if "edge_dst" in ds else np.zeros(0, int)
        discussion = [str(c) for c in ds.conversation.values] if "conversation" in ds.coords else None
    index = {a: i for i, a in enumerate(agents)}
    text: dict = {d: [[None] * len(agents) for _ in range(rounds)] for d in decodings}
    for m in messages:
        d, r, a = m.get("decoding"), m.get("round"), str(m.get("agent"))
        if d in text and isinstance(r, int) and 0 <= r < rounds and a in index:
            text[d][r][index[a]] = m.get("text", "")
    hears = [[] for _ in agents]  # who hears each agent: its message goes to them
    for s, t in zip(src.tolist(), dst.tolist(), strict=True):
        hears[s].append(agents[t])
    n = len(agents)
    return {
        "agents": agents,
        "decodings": decodings,
        "rounds": rounds,
        "measures": measures,
        "values": values,
        "text": text,
        "heard_by": hears,
        "discussion": discussion,
        "edges": [[int(s), int(t)] for s, t in zip(src, dst, strict=True)] if n <= GRAPH_LIMIT else [],
        "xy": _layout(n, src, dst) if n <= GRAPH_LIMIT else None,
        "anchor_text": summary.anchor_text,
    }


# The page's script: plain JavaScript, no library, kept beside this module.
SCRIPT = (Path(__file__).parent / "assets" / "conversation.js").read_text(encoding="utf-8")


def build(out: Path, summary: LiveSummary, text: str) -> tuple[list[str], str]:
    from hivemind.live.conversation import TRANSCRIPT, read_transcript

    header, messages = read_transcript(out / TRANSCRIPT)
    d = data(out, summary, messages)
    sd = {}
    if "distance_to_anchor" in d["values"].get(d["decodings"][0], {}):
        for dec in d["decodings"]:
            last = [v for v in d["values"][dec]["distance_to_anchor"][-1] if v is not None]
            sd[dec] = float(np.std(last)) if last else None
    verdict = V.live(summary, sd)
    figure = P.figure((out / "live.png").read_bytes(), "live run") if (out / "live.png").is_file() else ""
    controls = (
        '<div class="controls"><label>decoding <select id="decoding"></select></label>'
        '<button id="prev" type="button">&larr;</button><input id="round" type="range" min="0" step="1">'
        '<button id="next" type="button">&rarr;</button><span id="round-label"></span>'
        '<label>agent <select id="agent"></select></label></div>'
    )
    graph = (
        '<div class="graph"><svg id="graph" width="420" height="420" viewBox="0 0 420 420" role="img" '
        'aria-label="the agents\' graph"></svg><div><p class="legend" id="legend"></p>'
        "<p class=\"legend\">Click an agent to follow it through the rounds; pick 'every agent' to see a round.</p>"
        + (f"<p><b>anchor:</b> {P.esc(d['anchor_text'])}</p>" if d["anchor_text"] else "")
        + "</div></div>"
        if d["xy"]
        else "<p>(graph not drawn: more than 1500 agents)</p>"
    )
    head = "".join(f"<th>{h}</th>" for h in ("round", "agent", "heard by", "message"))
    table = f'<table id="messages"><thead><tr>{head}</tr></thead><tbody></tbody></table>'
    scenario = None
    source = header.get("source")
    if source and Path(source).is_file():  # the file as it is now: the transcript's header holds its fingerprint
        scenario = Path(source).read_text(encoding="utf-8")
    sections = [
        P.verdict_section(verdict),
        P.section("Figure", figure, "figures") if figure else "",
        P.section("Conversation", controls + graph + table, "conversation"),
        P.scenario_section(scenario),
        P.text_section(text),
    ]
    html = P.page(f"hivemind live: {summary.scenario}", str(out), sections, data=d, script=SCRIPT)
    return verdict, html
