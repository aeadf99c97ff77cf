"""The runs store: the only reader and writer of ``<reports-dir>/runs/``.

One folder per run key. Each completed state is ``state<k>.safetensors`` (weights),
``state<k>.masks.safetensors`` (pruning runs) and ``state<k>.json`` (its record, written last:
it marks the state complete); ``record.json`` marks the whole run complete. Every write is
atomic (:mod:`harness.storage`).

What is stored is checked when it is read back, so a damaged store is repaired, never trusted:

- file paths are stored relative to the store root (``<key>/state0.safetensors``), so a moved
  or copied reports folder reads its own files;
- every weight and mask file's SHA-256 and size are in the state's record; a state whose file is
  missing, truncated or changed is not reused: it and the states after it train again;
- an unreadable ``record.json`` or ``state<k>.json`` (a kill mid-write of an older harness, a
  disk error) counts as absent, and the run resumes from the states that are intact.

Each repair is said once, as a :class:`StoreWarning` (pytest lists it in its warnings summary)
and in the record's ``notes["store_repairs"]``.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Optional

from harness import storage
from harness.storage import file_digest
from harness.record import RunRecord, StateRecord

FILE_FIELDS = ("checkpoint", "masks")


class StoreWarning(UserWarning):
    """The runs store found something damaged and will not reuse it."""


class RunStore:
    """Runs under ``root``, one folder per key."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.repairs: list[str] = []

    def path(self, key: str) -> Path:
        return self.root / key

    def lock_path(self, key: str) -> Path:
        return self.root / f"{key}.lock"

    # --- reading --------------------------------------------------------------------------
    def complete(self, key: str) -> Optional[RunRecord]:
        """The stored run when ``record.json`` and every state it lists are intact, else None."""
        path = self.path(key) / "record.json"
        if not path.is_file():
            return None
        data = self._read_json(path)
        if data is None:
            return None
        try:
            record = RunRecord.from_dict(data)
        except (TypeError, ValueError, KeyError) as exc:
            self._repair(f"{path}: not a run record ({type(exc).__name__}: {exc}); resuming from "
                         f"its stored states")
            return None
        for state in record.states:
            if not self._intact(state):
                return None
        return record

    def states(self, key: str) -> list[StateRecord]:
        """Completed, intact states in order, stopping at the first gap or damaged state."""
        found: list[StateRecord] = []
        while True:
            path = self.path(key) / f"state{len(found)}.json"
            if not path.is_file():
                return found
            data = self._read_json(path)
            state = StateRecord.from_dict(data) if isinstance(data, dict) else None
            if state is None or not self._intact(state):
                return found
            found.append(state)

    def _read_json(self, path: Path) -> Optional[dict]:
        try:
            data = storage.read_json(path)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            self._repair(f"{path}: unreadable ({type(exc).__name__}: {exc}); it is not reused")
            return None
        if not isinstance(data, dict):
            self._repair(f"{path}: holds {type(data).__name__}, not a record; it is not reused")
            return None
        return self._resolve(data)

    def _resolve(self, data: dict) -> dict:
        """Stored relative paths made absolute under this store's root (states nested in a
        record included)."""
        for state in data.get("states", []) if "states" in data else [data]:
            if not isinstance(state, dict):
                continue
            for name in FILE_FIELDS:
                value = state.get(name)
                if isinstance(value, str) and value and not Path(value).is_absolute():
                    state[name] = str(self.root / value)
        return data

    def _intact(self, state: StateRecord) -> bool:
        """Every file of ``state`` exists with its recorded size and SHA-256."""
        for name in FILE_FIELDS:
            path = getattr(state, name)
            if path is None:
                continue
            expected = state.sha256.get(name)
            problem = _file_problem(Path(path), expected)
            if problem:
                self._repair(f"state {state.index}: {name} {path} {problem}; that state and the "
                             f"ones after it are trained again")
                return False
        return True

    def _repair(self, message: str) -> None:
        if message not in self.repairs:     # said once, though complete() and states() both look
            self.repairs.append(message)
            warnings.warn(StoreWarning(f"runs store: {message}"), stacklevel=3)

    # --- writing --------------------------------------------------------------------------
    def save_state(self, key: str, state: StateRecord, tensors: dict, metadata: dict) -> StateRecord:
        ckpt = self.path(key) / f"state{state.index}.safetensors"
        self._write_tensors(ckpt, tensors, metadata)
        self._attach(state, "checkpoint", ckpt)
        return self.save_state_record(key, state)

    def save_masks(self, key: str, state: StateRecord, tensors: dict, metadata: dict) -> None:
        """The masks of ``state``; written before the state's json marks it complete."""
        path = self.path(key) / f"state{state.index}.masks.safetensors"
        self._write_tensors(path, tensors, metadata)
        self._attach(state, "masks", path)

    def save_state_record(self, key: str, state: StateRecord) -> StateRecord:
        """``state<k>.json``: the state is complete once this is written."""
        self._write_json(self.path(key) / f"state{state.index}.json", self._stored(state.to_dict()))
        return state

    def save_record(self, key: str, record: RunRecord) -> None:
        data = record.to_dict()
        data["states"] = [self._stored(s) for s in data["states"]]
        self._write_json(self.path(key) / "record.json", data)

    def rewind_path(self, key: str) -> Path:
        return self.path(key) / "rewind.safetensors"

    def save_rewind(self, key: str, tensors: dict, metadata: dict) -> None:
        self._write_tensors(self.rewind_path(key), tensors, metadata)

    def clear(self, key: str) -> None:
        folder = self.path(key)
        if folder.is_dir() and not self.readonly:
            for item in folder.iterdir():
                item.unlink()

    # the two write primitives (a read-only store writes nothing)
    readonly = False

    def _write_tensors(self, path: Path, tensors: dict, metadata: dict) -> None:
        storage.save_tensors(path, tensors, metadata)

    def _write_json(self, path: Path, data: dict) -> None:
        storage.write_json(path, data)

    def _attach(self, state: StateRecord, name: str, path: Path) -> None:
        setattr(state, name, str(path))
        if not self.readonly:
            state.sha256 = {**state.sha256, name: file_digest(path)}

    def _stored(self, state: dict) -> dict:
        """A state's dict with its file paths relative to the store root when they lie in it."""
        state = dict(state)
        for name in FILE_FIELDS:
            value = state.get(name)
            path = Path(value) if isinstance(value, str) and value else None
            if path is not None and path.resolve().is_relative_to(self.root.resolve()):
                state[name] = path.resolve().relative_to(self.root.resolve()).as_posix()
        return state


def _file_problem(path: Path, expected: Optional[str]) -> Optional[str]:
    if not path.is_file():
        return "is missing"
    if expected is None:
        return "has no recorded checksum (stored by an older harness)"
    digest = file_digest(path)
    if digest != expected:
        return f"changed since it was stored (sha256 {digest[:12]}, recorded {expected[:12]})"
    return None


class ReadOnlyStore(RunStore):
    """The store as a DDP rank > 0 sees it: it reads the shared store (to resume from the same
    state as rank 0) and writes nothing; rank 0 writes every file."""

    readonly = True

    def _write_tensors(self, path: Path, tensors: dict, metadata: dict) -> None:
        return None

    def _write_json(self, path: Path, data: dict) -> None:
        return None
