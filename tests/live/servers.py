"""Servers for the server-backend tests: llama-cpp-python's own OpenAI-compatible server on the default
GGUF file (``hivemind.live.backends.local_server``), and a tiny misbehaving one (``Stub``) that records what it
was sent and how many requests it held at once."""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from hivemind.live.backends.local_server import LlamaServer, free_port

__all__ = ["LlamaServer", "Stub", "embedding", "free_port", "scenario_text"]

INITIAL = ["We cross the mountains.", "The forest path is safer.", "Wait for the storm.", "Follow the railway."]


def scenario_text(endpoints, model="stub", agents=4, rounds=2, extra=""):
    texts = (INITIAL * 16)[:agents]
    return f"""
name = "server_test"
[graph]
kind = "wheel_graph"
n = {agents + 1}
[anchor]
node = 0
[live]
backend = "openai"
endpoints = {json.dumps(list(endpoints))}
model = "{model}"
rounds = {rounds}
max_tokens = 12
decoding = "greedy"
n_ctx = 512
anchor_text = "The river is the only road home. Follow the river."
rule = [{{ kind = "phrase", text = "the river" }}]
initial_texts = {json.dumps(texts)}
fit = false
{extra}
"""


def embedding(text: str, dim: int = 24) -> list[float]:
    """A hashed bag of words with an offset (no text embeds to zero), as the fake backend's."""
    v = np.full(dim, 0.05)
    for w in re.findall(r"[\w']+", text.lower()):
        v[int.from_bytes(hashlib.sha256(w.encode()).digest()[:4], "little") % dim] += 1.0
    return v.tolist()


class QuietServer(ThreadingHTTPServer):
    """A client that gave up (a timeout the test asked for) leaves its handler writing to a closed
    socket: expected, and not to be printed on the stderr the tests read for one-line errors."""

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)):
            return
        super().handle_error(request, client_address)


class Stub:
    """An OpenAI-compatible server in a thread. ``behaviour(n)`` decides the n-th completion request
    (from 0): "ok", "malformed" (a body that is not JSON), "stall" (no answer for ``stall_s``),
    "503" or "400". It answers "the river and <the prompt's last word>" after ``delay`` seconds."""

    def __init__(self, models=("stub",), behaviour=lambda n: "ok", delay: float = 0.0, stall_s: float = 30.0, logprobs=None):
        self.models, self.behaviour, self.delay, self.stall_s = list(models), behaviour, delay, stall_s
        # logprobs(prompt) -> {token: log-probability}: the top tokens a probe request gets; None: a
        # server that gives no log-probabilities (the field is missing from its answer).
        self.logprobs = logprobs
        self.probes: list[dict] = []
        self.bodies: list[dict] = []
        self.headers: list[dict] = []
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, code: int, payload: bytes):
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                with contextlib.suppress(OSError):
                    self.wfile.write(payload)

            def do_GET(self):
                if self.path == "/v1/models":
                    self._send(200, json.dumps({"object": "list", "data": [{"id": m} for m in stub.models]}).encode())
                else:
                    self._send(404, b'{"error": "not found"}')

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path == "/v1/embeddings":
                    data = [{"embedding": embedding(body["input"]), "index": 0}]
                    self._send(200, json.dumps({"data": data, "model": body["model"]}).encode())
                    return
                if body.get("max_tokens") == 1 and "logprobs" in body:  # a probe: not counted as a message
                    with stub.lock:
                        stub.probes.append(body)
                    choice = {"index": 0, "text": "x", "finish_reason": "length"}
                    if stub.logprobs is not None:
                        choice["logprobs"] = {"tokens": ["x"], "top_logprobs": [stub.logprobs(body["prompt"])]}
                    self._send(200, json.dumps({"model": body["model"], "choices": [choice]}).encode())
                    return
                with stub.lock:
                    n = len(stub.bodies)
                    stub.bodies.append(body)
                    stub.headers.append(dict(self.headers))
                    stub.in_flight += 1
                    stub.max_in_flight = max(stub.max_in_flight, stub.in_flight)
                what = stub.behaviour(n)
                time.sleep(stub.stall_s if what == "stall" else stub.delay)
                # Out of flight before the answer is written: once the client reads it, it may send
                # the next request, which must not find this one still counted.
                with stub.lock:
                    stub.in_flight -= 1
                if what == "malformed":
                    self._send(200, b"<html>not json")
                elif what in ("503", "400"):
                    self._send(int(what), b'{"error": {"message": "no"}}')
                else:
                    prompt = body["messages"][-1]["content"] if "messages" in body else body["prompt"]
                    words = re.findall(r"\w+", prompt) or ["nothing"]
                    text = f"the river and {words[-1]}"
                    choice = {"index": 0, "finish_reason": "stop"}
                    choice |= {"message": {"role": "assistant", "content": text}} if "messages" in body else {"text": text}
                    usage = {"prompt_tokens": len(prompt) // 4, "completion_tokens": 4, "total_tokens": len(prompt) // 4 + 4}
                    self._send(
                        200, json.dumps({"model": f"served-{body['model']}", "choices": [choice], "usage": usage}).encode()
                    )

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
