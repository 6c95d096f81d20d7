"""Agents on OpenAI-compatible servers: llama.cpp's llama-server, llama-cpp-python's server, vLLM,
Ollama, LM Studio, a hosted API.

``ServerBackend`` speaks the OpenAI HTTP API through httpx. ``live.model`` names the served
models (as ``GET /v1/models`` lists them); every endpoint is asked which it serves before the
first round, and a request goes to an endpoint that serves its model, spread over them in
turn. A round's requests are in flight together (``live.concurrency`` per endpoint), so that a
server with continuous batching batches them, and ``generate_each`` yields each text as it
arrives, for the transcript. Every request carries its seed and sampling settings.

Prompts are text on this path: the server applies the model's chat template
(``/v1/chat/completions``; ``live.chat = "none"``: ``/v1/completions`` with the raw text).
The backend's "tokens" are the prompt's characters, so the prompt budget counts characters,
``CHARS_PER_TOKEN`` per token of ``live.n_ctx`` (English averages about four per token in
the models' tokenizers), and the token counts in the transcript are the server's own.

A request that fails (no connection, a timeout, a 5xx or 429, a body that is not the JSON
the API promises) is tried again ``live.retries`` times with exponential back-off, on the
next endpoint that serves its model; then ``ServerError`` says which endpoint and round in
one line. Messages that arrived before stay in the transcript, and ``--resume`` asks only
for the rest.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import os
import threading
import time
from collections.abc import Collection, Iterable, Iterator, Sequence

import numpy as np

from hivemind.live.backends.base import Generation, Request
from hivemind.live.config import LiveSpec
from hivemind.live.model import ModelError
from hivemind.live.probe import Form, Spellings, by_text

# Top next tokens a probe asks the server for: answers outside them count as probability 0.
TOP_LOGPROBS = 20

CHARS_PER_TOKEN = 3
BACKOFF_S = 0.5  # the first retry's wait; each further one doubles it
# Status codes worth another try: the server is busy, restarting or overloaded.
TRANSIENT = {408, 409, 429, 500, 502, 503, 504}


class ServerError(RuntimeError):
    """A server failed for good mid-run: ``str(e)`` is one line naming the endpoint and the round."""


def _short(e: Exception) -> str:
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    return text[:160]


class ServerBackend:
    """Every model of ``spec`` on the servers of ``live.endpoints``; see the module.

    Parameters
    ----------
    spec : the ``[live]`` section (backend ``"openai"``).
    client : an ``httpx.Client`` to use (tests); by default one with ``live.timeout``.
    """

    name = "openai"
    model_sha256 = None

    def __init__(self, spec: LiveSpec, client=None):
        try:
            import httpx
        except ImportError:
            raise ModelError("live.backend: the openai backend needs httpx: pip install 'hivemind[live]'") from None
        self._httpx = httpx
        self.spec = spec
        self.endpoints = list(spec.endpoints)
        self.n_ctx = spec.n_ctx * CHARS_PER_TOKEN
        headers = {}
        if spec.api_key_env:
            key = os.environ.get(spec.api_key_env)
            if not key:
                raise ModelError(f"live.api_key_env: the environment variable {spec.api_key_env} is not set")
            headers["Authorization"] = f"Bearer {key}"
        limits = httpx.Limits(max_connections=spec.concurrency * len(self.endpoints) + 4)
        self.client = client or httpx.Client(timeout=spec.timeout, headers=headers, limits=limits)
        self.served: dict[str, list[str]] = {}  # endpoint -> model ids it lists
        self.routes: dict[str, list[str]] = {}  # model -> endpoints that serve it
        self._turn = itertools.count()
        self._slots = {e: threading.Semaphore(spec.concurrency) for e in self.endpoints}
        # Set when a round gives up: requests still in flight then make no further tries, so that
        # the process does not wait out their retries before it exits.
        self._stop = threading.Event()
        self.requests = 0

    # -- before the first round

    def check(self, models: Iterable[str]) -> None:
        """Ask every endpoint what it serves; a wrong URL or an unserved model is a ``ModelError``."""
        for k, endpoint in enumerate(self.endpoints):
            key = f"live.endpoints[{k}]"
            try:
                r = self.client.get(f"{endpoint}/models", timeout=min(self.spec.timeout, 30.0))
            except self._httpx.HTTPError as e:
                raise ModelError(f"{key}: {endpoint} cannot be reached ({_short(e)})") from None
            if r.status_code in (401, 403):
                raise ModelError(f"{key}: {endpoint} refuses the request (HTTP {r.status_code}); set live.api_key_env")
            if r.status_code != 200:
                raise ModelError(f"{key}: {endpoint}/models answered HTTP {r.status_code}; is this an OpenAI-compatible /v1 URL?")
            try:
                ids = [str(m["id"]) for m in r.json()["data"]]
            except (ValueError, KeyError, TypeError):
                raise ModelError(
                    f"{key}: {endpoint}/models did not answer with a model list; is this an OpenAI-compatible /v1 URL?"
                ) from None
            self.served[endpoint] = ids
        for model in dict.fromkeys(models):
            self.routes[model] = [e for e in self.endpoints if model in self.served[e]]
            if not self.routes[model]:
                listed = sorted({m for ids in self.served.values() for m in ids})
                raise ModelError(f"live.model: no endpoint serves {model!r} (they serve: {', '.join(listed)[:200]})")

    # -- the Backend protocol

    def tokenize(self, text: str, bos: bool) -> list[int]:
        return [ord(c) for c in text]

    def chat_wrap(self) -> tuple[str, str]:
        return "", ""  # the server applies the model's chat template

    def chat_turns(self) -> tuple[str, str] | None:
        # Probes go through /v1/completions, as plain text: no chat template around the question.
        return None

    def answer_spellings(self, form: Form, model: str = "") -> Spellings:
        return by_text(form)

    def check_probe(self, model: str) -> None:
        """One probe request before the first round: an endpoint that gives no log-probabilities is refused."""
        for endpoint in self.routes.get(model) or self.endpoints:
            self._probe_one(endpoint, model, "Answer Yes or No: is water wet?\nAnswer:", ("Yes", "No"))

    def probe(self, prefix: Sequence[int], suffixes: Sequence[Sequence[int]], marks: Spellings, model: str = "") -> np.ndarray:
        """(prompts, answers): the probability of each answer as the next token, from the server's top log-probabilities."""
        model = model or next(iter(self.routes))
        prompts = [prompt_text(prefix, s) for s in suffixes]
        routes = self.routes.get(model) or self.endpoints
        workers = min(self.spec.concurrency * len(self.endpoints), max(len(prompts), 1))
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
            jobs = [pool.submit(self._probe_one, routes[next(self._turn) % len(routes)], model, p, marks.texts) for p in prompts]
            return np.asarray([j.result() for j in jobs]).reshape(len(prompts), len(marks.texts))

    def _probe_one(self, endpoint: str, model: str, prompt: str, answers: Sequence[str]) -> list[float]:
        body = {"model": model, "prompt": prompt, "max_tokens": 1, "temperature": 0.0, "logprobs": TOP_LOGPROBS}
        out = self._post(endpoint, "completions", body, "a probe")
        try:
            top = out["choices"][0]["logprobs"]["top_logprobs"][0]
            if not isinstance(top, dict) or not top:
                raise TypeError
        except (KeyError, IndexError, TypeError):
            raise ModelError(
                f"live.probe: {endpoint}/completions answered without log-probabilities (logprobs); this server cannot be probed"
            ) from None
        p = dict.fromkeys(answers, 0.0)
        for token, lp in top.items():
            if token.strip() in p:
                p[token.strip()] += float(np.exp(lp))
        return [p[a] for a in answers]

    def generate_each(
        self, requests: Sequence[Request], batch: int = 0, skip: Collection[int] = ()
    ) -> Iterator[tuple[int, Generation]]:
        """Send every request not in ``skip`` at once (``live.concurrency`` per endpoint, whatever
        ``batch``: the server batches) and yield ``(index, Generation)`` as each answer arrives.
        Raises ``ServerError`` after the retries."""
        skip = set(skip)
        wanted = [k for k in range(len(requests)) if k not in skip]
        if not wanted:
            return
        workers = self.spec.concurrency * len(self.endpoints)
        self._stop.clear()
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=min(workers, len(wanted)))
        try:
            futures = {pool.submit(self._send, requests[k], next(self._turn)): k for k in wanted}
            for done in concurrent.futures.as_completed(futures):
                yield futures[done], done.result()
        finally:
            # A failure or a kill: do not wait for requests still in flight, nor let them retry.
            self._stop.set()
            pool.shutdown(wait=False, cancel_futures=True)

    def embed(self, text: str) -> np.ndarray:
        model = next(iter(self.routes))
        endpoint = self.routes[model][0]
        body = self._post(endpoint, "embeddings", {"model": model, "input": text}, f"the embedding of {text[:30]!r}")
        try:
            return np.asarray(body["data"][0]["embedding"], np.float64)
        except (KeyError, IndexError, TypeError, ValueError):
            raise ServerError(f"live.embedding_model: {endpoint}/embeddings answered without an embedding") from None

    def runtime(self) -> dict:
        return {"backend": "openai", "endpoints": self.endpoints, "served": self.served, "httpx": self._httpx.__version__}

    def close(self) -> None:
        self.client.close()

    # -- HTTP

    def _body(self, req: Request) -> tuple[str, dict]:
        s = req.sampling
        body = {
            "model": req.model,
            "max_tokens": s.max_tokens,
            "temperature": 0.0 if s.greedy else s.temperature,
            "top_p": 1.0 if s.greedy else s.top_p,
            "seed": int(req.seed),
            "stop": list(s.stop),
        }
        if self.spec.server_extras:
            # As in-process: no repetition penalty, no min-p cut, top-k as configured.
            body |= {"top_k": 0 if s.greedy else s.top_k, "min_p": 0.0, "repeat_penalty": 1.0}
        prompt = prompt_text(req.prefix, req.suffix)
        if self.spec.chat_of(req.model) == "none":
            return "completions", body | {"prompt": prompt}
        return "chat/completions", body | {"messages": [{"role": "user", "content": prompt}]}

    def _send(self, req: Request, turn: int):
        path, body = self._body(req)
        routes = self.routes.get(req.model) or self.endpoints
        t0 = time.perf_counter()
        out, endpoint = self._post_routed(routes, turn, path, body, req.label, self._stop)
        try:
            choice = out["choices"][0]
            text = choice["message"]["content"] if path.startswith("chat") else choice["text"]
            if not isinstance(text, str):
                raise TypeError
            usage = out.get("usage") or {}
        except (KeyError, IndexError, TypeError):
            raise ServerError(f"live.endpoints: {endpoint} answered {req.label} without a text (malformed response)") from None
        self.requests += 1
        asked = None
        if req.probe is not None:
            question = prompt_text((), req.probe.question)
            prompt = prompt_text(req.prefix, req.suffix)
            asked = tuple(self._probe_one(endpoint, req.model, prompt + text + question, req.probe.marks.texts))
        return Generation(
            text=text.strip(),
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            prefix_cached=False,
            finish_reason=str(choice.get("finish_reason")),
            seconds=time.perf_counter() - t0,
            # The prompt's length in this backend's "tokens", its characters; the server counts its own tokens.
            extra={"endpoint": endpoint, "served_model": out.get("model"), "prompt_chars": len(req.prefix) + len(req.suffix)},
            probe=asked,
        )

    def _post_routed(self, routes: list[str], turn: int, path: str, body: dict, label: str, stop=None) -> tuple[dict, str]:
        problem = ""
        for attempt in range(self.spec.retries + 1):
            endpoint = routes[(turn + attempt) % len(routes)]
            if attempt:
                wait = BACKOFF_S * 2 ** (attempt - 1)
                if stop.wait(wait) if stop is not None else time.sleep(wait):
                    raise ServerError(f"live.endpoints: {endpoint}: {label} abandoned (the round stopped)")
            with self._slots.get(endpoint, threading.Semaphore()):
                try:
                    r = self.client.post(f"{endpoint}/{path}", json=body)
                except self._httpx.TimeoutException:
                    problem = f"no answer within live.timeout = {self.spec.timeout:g} s"
                    continue
                except self._httpx.HTTPError as e:
                    problem = _short(e)
                    continue
            if r.status_code in TRANSIENT:
                problem = f"HTTP {r.status_code}"
                continue
            if r.status_code != 200:
                raise ServerError(
                    f"live.endpoints: {endpoint} refused {label} (HTTP {r.status_code}: {_short(Exception(r.text))})"
                )
            try:
                out = r.json()
                if not isinstance(out, dict):
                    raise ValueError
                return out, endpoint
            except ValueError:
                problem = "a response that is not JSON"
                continue
        tries = self.spec.retries + 1
        raise ServerError(f"live.endpoints: {endpoint} failed {label} {tries} time{'s' if tries > 1 else ''} (last: {problem})")

    def _post(self, endpoint: str, path: str, body: dict, label: str) -> dict:
        return self._post_routed([endpoint], 0, path, body, label)[0]


def prompt_text(prefix: Sequence[int], suffix: Sequence[int]) -> str:
    """The prompt's text back from this backend's "tokens" (its characters' code points)."""
    return "".join(map(chr, list(prefix) + list(suffix)))
