"""One suite that every backend passes: the in-process fake, llama.cpp one prompt at a time, llama.cpp
batched, the server backend on a stub OpenAI server, and the server backend on llama-cpp-python's own
server (``hivemind.live.backends.local_server``) with the default model.

Each case is what the loop (``hivemind.live.conversation``) relies on through ``backends.base``:
``generate_each`` writes every request it is not told to skip, once, under its index; a skipped
member's batch is still decoded whole, so the other members' texts do not change; greedy requests
repeat; probes read probabilities of the answers after each prompt; ``close`` releases the backend.
"""

from __future__ import annotations

import numpy as np
import pytest

from hivemind.live.backends import FakeBackend, Request
from hivemind.live.backends.base import Backend, ProbeRequest
from hivemind.live.config import Sampling
from hivemind.live.probe import FORMS
from tests.live.servers import LlamaServer, Stub, scenario_text

TEXTS = ["Anna: I think we should cross the hills.", "Ben: The river is the way.", "Cleo: Let us wait.", "Dan: North."]
PREFIX = "A discussion group. The leader says: the river is the only road home.\n"
GREEDY = Sampling(decoding="greedy", max_tokens=8, stop=("\n",))
FORM = FORMS["own_yes_no"]
QUESTION = "\n\n" + FORM.render("The river is the only road home.") + "\nAnswer:"


def server_spec(url: str, model: str):
    from hivemind.live.config import parse_scenario

    return parse_scenario(scenario_text([url], model=model, agents=2, extra='chat = "none"')).live


def gemma():
    from hivemind.live.model import default_model

    return default_model(lambda s: None)


class Case:
    """A backend under test: how to make it, the model its requests name, and its batch size."""

    def __init__(self, name: str, batch: int):
        self.name, self.batch = name, batch
        self._stop = None

    def make(self) -> Backend:
        if self.name == "fake":
            return FakeBackend()
        if self.name in ("llama", "batched"):
            from hivemind.live.backends import LlamaBackend

            return LlamaBackend(gemma(), 512, 2, chat="none", batch=self.batch)
        from hivemind.live.backends.server import ServerBackend

        if self.name == "server":
            stub = Stub(logprobs=lambda prompt: {" Yes": -0.5, " No": -1.5, "Maybe": -3.0})
            self._stop, model = stub.close, "stub"
        else:
            server = LlamaServer(gemma(), threads=2).start()
            self._stop, model = server.stop, "gemma3"
        backend = ServerBackend(server_spec(stub.url if self.name == "server" else server.url, model))
        backend.check([model])
        return backend

    @property
    def model(self) -> str:
        return {"server": "stub", "local_server": "gemma3"}.get(self.name, "default")

    def stop(self) -> None:
        if self._stop is not None:
            self._stop()


CASES = [
    pytest.param(Case("fake", 0), id="fake"),
    pytest.param(Case("fake", 3), id="fake-batched"),
    pytest.param(Case("llama", 0), id="llama", marks=pytest.mark.slow),
    pytest.param(Case("batched", 3), id="batched", marks=pytest.mark.slow),
    pytest.param(Case("server", 0), id="server"),
    pytest.param(Case("local_server", 0), id="local_server", marks=pytest.mark.slow),
]


@pytest.fixture(scope="module", params=CASES)
def made(request):
    case = request.param
    backend = case.make()
    yield case, backend
    backend.close()
    case.stop()


def requests_of(backend: Backend, model: str, probe: ProbeRequest | None = None) -> list[Request]:
    prefix = tuple(backend.tokenize(PREFIX, True))
    return [
        Request(model, prefix, tuple(backend.tokenize(t, False)), GREEDY, seed, f"agent {seed}", probe)
        for seed, t in enumerate(TEXTS)
    ]


class TestBackend:
    def test_every_request_is_written_once_under_its_index(self, made):
        case, backend = made
        out = list(backend.generate_each(requests_of(backend, case.model), case.batch))
        assert sorted(k for k, _ in out) == list(range(len(TEXTS)))
        # Batches of case.batch in order, the last one shorter: 3 + 1 for batches of three.
        sizes = [min(case.batch, len(TEXTS) - k // case.batch * case.batch) if case.batch else 0 for k in range(len(TEXTS))]
        for k, gen in out:
            assert isinstance(gen.text, str) and gen.text == gen.text.strip()
            assert gen.prompt_tokens > 0 and gen.completion_tokens >= 0
            assert gen.finish_reason in ("stop", "length")
            assert gen.batch_size == sizes[k]
            assert gen.probe is None

    def test_skipped_requests_are_not_written_and_the_others_do_not_change(self, made):
        case, backend = made
        reqs = requests_of(backend, case.model)
        whole = dict(backend.generate_each(reqs, case.batch))
        part = dict(backend.generate_each(reqs, case.batch, skip={0, 2}))
        assert sorted(part) == [1, 3]
        # Greedy, and a batch holding a skipped request decoded whole: the same texts as before.
        assert {k: g.text for k, g in part.items()} == {k: whole[k].text for k in part}
        assert list(backend.generate_each(reqs, case.batch, skip=range(len(reqs)))) == []

    def test_a_probe_reads_the_answers_after_each_prompt(self, made):
        case, backend = made
        marks = backend.answer_spellings(FORM, case.model)
        assert len(marks.answer) >= len(FORM.answers) and set(marks.answer) == set(range(len(FORM.answers)))
        prefix = backend.tokenize(PREFIX, True)
        suffixes = [backend.tokenize(t + QUESTION, False) for t in TEXTS]
        p = np.asarray(backend.probe(prefix, suffixes, marks, case.model))
        assert p.shape == (len(TEXTS), len(marks.answer))
        assert np.all(p >= 0) and np.all(p.sum(axis=1) <= 1 + 1e-9)

    def test_a_probed_request_carries_its_reading(self, made):
        case, backend = made
        marks = backend.answer_spellings(FORM, case.model)
        probe = ProbeRequest(tuple(backend.tokenize(QUESTION, False)), marks)
        out = dict(backend.generate_each(requests_of(backend, case.model, probe), case.batch))
        for gen in out.values():
            assert gen.probe is not None and len(gen.probe) == len(marks.answer)
            assert all(0 <= x <= 1 for x in gen.probe) and sum(gen.probe) <= 1 + 1e-9

    def test_the_chat_template_parts_are_text(self, made):
        _, backend = made
        head, tail = backend.chat_wrap()
        assert isinstance(head, str) and isinstance(tail, str)
        turns = backend.chat_turns()
        assert turns is None or all(isinstance(t, str) for t in turns)
        assert isinstance(backend.runtime(), dict) and backend.runtime()

    def test_an_empty_prompt_is_refused(self, made):
        case, backend = made
        if case.name in ("server", "local_server"):
            pytest.skip("a server takes any text, the empty one included; the prompt builder never sends it")
        bad = Request(case.model, tuple(backend.tokenize(PREFIX, True)), (), GREEDY, 0)
        with pytest.raises(ValueError, match="empty"):
            list(backend.generate_each([bad], case.batch))
