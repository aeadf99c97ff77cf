"""The project files a user's factory is made of: its module and the project modules it imports.

A run trained with a user's model or dataset factory (``package.module:function``) computes from
that module's code and from the code of the project modules it imports; their bytes key the run
(:func:`harness.runs.run_key`), so editing any of them trains it again. The walk starts at the
factory's module file and follows every ``import`` statement it holds (at module level or inside
a function) that names a file under the project root (the ``sys.path`` folder the factory's
top-level package lies in), found on disk without importing anything. It follows no link out of
the root, nothing in site-packages or the standard library, and not the harness itself (its
version keys every run); it reads at most :data:`MAX_FILES` files and parses those up to
:data:`MAX_PARSED_BYTES`. What it did not follow is said in the closure's notes.
"""
from __future__ import annotations

import ast
import hashlib
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

from harness.storage import file_digest

MAX_FILES = 200
MAX_PARSED_BYTES = 1 << 20


@dataclass(frozen=True)
class Closure:
    """The files of one factory's code: relative posix path under ``root`` -> SHA-256."""

    root: Path
    files: dict = field(default_factory=dict)
    notes: tuple = ()

    def to_dict(self) -> dict:
        return {"root": str(self.root), "files": dict(self.files), "notes": list(self.notes)}


def module_closure(module_name: str) -> Closure:
    """The closure of the (imported) module ``module_name``."""
    module = sys.modules.get(module_name)
    origin = getattr(module, "__file__", None)
    if not origin:
        return Closure(Path("."), notes=(f"module {module_name} has no source file",))
    path = Path(origin)
    root = _root(path, module_name)
    walk = _Walk(root.resolve(), installed=_excluded(path.resolve()))
    return walk.run(path.resolve(), path.relative_to(root).as_posix(), module_name)


def _root(path: Path, module_name: str) -> Path:
    """The sys.path folder the module was found in: its file, up one level per dotted part."""
    depth = module_name.count(".") + (1 if path.name == "__init__.py" else 0)
    return path.parents[depth]


def _excluded(path: Path) -> bool:
    """Installed or standard-library code, or the harness (keyed by its version)."""
    return any(path.is_relative_to(folder) for folder in _EXCLUDED)


def _excluded_folders() -> tuple:
    import harness

    paths = sysconfig.get_paths()
    folders = {Path(paths[k]).resolve() for k in ("stdlib", "platstdlib", "purelib", "platlib")
               if k in paths}
    folders.update(Path(p).resolve() for p in sys.path if Path(p).name in ("site-packages",
                                                                             "dist-packages"))
    folders.add(Path(harness.__file__).resolve().parent)
    return tuple(sorted(folders))


_EXCLUDED = _excluded_folders()


class _Walk:
    def __init__(self, root: Path, installed: bool) -> None:
        self.root, self.installed = root, installed
        self.files: dict = {}
        self.notes: list = []

    def run(self, start: Path, label: str, module_name: str) -> Closure:
        """Hash ``start`` (the factory's module file, named ``label`` in the closure), then the
        project files it imports, breadth first."""
        package = _package_of(Path(label), module_name)
        queue = [(start, package)]
        if self.installed:
            self.notes.append(f"{module_name} is installed code: only its own file is hashed")
        while queue:
            path, package = queue.pop(0)
            rel = path.relative_to(self.root).as_posix() if path.is_relative_to(self.root) else label
            if rel in self.files:
                continue
            if len(self.files) >= MAX_FILES:
                self.notes.append(f"more than {MAX_FILES} project files: the first {MAX_FILES} "
                                  f"are hashed")
                break
            data = path.read_bytes() if path.stat().st_size <= MAX_PARSED_BYTES else None
            self.files[rel] = hashlib.sha256(data).hexdigest() if data is not None else file_digest(path)
            if self.installed:
                break
            names = list(self._imports(rel, data, package))
            if len(self.files) == 1 and package:     # importing the module runs its packages
                names[:0] = _with_parents(package)
            for name in names:
                found = self._file_of(name)
                if found is not None:
                    queue.append(found)
        return Closure(self.root, dict(sorted(self.files.items())), tuple(self.notes))

    def _imports(self, rel: str, data: Optional[bytes], package: str) -> Iterator[str]:
        if data is None:
            self.notes.append(f"{rel}: over {MAX_PARSED_BYTES} bytes, its imports not followed")
            return
        try:
            tree = ast.parse(data)
        except (SyntaxError, ValueError) as exc:
            self.notes.append(f"{rel}: not parsed ({type(exc).__name__}), its imports not followed")
            return
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield from _with_parents(alias.name)
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(node.module, node.level, package)
                if base is None:
                    continue
                yield from _with_parents(base)
                yield from (f"{base}.{a.name}" for a in node.names if a.name != "*")

    def _file_of(self, name: str) -> Optional[tuple]:
        """(file, its package) of the module ``name`` under the root, or None."""
        parts = name.split(".")
        folder = self.root.joinpath(*parts)
        for candidate, package in ((folder / "__init__.py", name),
                                   (folder.with_name(parts[-1] + ".py"), name.rpartition(".")[0])):
            if not candidate.is_file():
                continue
            real = candidate.resolve()
            if not real.is_relative_to(self.root):
                self.notes.append(f"{name}: {candidate.relative_to(self.root).as_posix()} is a "
                                  f"link out of the project, not followed")
                return None
            if _excluded(real):
                return None
            return real, package
        return None


def _package_of(path: Path, module_name: str) -> str:
    return module_name if path.name == "__init__.py" else module_name.rpartition(".")[0]


def _absolute(module: Optional[str], level: int, package: str) -> Optional[str]:
    """The absolute name of ``from <level dots><module> import ...`` in ``package``."""
    if level == 0:
        return module
    parts = package.split(".") if package else []
    if level - 1 > len(parts) or (level - 1 == len(parts) and not module):
        return None
    base = parts[:len(parts) - (level - 1)]
    return ".".join(base + ([module] if module else [])) or None


def _with_parents(name: str) -> Iterator[str]:
    """``a.b.c`` runs ``a``, ``a.b`` and ``a.b.c``."""
    parts = name.split(".")
    for end in range(1, len(parts) + 1):
        yield ".".join(parts[:end])


def run_code(spec, root: Optional[Path] = None) -> dict:
    """What a run computes from beyond its spec's values, as it keys the run: the closure of a
    user's model and dataset factory, and the files of ``spec.inputs`` (relative to ``root``,
    the project root; the working directory when None). Empty for harness and timm models on
    registered datasets with no inputs, whose keys stay as they were."""
    from harness.imports import ImportPathError, is_import_path, load_object

    code: dict = {}
    for role, name in (("model", spec.model), ("dataset", spec.dataset)):
        if not is_import_path(name):
            continue
        try:
            load_object(name, role)
        except ImportPathError as exc:
            raise _role_error(role, str(exc)) from None
        code[role] = module_closure(name.partition(":")[0])
    if spec.inputs:
        code["inputs"] = input_digests(spec.inputs, Path(root) if root is not None else Path.cwd())
    return code


def code_key(code: dict) -> dict:
    """The hashed part of :func:`run_code`: relative paths and digests, no absolute root."""
    return {role: (part.files if isinstance(part, Closure) else part) for role, part in code.items()}


def code_record(code: dict) -> dict:
    """:func:`run_code` as the run's record lists it (``notes["keyed_code"]``)."""
    return {role: (part.to_dict() if isinstance(part, Closure) else dict(part))
            for role, part in code.items()}


def input_digests(names: tuple, root: Path) -> dict:
    """SHA-256 of each file ``RunSpec.inputs`` names, relative to ``root``."""
    from harness.spec import SpecError

    digests = {}
    for name in names:
        path = root / name
        if not path.is_file():
            raise SpecError(f"RunSpec.inputs names {name!r}, which is not a file under the "
                            f"project root {root}")
        digests[name] = file_digest(path)
    return digests


def _role_error(role: str, message: str) -> Exception:
    from harness.data import DataError
    from harness.models import ModelError

    return (ModelError if role == "model" else DataError)(message)
