"""The wire format: a versioned JSON header and raw little-endian arrays.

Nothing is ever pickled. A message is::

    b"FSK" + version byte | header length (uint32, little-endian) | header | buffers

The header is UTF-8 JSON ``{"body": tree, "buffers": [byte lengths]}``. The
tree holds JSON scalars and lists, and tagged objects for everything else:
``{"$t": "tuple"}``, ``"map"`` (a dict as key/value pairs, so keys keep their
type), ``"float"`` (inf and NaN), ``"int"`` (beyond 2^53, as text),
``"bytes"`` and ``"array"`` (an index into the buffers; arrays name their
dtype, always little-endian, and shape), ``"labels"`` (a 1-d object array of
strings or numbers), ``"record"``: one of the dataclasses named in
:func:`records`, rebuilt field by field, and ``"estimator"``: one of the
scikit-learn classes FedAvg fits locally, rebuilt from its parameters.
Any other tag, dtype, version, record or estimator name is refused, as are
messages larger than the limit and trees nested deeper than
:data:`MAX_DEPTH`.
"""

import dataclasses
import json
import math
import struct

import numpy as np

VERSION = 1
MAGIC = b"FSK"
MAX_BYTES = 256 * 2**20  # default limit of one message
MAX_DEPTH = 64
_HEADER = struct.Struct("<3sBI")
_DTYPES = {
    "bool": np.bool_,
    "int8": np.int8,
    "int16": np.int16,
    "int32": np.int32,
    "int64": np.int64,
    "uint8": np.uint8,
    "uint16": np.uint16,
    "uint32": np.uint32,
    "uint64": np.uint64,
    "float32": np.float32,
    "float64": np.float64,
}
_SAFE_INT = 2**53


class MessageError(ValueError):
    """A message that is not a well-formed fedsk message of a known version."""


def _records():
    from .._party import PartyFailure, PartyRequest, PartyTask
    from .._statistics._trees import Ensemble, TreeStructure, TreeTarget
    from ..privacy import Clipping, GridEncoding, ReleaseEvent

    return {
        cls.__name__: cls
        for cls in (
            PartyTask,
            PartyRequest,
            PartyFailure,
            Clipping,
            GridEncoding,
            ReleaseEvent,
            TreeStructure,
            Ensemble,
            TreeTarget,
        )
    }


_RECORDS = None
# scikit-learn estimators a request may name (FedAvg's local fit): rebuilt
# from their class and plain parameters, never unpickled.
_ESTIMATORS = {
    "LogisticRegression": "sklearn.linear_model",
    "SGDClassifier": "sklearn.linear_model",
    "SGDRegressor": "sklearn.linear_model",
    "LinearSVC": "sklearn.svm",
}


def _estimator_class(name):
    import importlib

    if name not in _ESTIMATORS:
        raise MessageError(f"unknown estimator {name!r}")
    return getattr(importlib.import_module(_ESTIMATORS[name]), name)


def records():
    """``{name: dataclass}``: the only classes a message may rebuild."""
    global _RECORDS
    if _RECORDS is None:
        _RECORDS = _records()
    return _RECORDS


def encode(value, *, max_bytes=MAX_BYTES):
    """Serialise ``value`` to bytes (see the module docstring).

    Raises
    ------
    MessageError
        If it holds a type the format does not carry, or is too large.
    """
    buffers = []
    body = _pack(value, buffers, 0)
    header = json.dumps(
        {"body": body, "buffers": [len(b) for b in buffers]},
        separators=(",", ":"),
        allow_nan=False,
    ).encode()
    size = _HEADER.size + len(header) + sum(len(b) for b in buffers)
    if size > max_bytes:
        raise MessageError(f"message of {size} bytes is over the limit of {max_bytes}")
    return b"".join([_HEADER.pack(MAGIC, VERSION, len(header)), header, *buffers])


def decode(data, *, max_bytes=MAX_BYTES):
    """Rebuild a value from :func:`encode`'s bytes, refusing anything else.

    Raises
    ------
    MessageError
        If the bytes are not a message of this version, are over
        ``max_bytes``, or hold an unknown tag, dtype or record.
    """
    data = memoryview(data)
    if len(data) > max_bytes:
        raise MessageError(
            f"message of {len(data)} bytes is over the limit of {max_bytes}"
        )
    if len(data) < _HEADER.size:
        raise MessageError("message too short for its header")
    magic, version, length = _HEADER.unpack(data[: _HEADER.size])
    if magic != MAGIC:
        raise MessageError("not a fedsk message")
    if version != VERSION:
        raise MessageError(
            f"message version {version}; this side reads version {VERSION}: "
            "run the same fedsk version on both sides"
        )
    start = _HEADER.size + length
    if start > len(data):
        raise MessageError("header longer than the message")
    try:
        header = json.loads(bytes(data[_HEADER.size : start]))
        lengths = header["buffers"]
        body = header["body"]
    except (ValueError, KeyError, TypeError) as exc:
        raise MessageError(f"malformed header ({type(exc).__name__})") from None
    if not isinstance(lengths, list) or not all(
        isinstance(n, int) and n >= 0 for n in lengths
    ):
        raise MessageError("malformed buffer table")
    if start + sum(lengths) != len(data):
        raise MessageError("buffer table does not match the message length")
    buffers, offset = [], start
    for n in lengths:
        buffers.append(data[offset : offset + n])
        offset += n
    try:
        return _unpack(body, buffers, 0)
    except MessageError:
        raise
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise MessageError(f"malformed body ({type(exc).__name__}: {exc})") from None


def _pack(value, buffers, depth):
    if depth > MAX_DEPTH:
        raise MessageError(f"value nested deeper than {MAX_DEPTH}")
    depth += 1
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.generic) and not isinstance(value, np.ndarray):
        if isinstance(value, np.bool_ | np.integer | np.floating | np.str_):
            return _pack(value.item(), buffers, depth)
    if isinstance(value, int):
        if -_SAFE_INT < value < _SAFE_INT:
            return value
        return {"$t": "int", "v": str(value)}
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return {"$t": "float", "v": repr(value)}
    if isinstance(value, bytes | bytearray):
        buffers.append(bytes(value))
        return {"$t": "bytes", "i": len(buffers) - 1}
    if isinstance(value, np.ndarray):
        return _pack_array(value, buffers, depth)
    if isinstance(value, list):
        return [_pack(v, buffers, depth) for v in value]
    if isinstance(value, tuple):
        return {"$t": "tuple", "v": [_pack(v, buffers, depth) for v in value]}
    if isinstance(value, set | frozenset):
        return {"$t": "tuple", "v": [_pack(v, buffers, depth) for v in sorted(value)]}
    if isinstance(value, dict):
        return {
            "$t": "map",
            "v": [
                [_pack(k, buffers, depth), _pack(v, buffers, depth)]
                for k, v in value.items()
            ],
        }
    if dataclasses.is_dataclass(value) and type(value).__name__ in records():
        if records()[type(value).__name__] is not type(value):
            raise MessageError(f"cannot send a {type(value).__qualname__}")
        return {
            "$t": "record",
            "name": type(value).__name__,
            "v": {
                f.name: _pack(getattr(value, f.name), buffers, depth)
                for f in dataclasses.fields(value)
            },
        }
    name = type(value).__name__
    if name in _ESTIMATORS and type(value) is _estimator_class(name):
        return {
            "$t": "estimator",
            "name": name,
            "v": _pack(value.get_params(deep=False), buffers, depth),
        }
    raise MessageError(
        f"cannot send a {type(value).__qualname__}: the wire carries numbers, "
        "text, bytes, numeric arrays and fedsk's own public records only"
    )


def _pack_array(array, buffers, depth):
    if array.dtype.kind in "OU":
        if array.ndim != 1:
            raise MessageError("text or object arrays must be one-dimensional")
        items = [v.item() if isinstance(v, np.generic) else v for v in array]
        if not all(isinstance(v, str | bool | int | float) or v is None for v in items):
            raise MessageError("object arrays may hold text and numbers only")
        return {
            "$t": "labels",
            "kind": array.dtype.kind,
            "v": [_pack(v, buffers, depth) for v in items],
        }
    name = array.dtype.name
    if name not in _DTYPES:
        raise MessageError(f"cannot send arrays of dtype {array.dtype}")
    data = np.ascontiguousarray(array, dtype=np.dtype(_DTYPES[name]).newbyteorder("<"))
    buffers.append(data.tobytes())
    return {
        "$t": "array",
        "i": len(buffers) - 1,
        "dtype": name,
        "shape": list(array.shape),
    }


def _unpack(node, buffers, depth):
    if depth > MAX_DEPTH:
        raise MessageError(f"message nested deeper than {MAX_DEPTH}")
    depth += 1
    if node is None or isinstance(node, bool | str | int | float):
        return node
    if isinstance(node, list):
        return [_unpack(v, buffers, depth) for v in node]
    if not isinstance(node, dict) or "$t" not in node:
        raise MessageError("untagged object in the message")
    tag = node["$t"]
    if tag == "tuple":
        return tuple(_unpack(v, buffers, depth) for v in node["v"])
    if tag == "map":
        out = {}
        for pair in node["v"]:
            key, value = pair
            key = _unpack(key, buffers, depth)
            if (
                not isinstance(key, str | int | float | bool | tuple)
                and key is not None
            ):
                raise MessageError("map key of an unhashable type")
            out[key] = _unpack(value, buffers, depth)
        return out
    if tag == "int":
        return int(node["v"])
    if tag == "float":
        if node["v"] not in ("inf", "-inf", "nan"):
            raise MessageError("malformed float")
        return float(node["v"])
    if tag == "bytes":
        return bytes(buffers[node["i"]])
    if tag == "array":
        dtype = node["dtype"]
        if dtype not in _DTYPES:
            raise MessageError(f"unknown array dtype {dtype!r}")
        shape = tuple(node["shape"])
        if not all(isinstance(n, int) and n >= 0 for n in shape):
            raise MessageError("malformed array shape")
        dt = np.dtype(_DTYPES[dtype]).newbyteorder("<")
        raw = buffers[node["i"]]
        if len(raw) != math.prod(shape) * dt.itemsize:
            raise MessageError("array buffer does not match its dtype and shape")
        array = np.frombuffer(raw, dtype=dt).reshape(shape)
        return array.astype(dt.newbyteorder("="), copy=True)
    if tag == "labels":
        items = [_unpack(v, buffers, depth) for v in node["v"]]
        if node.get("kind") == "U":
            return np.asarray(items, dtype=str)
        array = np.empty(len(items), dtype=object)
        array[:] = items
        return array
    if tag == "record":
        cls = records().get(node["name"])
        if cls is None:
            raise MessageError(f"unknown record {node['name']!r}")
        values = node["v"]
        names = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(values, dict) or set(values) - names:
            raise MessageError(f"unknown fields in record {node['name']!r}")
        return cls(**{k: _unpack(v, buffers, depth) for k, v in values.items()})
    if tag == "estimator":
        cls = _estimator_class(node["name"])
        params = _unpack(node["v"], buffers, depth)
        if not isinstance(params, dict) or set(params) - set(cls().get_params()):
            raise MessageError(f"unknown parameters of {node['name']!r}")
        return cls(**params)
    raise MessageError(f"unknown tag {tag!r} in the message")
