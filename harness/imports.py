"""Objects named by import path: ``package.module:attribute`` (a user's model or dataset factory).

The harness imports the module (from the user's project, which pytest puts on ``sys.path``),
follows the dotted attribute, and fingerprints the module's source so a run keyed on it is
trained again when the user edits the code.
"""
from __future__ import annotations

import hashlib
import importlib
import inspect
import re
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

_PATH = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


_HARNESS = Path(__file__).resolve().parent


class ImportPathError(ValueError):
    """A ``module:attribute`` path that does not name a usable object."""


def is_import_path(text: object) -> bool:
    return isinstance(text, str) and bool(_PATH.match(text))


def load_object(path: str, what: str) -> Any:
    """The object ``path`` names; ``what`` says what it should be, for the error line."""
    if not is_import_path(path):
        raise ImportPathError(f"{what} {path!r}: expected 'package.module:attribute'")
    module_name, _, attribute = path.partition(":")
    try:
        obj = import_module(module_name)
    except ImportError as exc:
        raise ImportPathError(f"{what} {path!r}: cannot import {module_name!r} ({exc}); is the "
                              f"project on sys.path (run pytest from its root)?") from None
    except Exception as exc:   # the user's module failed while it was imported: say where
        raise ImportPathError(f"{what} {path!r}: importing {module_name!r} failed: "
                              f"{raised(exc)}") from None
    for part in attribute.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ImportPathError(f"{what} {path!r}: {module_name!r} has no attribute "
                                  f"{attribute!r}") from None
        except Exception as exc:   # a module __getattr__ or a property of the user's that raised
            raise ImportPathError(f"{what} {path!r}: reading {attribute!r} failed: "
                                  f"{raised(exc)}") from None
    return obj


def raised(exc: BaseException) -> str:
    """What the user's code raised, in one line: ``RuntimeError: boom (at model.py:12)``."""
    message = " ".join(str(exc).split())[:300]
    if isinstance(exc, SyntaxError) and exc.filename:
        where = f"{Path(exc.filename).name}:{exc.lineno}"
        message = " ".join((exc.msg or "").split())[:300]
    else:
        frames = [f for f in traceback.extract_tb(exc.__traceback__)
                  if not Path(f.filename).resolve().is_relative_to(_HARNESS)]   # the user's own
        where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return f"{text} (at {where})" if where else text


def call_factory(fn: Callable, path: str, what: str, **kwargs: Any) -> Any:
    """``call_with(fn, **kwargs)``; whatever the user's factory raises becomes one line
    naming ``path`` (an ImportPathError)."""
    try:
        return call_with(fn, **kwargs)
    except Exception as exc:
        raise ImportPathError(f"{what} {path!r} raised {raised(exc)}") from None


def import_module(name: str) -> ModuleType:
    """The module ``name``, imported with real tensors: when the caller builds a model on the
    meta device (``with torch.device("meta")``), a first import here runs under the CPU device
    instead, so a module-level tensor of the user's module holds data (it is made once, at
    import, and every later model of the module uses it)."""
    if name in sys.modules:
        return importlib.import_module(name)
    import torch

    if torch.get_default_device().type != "meta":
        return importlib.import_module(name)
    with torch.device("cpu"):
        return importlib.import_module(name)


def load_callable(path: str, what: str) -> Callable:
    obj = load_object(path, what)
    if not callable(obj):
        raise ImportPathError(f"{what} {path!r} is a {type(obj).__name__}, not a callable")
    return obj


def call_with(fn: Callable, **kwargs: Any) -> Any:
    """``fn`` called with the keyword arguments its signature accepts (all of them when it
    takes ``**kwargs``)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return fn(**kwargs)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return fn(**kwargs)
    return fn(**{k: v for k, v in kwargs.items() if k in params})


def source_digest(path: str) -> str:
    """SHA-256 of the source file of the module ``path`` names (its code, as the run saw it)."""
    module = import_module(path.partition(":")[0])
    try:
        source = inspect.getsource(module)
    except (OSError, TypeError):
        return f"module {module.__name__} (no source file)"
    return hashlib.sha256(source.encode()).hexdigest()


def import_as_pytest(path: Path) -> ModuleType:
    """The module of ``path`` imported as pytest's default import mode does: inside packages
    (folders with ``__init__.py``) by its dotted name from the outermost one, whose parent goes
    on sys.path (so the bundled suites' relative imports work); else by its file name."""
    top = path.parent
    while (top / "__init__.py").is_file():
        top = top.parent
    names = path.relative_to(top).with_suffix("").parts
    sys.path.insert(0, str(top))
    return importlib.import_module(".".join(names))
