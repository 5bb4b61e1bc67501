"""Reading Python pickles that must not run code: a restricted unpickler.

Some released assets are plain pickles (the FLAME head model is one, written by Python 2 with
``chumpy`` and ``scipy.sparse`` objects inside).  ``pickle.load`` would import and call
whatever the file names.  :func:`load_restricted` admits only the globals the caller lists,
each mapped to an object of our choosing (NumPy's array reconstruction, or a small stand-in
class that just keeps the stored state); a file that asks for anything else is refused with a
message naming what it asked for.

:data:`NUMPY_GLOBALS` covers NumPy arrays, dtypes and scalars as NumPy 1.x and 2.x write them.
"""
from __future__ import annotations

import io
import pickle
from typing import Any, Callable, Dict, Tuple, Union

import numpy as np


class RefusedPickle(pickle.UnpicklingError):
    """The file asks for a global outside the allowed set (or is not a pickle)."""


def _numpy_reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # NumPy 1.x
        from numpy.core.multiarray import _reconstruct, scalar
    return _reconstruct, scalar


def _numpy_globals() -> Dict[Tuple[str, str], Any]:
    reconstruct, scalar = _numpy_reconstruct()
    out = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        out[(mod, "_reconstruct")] = reconstruct
        out[(mod, "scalar")] = scalar
    return out


NUMPY_GLOBALS = _numpy_globals()
BUILTIN_GLOBALS = {
    (mod, name): obj for mod in ("builtins", "__builtin__")
    for name, obj in (("set", set), ("frozenset", frozenset), ("object", object))
}
# Python 3 writes bytes into protocol-2 pickles as _codecs.encode(text, "latin1"): harmless.
BUILTIN_GLOBALS[("_codecs", "encode")] = __import__("codecs").encode


def _reconstructor(allowed_types):
    """copyreg._reconstructor (protocol 0/1 objects), limited to the allowed classes."""

    def make(cls, base, state):
        if cls not in allowed_types or base not in (object,) + tuple(allowed_types):
            raise RefusedPickle("the file asks to build %r from %r, which is not allowed" % (cls, base))
        obj = object.__new__(cls)
        if base is not object and state is not None:
            base.__init__(obj, state)
        return obj

    return make


class _Restricted(pickle.Unpickler):
    def __init__(self, file, allowed: Dict[Tuple[str, str], Any], what: str, encoding: str):
        super().__init__(file, encoding=encoding)
        self._allowed = allowed
        self._what = what

    def find_class(self, module, name):
        key = (module, name)
        if key in self._allowed:
            return self._allowed[key]
        raise RefusedPickle("%s: refused to load: the file asks for %s.%s, which a %s does not contain (only NumPy "
                            "arrays and the types listed for it are allowed; nothing from the file is run)"
                            % (self._what, module, name, self._what))

    def persistent_load(self, pid):
        raise RefusedPickle("%s: refused to load: the file uses persistent references" % self._what)


def load_restricted(source: Union[str, bytes, io.IOBase], allowed: Dict[Tuple[str, str], Any],
                    what: str = "pickle", encoding: str = "latin1") -> Any:
    """Unpickles ``source`` (a path, bytes or a binary file) admitting only ``allowed`` globals
    ({(module, name): object}), plus NumPy arrays and builtin sets.  ``encoding='latin1'`` reads
    Python 2 pickles (NumPy's array data included)."""
    table: Dict[Tuple[str, str], Any] = {}
    table.update(NUMPY_GLOBALS)
    table.update(BUILTIN_GLOBALS)
    table.update(allowed)
    types = tuple(v for v in allowed.values() if isinstance(v, type))
    for mod in ("copy_reg", "copyreg"):
        table[(mod, "_reconstructor")] = _reconstructor(types)
    if isinstance(source, (bytes, bytearray)):
        f: Any = io.BytesIO(source)
    elif isinstance(source, str):
        f = open(source, "rb")
    else:
        f = source
    try:
        return _Restricted(f, table, what, encoding).load()
    except RefusedPickle:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as e:
        raise RefusedPickle("%s: not a readable pickle (%s: %s)" % (what, type(e).__name__, e)) from e
    finally:
        if isinstance(source, str):
            f.close()


class StateRecord:
    """A stand-in for a class whose pickled state is all we need: keeps the state dict."""

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict):
            state = dict(state[1], **(state[0] or {}))  # (dict, slots) form
        self.state = state if isinstance(state, dict) else {"state": state}

    def get(self, key, default=None):
        return getattr(self, "state", {}).get(key, default)


def as_array(obj: Any, name: str = "value", factory: Callable = None) -> np.ndarray:
    """A NumPy array from an array, a StateRecord holding ``x`` (chumpy) or a sparse record."""
    if isinstance(obj, np.ndarray):
        return obj
    if hasattr(obj, "to_dense"):
        return obj.to_dense()
    if isinstance(obj, StateRecord) and isinstance(obj.get("x"), np.ndarray):
        return obj.get("x")
    if factory is not None:
        return factory(obj)
    raise RefusedPickle("%s is a %s, not an array" % (name, type(obj).__name__))
