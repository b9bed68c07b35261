"""Files written whole or not at all: atomic text/JSON writes, safetensors, training states.

Every file is written to a temporary name beside its target and renamed, so an interrupted process
never leaves a half-written file behind. The bottom layer: it knows nothing of run folders.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from interpretgan.errors import RunError

#: The process umask, read once (reading it means setting it): atomic files get the usual permissions.
UMASK = os.umask(0)
os.umask(UMASK)


# --- atomic writes ------------------------------------------------------------------------------
@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``, else delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp makes 0600 files, and some writers (safetensors) make a new file in its place:
        # give the usual permissions once the writer is done
        os.chmod(tmp, 0o666 & ~UMASK)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def read_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise RunError(f"{path} does not exist; expected a JSON file written by interpretgan") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RunError(f"{path} is not valid JSON ({err.__class__.__name__}); the file is corrupt") from None


def json_line(obj: Any) -> str:
    """``obj`` as one line of JSON (paths and tensors as :func:`write_json` writes them)."""
    return json.dumps(obj, default=_json_default)


def _json_default(o: Any) -> Any:
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, torch.Tensor):
        return o.tolist()
    if hasattr(o, "item"):
        return o.item()
    raise TypeError(f"cannot write {type(o).__name__} to JSON")


def save_tensors(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    """Atomically write ``tensors`` (made contiguous, on CPU) as safetensors."""
    cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(cpu, str(tmp), metadata=metadata)


def load_tensors(path: str | Path, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise RunError(f"{path} does not exist; expected a safetensors file")
    try:
        return load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError) as err:
        raise _unreadable(path, err) from None


def _unreadable(path: Path, err: Exception) -> RunError:
    return RunError(f"{path} is not a readable safetensors file ({err}); it is truncated or corrupt")


def tensor_metadata(path: str | Path) -> dict[str, str]:
    """The string metadata stored in a safetensors file's header (empty when it has none)."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as err:
        raise _unreadable(path, err) from None


def save_state(path: str | Path, state: dict[str, Any]) -> None:
    """Atomically write a training state (tensors, numbers, lists, dicts) with ``torch.save``."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_state(path: str | Path) -> dict[str, Any]:
    """Load a training state; never executes code from the file (``weights_only=True``)."""
    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise RunError(f"{path} does not exist; there is no training state to resume from") from None
    except Exception as err:  # torch raises several types for a damaged archive
        raise RunError(f"{path} could not be read ({err.__class__.__name__}); the training state is corrupt") from None


class RecordList:
    """Metric records kept in a list: the in-memory stores' side of a run folder's ``metrics.jsonl``."""

    def __init__(self) -> None:
        self._records: list[dict[str, Any]] = []

    def keep_records(self, keep: Any) -> None:
        """Keep only the records for which ``keep(record)`` is true."""
        self._records = [r for r in self._records if keep(r)]

    def record(self, record: dict[str, Any]) -> None:
        self._records.append(record)

    def records(self) -> list[dict[str, Any]]:
        return list(self._records)
