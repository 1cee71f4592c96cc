"""The data that may cross between the grader and the student process, and its byte format.

Both processes import only the standard library and NumPy for this (the student process runs this
file's source). A message is an 8-byte length, a JSON header and the raw bytes of its arrays; no
pickle, so decoding builds nothing but the types below. **Data** is exactly (no subclasses):
None, bool, int, float, complex, str, list, tuple, dict (any data keys), NumPy arrays and scalars
of a bool/int/uint/float/complex dtype, and ``numpy.random.Generator`` (sent as its state).
Everything else is sent as a handle ``{"H": n}`` naming an object that stays where it was made.
Tagged JSON objects: ``L`` list, ``T`` tuple, ``D`` dict, ``A`` array, ``S`` NumPy scalar,
``C`` complex, ``G`` generator, ``H`` handle, ``P`` a student name, ``N`` the n-th mutable
argument of a call (for copying in-place changes back).
"""
import json
import struct

import numpy as np

MAX_HEADER = 64 * 2**20
MAX_BUFFERS = 512 * 2**20
MAX_DEPTH = 64
NUMERIC_KINDS = "biufc"
GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


class WireError(ValueError):
    """A message that is not valid data (malformed, too large, or of a forbidden type)."""


def is_array(x):
    return (type(x) is np.ndarray and x.dtype.kind in NUMERIC_KINDS and x.dtype.fields is None
            and not x.dtype.hasobject)


def is_scalar(x):
    return isinstance(x, np.generic) and type(x) is np.dtype(type(x)).type and \
        np.dtype(type(x)).kind in NUMERIC_KINDS


def is_generator(x):
    return type(x) is np.random.Generator and type(x.bit_generator).__name__ in GENERATORS and \
        type(x.bit_generator) is getattr(np.random, type(x.bit_generator).__name__)


class Encoder:
    """Turns a value into (JSON-able tree, buffers). ``other(x)`` encodes a non-data value
    (a handle); ``nodes`` maps id() of mutable arguments to their index (``N`` references)."""

    def __init__(self, other, nodes=None, define=False):
        self.other, self.nodes, self.buffers, self.size = other, nodes or {}, [], 0
        self.define, self.order = define, []     # define: number mutable values on first sight

    def _buf(self, data):
        self.size += len(data)
        if self.size > MAX_BUFFERS:
            raise WireError(f"message larger than {MAX_BUFFERS} bytes")
        self.buffers.append(data)
        return len(self.buffers) - 1

    def __call__(self, x, depth=0):
        if depth > MAX_DEPTH:
            raise WireError(f"data nested deeper than {MAX_DEPTH} levels")
        t = type(x)
        if x is None or t in (bool, str):
            return x
        if t is int:
            return x if abs(x) < 2**63 else {"I": str(x)}
        if t is float:
            return x if x == x and abs(x) != float("inf") else {"F": repr(x)}
        if t in (list, dict, np.ndarray, np.random.Generator):
            if id(x) in self.nodes:
                return {"N": self.nodes[id(x)]}
            if self.define:
                self.nodes[id(x)] = len(self.order)
                self.order.append(x)
                return {"N": self.nodes[id(x)], "v": self.contents(x, depth)}
        return self.contents(x, depth)

    def contents(self, x, depth=0):
        """The encoding of ``x`` itself, even where ``x`` is a numbered node."""
        t = type(x)
        if t is complex:
            return {"C": [repr(x.real), repr(x.imag)]}
        if t is list or t is tuple:
            return {"L" if t is list else "T": [self(v, depth + 1) for v in x]}
        if t is dict:
            return {"D": [[self(k, depth + 1), self(v, depth + 1)] for k, v in x.items()]}
        if is_array(x):
            return {"A": self._buf(np.ascontiguousarray(x).tobytes()), "dtype": x.dtype.str,
                    "shape": list(x.shape)}
        if is_scalar(x):
            return {"S": self._buf(x.tobytes()), "dtype": x.dtype.str}
        if is_generator(x):
            return {"G": type(x.bit_generator).__name__, "state": self(x.bit_generator.state, depth + 1)}
        return self.other(x)


class Decoder:
    """Turns (tree, buffers) back into values; ``handle(n)`` / ``name(s)`` / ``node(i)`` resolve
    the references. Raises WireError on anything malformed."""

    def __init__(self, buffers, handle, name=None, node=None):
        self.buffers, self.handle, self.name, self.node = buffers, handle, name, node
        self.defined = {}          # nodes numbered by the sender: {"N": i, "v": value}

    def _dtype(self, s):
        try:
            dt = np.dtype(str(s))
        except TypeError as exc:
            raise WireError(f"bad dtype {s!r}") from exc
        if dt.kind not in NUMERIC_KINDS or dt.fields is not None or dt.hasobject:
            raise WireError(f"dtype {dt} is not allowed")
        return dt

    def __call__(self, x, depth=0):
        if depth > MAX_DEPTH:
            raise WireError("data nested too deep")
        t = type(x)
        if x is None or t in (bool, int, float, str):
            return x
        if t is not dict or len(x) < 1:
            raise WireError(f"unexpected JSON value of type {t.__name__}")
        if "N" in x and "v" in x:
            i = _nonneg(x["N"])
            if i != len(self.defined):
                raise WireError("nodes out of order")
            v = x["v"]
            if type(v) is dict and ("L" in v or "D" in v):   # register first: it may contain itself
                self.defined[i] = obj = [] if "L" in v else {}
                filled = self(v, depth + 1)
                obj.extend(filled) if "L" in v else obj.update(filled)
                return obj
            self.defined[i] = None
            self.defined[i] = obj = self(v, depth + 1)
            return obj
        if "N" in x and len(x) == 1 and x["N"] in self.defined:
            return self.defined[x["N"]]
        if "L" in x or "T" in x:
            items = [self(v, depth + 1) for v in _list(x.get("L", x.get("T")))]
            return items if "L" in x else tuple(items)
        if "D" in x:
            return {_hashable(self(k, depth + 1)): self(v, depth + 1) for k, v in
                    (_pair(p) for p in _list(x["D"]))}
        if "I" in x:
            return int(str(x["I"]))
        if "F" in x:
            return float(str(x["F"]))
        if "C" in x:
            re_, im = _list(x["C"])
            return complex(float(str(re_)), float(str(im)))
        if "A" in x or "S" in x:
            dt = self._dtype(x.get("dtype"))
            data = self.buffers[_index(x.get("A", x.get("S")), len(self.buffers))]
            if "S" in x:
                if len(data) != dt.itemsize:
                    raise WireError("scalar size does not match its dtype")
                return np.frombuffer(data, dtype=dt)[0].copy()
            shape = tuple(_nonneg(n) for n in _list(x.get("shape")))
            if int(np.prod(shape, dtype=np.int64)) * dt.itemsize != len(data) or len(shape) > 32:
                raise WireError("array size does not match its shape and dtype")
            return np.frombuffer(bytearray(data), dtype=dt).reshape(shape)
        if "G" in x:
            name = x["G"]
            if name not in GENERATORS:
                raise WireError(f"bit generator {name!r} is not allowed")
            bg = getattr(np.random, name)()
            try:
                bg.state = self(x.get("state"), depth + 1)
            except (TypeError, ValueError, KeyError) as exc:
                raise WireError(f"bad generator state: {exc}") from exc
            return np.random.Generator(bg)
        if "H" in x:
            return self.handle(_nonneg(x["H"]))
        if "P" in x and self.name is not None:
            return self.name(str(x["P"]))
        if "N" in x and self.node is not None:
            return self.node(_nonneg(x["N"]))
        raise WireError(f"unknown tag {sorted(x)[:3]}")


def _list(x):
    if type(x) is not list:
        raise WireError("expected a list")
    return x


def _pair(p):
    if type(p) is not list or len(p) != 2:
        raise WireError("expected a [key, value] pair")
    return p


def _nonneg(n):
    if type(n) is not int or n < 0:
        raise WireError(f"expected a non-negative int, got {n!r}")
    return n


def _index(n, size):
    if _nonneg(n) >= size:
        raise WireError("buffer index out of range")
    return n


def _hashable(k):
    try:
        hash(k)
    except TypeError as exc:
        raise WireError("unhashable dict key") from exc
    return k


def pack(header: dict, buffers=()) -> bytes:
    """One message: length of the JSON header (8 bytes), the header, the buffers."""
    header = dict(header, buffers=[len(b) for b in buffers])
    head = json.dumps(header, separators=(",", ":")).encode()
    return b"".join([struct.pack("<Q", len(head)), head, *buffers])


def unpack_header(head: bytes):
    try:
        header = json.loads(head.decode())
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise WireError(f"bad message header: {exc}") from exc
    if type(header) is not dict or type(header.get("buffers")) is not list:
        raise WireError("bad message header")
    sizes = [_nonneg(n) for n in header["buffers"]]
    if sum(sizes) > MAX_BUFFERS:
        raise WireError("message too large")
    return header, sizes
