"""A local OpenAI-compatible server: llama-cpp-python's own (``python -m llama_cpp.server``, its
``server`` extra) on a GGUF file, on 127.0.0.1, started and stopped from Python. The server
backend's tests, ``benchmarks/live_server.py`` and ``analysis/live_mixed.py`` use it; any other
server (llama-server, vLLM) is started by its own command (see the README)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    """``python -m llama_cpp.server`` on ``model`` (served as ``alias``) on 127.0.0.1, started and stopped here."""

    def __init__(self, model: Path, alias: str = "gemma3", port: int | None = None, log: Path | None = None, threads: int = 1):
        self.model, self.alias, self.port, self.threads = Path(model), alias, port or free_port(), threads
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.log = log
        self.proc: subprocess.Popen | None = None

    def start(self, wait_s: float = 120.0) -> LlamaServer:
        """Start the server and wait until ``GET /v1/models`` answers; ``RuntimeError`` if it does not."""
        import httpx

        argv = [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model), "--model_alias", self.alias]
        # n_threads_batch too: its default (half the cores) evaluates prompts on one thread of two.
        argv += ["--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", "1024"]
        argv += ["--n_threads", str(self.threads), "--n_threads_batch", str(self.threads)]
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL
        self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with status {self.proc.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/models", timeout=2).status_code == 200:
                    return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"llama_cpp.server did not answer within {wait_s} s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        self.proc = None
