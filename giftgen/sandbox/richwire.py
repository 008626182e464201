"""Typed plain data for numpy, pandas and ``datetime`` values, between the oracle and the program's process.

Contract. ``encode(value, depth, recurse)`` returns the wire form of a numpy array or scalar, a pandas DataFrame,
Series, Index, extension array, Timestamp, Timedelta, Interval, ``NaT`` or ``NA``, a ``datetime``/``date``/``time``/``timedelta``, a
``Decimal``, a ``range`` or ``slice``, a builtin or numpy scalar type, a numpy dtype, or a generator (or another builtin or
``itertools`` iterator: its items, which arrive as an iterator over them), numpy's common functions and ufuncs and a few builtins
(by name), a function of the test's passed to the program (a number: the program calls it back, see ``CALLBACKS``), or None for any other value (``codec.to_wire`` then tags it opaque). ``decode(tag, body, depth,
recurse)`` rebuilds it from plain data only (never pickle, never code): arrays from a dtype on an allow-list
(booleans, integers, floats, complex numbers, fixed-width strings and bytes, ``datetime64``/``timedelta64``, and
``object`` arrays whose items are themselves wire values), a shape and a flat list; frames column by column, with
their dtypes (including pandas' categorical, nullable, string and time-zone-aware ones) and their axes (range,
plain, datetime with its frequency, multi-level), so ``DataFrame.equals``, ``np.array_equal`` and
``pandas.testing`` see what the program returned. Anything malformed, too large (``MAX_ARRAY_BYTES``) or outside
these types raises ``WireError``.

Used only with ``rich=True`` (see ``codec``): by the program's process to read the oracle's arguments and to write
its results, and by the oracle to read them. The trusted parent never decodes rich values: its verdicts stay on
builtin types. A rich value grants a program nothing it could not get honestly: whatever it sends decodes to a
value it could have returned, and the comparison runs in the oracle's process, which the program cannot reach.
numpy and pandas are imported only when such a value is met.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import functools
import itertools
import re
import types
from collections.abc import Callable, Iterator
from typing import Any

from giftgen.sandbox.wire_error import WireError

MAX_ARRAY_BYTES = 256 << 20  # memory one decoded array may take
MAX_DIMS = 32
MAX_ITEMS = 100_000  # items of an iterator (a generator) sent as its items
TAGS = (
    "nd",
    "ns",
    "pdf",
    "pds",
    "pdi",
    "pdt",
    "pdd",
    "pna",
    "dt",
    "dec",
    "ty",
    "npdt",
    "rng",
    "it",
    "cb",
    "fn",
    "sl",
    "pda",
    "piv",
)

# numpy dtype strings accepted from the wire: no structured, void or user dtypes
_DTYPE = re.compile(
    r"^[<>|=]?(?:b1|[iu][1248]|f(?:2|4|8|12|16)|c(?:8|16|24|32)|[US]\d{1,9}|O|[Mm]8(?:\[\d{0,4}[a-zA-Z]{1,2}\])?)$"
)
_UNIT = re.compile(r"^(?:s|ms|us|ns)$")
_TZ = re.compile(r"^(?:UTC|[A-Za-z][A-Za-z0-9_+\-]{0,30}(?:/[A-Za-z0-9_+\-]{1,30}){0,2}|[+-]\d{2}:\d{2})$")
_MASKED = {
    "Int8",
    "Int16",
    "Int32",
    "Int64",
    "UInt8",
    "UInt16",
    "UInt32",
    "UInt64",
    "Float32",
    "Float64",
    "boolean",
}

Recurse = Callable[[Any, int], Any]

# Functions among the arguments: the oracle keeps the test's own (CALLBACKS, for one call into the program) and
# sends their numbers; the program's process gets stubs that call CALL_BACK(number, args, kwargs), which asks the
# oracle to run them. The test's code never enters the program's process, and the program only sends data.
CALLBACKS: list[Callable[..., Any]] | None = None
CALL_BACK: Callable[[int, tuple, dict], Any] | None = None
_FUNCTIONS = (types.FunctionType, types.BuiltinFunctionType, types.MethodType, functools.partial)


# ------------------------------------------------------------------------------------------------ encode


class _Unencodable(Exception):
    pass


def encode(value: Any, depth: int, recurse: Recurse) -> Any:
    """The wire form of ``value``, or None when it is none of the types above (or its encoding fails)."""
    try:
        return _encode(value, depth, recurse)
    except RecursionError:
        raise
    except Exception:  # a value numpy or pandas cannot take apart as expected: opaque, never an error
        return None


def _encode(value: Any, depth: int, recurse: Recurse) -> Any:
    t = type(value)
    if isinstance(value, type):
        return _encode_type(value)
    if t is range:
        return {"rng": [value.start, value.stop, value.step]}
    if t is slice:
        return {
            "sl": [
                recurse(value.start, depth + 1),
                recurse(value.stop, depth + 1),
                recurse(value.step, depth + 1),
            ]
        }
    named = _function_name(value)
    if named is not None:
        return {"fn": named}
    if CALLBACKS is not None and isinstance(value, _FUNCTIONS):
        CALLBACKS.append(value)
        return {"cb": len(CALLBACKS) - 1}
    module = getattr(t, "__module__", "") or ""
    try:
        if module.startswith("numpy"):
            return _encode_numpy(value, depth, recurse)
        if module.startswith("pandas"):
            return _encode_pandas(value, depth, recurse)
    except _Unencodable:
        return None
    if isinstance(value, _dt.datetime):
        return {"dt": ["datetime", value.isoformat()]}
    if isinstance(value, _dt.date):
        return {"dt": ["date", value.isoformat()]}
    if isinstance(value, _dt.time):
        return {"dt": ["time", value.isoformat()]}
    if isinstance(value, _dt.timedelta):
        return {"dt": ["timedelta", [value.days, value.seconds, value.microseconds]]}
    if isinstance(value, decimal.Decimal):
        return {"dec": str(value)}
    if isinstance(value, Iterator) and t.__module__ in ("builtins", "itertools"):
        # a generator, map, zip, filter, enumerate or itertools object: its items, up to MAX_ITEMS, arrive as an
        # iterator over them (one that yields more is not data)
        items = list(itertools.islice(value, MAX_ITEMS + 1))
        return {"it": [recurse(v, depth + 1) for v in items]} if len(items) <= MAX_ITEMS else None
    return None


# Library functions passed by name (pandas treats `aggfunc=np.sum` as "sum"): the same object on both sides
_BUILTIN_FUNCTIONS = {
    f.__name__: f for f in (len, sum, max, min, abs, sorted, round, any, all, repr, ord, chr)
}
_NUMPY_FUNCTIONS = frozenset(
    "sum mean median max min std var prod cumsum cumprod sort unique size count_nonzero average argmax argmin any "
    "all round nansum nanmean nanmax nanmin nanmedian nanstd ptp diff amax amin".split()
)


def _function_name(value: Any) -> str | None:
    if (
        type(value) is types.BuiltinFunctionType
        and _BUILTIN_FUNCTIONS.get(getattr(value, "__name__", "")) is value
    ):
        return f"builtins.{value.__name__}"
    if getattr(type(value), "__module__", "") == "numpy" or type(value).__name__ == "ufunc":
        import numpy as np

        name = getattr(value, "__name__", "")
        if getattr(np, name, None) is value and (name in _NUMPY_FUNCTIONS or isinstance(value, np.ufunc)):
            return f"numpy.{name}"
    return None


def _named_function(name: Any) -> Any:
    _check(isinstance(name, str), "function")
    module, _, attr = name.partition(".")
    if module == "builtins" and attr in _BUILTIN_FUNCTIONS:
        return _BUILTIN_FUNCTIONS[attr]
    if module == "numpy" and attr.isidentifier():
        import numpy as np

        value = getattr(np, attr, None)
        if attr in _NUMPY_FUNCTIONS or isinstance(value, np.ufunc):
            _check(value is not None and callable(value) and not isinstance(value, type), "function")
            return value
    raise WireError(f"unknown function {str(name)[:100]!r}")


_TYPES = {
    t.__name__: t
    for t in (
        int,
        float,
        complex,
        bool,
        str,
        bytes,
        bytearray,
        list,
        tuple,
        dict,
        set,
        frozenset,
        type(None),
        object,
        range,
        slice,
    )
}


def _encode_type(value: type) -> Any:
    """Builtin types and numpy's scalar types, by name (``isinstance(x, var0)``, ``astype(var0)``)."""
    if _TYPES.get(value.__name__) is value:
        return {"ty": value.__name__}
    if value.__module__ == "numpy":
        import numpy as np

        if getattr(np, value.__name__, None) is value and issubclass(value, np.generic):
            return {"ty": f"numpy.{value.__name__}"}
    return None


def _encode_numpy(value: Any, depth: int, recurse: Recurse) -> Any:
    import numpy as np

    if isinstance(value, np.ndarray):
        return {"nd": _array(np.asarray(value), depth, recurse)}
    if isinstance(value, np.dtype):
        return {"npdt": value.str} if _DTYPE.match(value.str) else None
    if isinstance(value, np.generic):
        dtype = value.dtype
        if dtype.kind in "Mm":
            return {"ns": [dtype.str, int(value.view("i8"))]}
        if dtype.kind in "biufcUS":
            return {"ns": [dtype.str, recurse(value.item(), depth + 1)]}
    return None


def _array(a: Any, depth: int, recurse: Recurse) -> dict[str, Any]:
    """A numpy array as {dtype, shape, data (flat, C order)}."""
    dtype = a.dtype
    if dtype.names is not None:  # a structured array (``to_records``): its fields, and rows of plain values
        fields = [[name, dtype.fields[name][0].str] for name in dtype.names]
        if not all(_FIELD.match(t) for _, t in fields) or dtype != _structured(fields):
            raise _Unencodable(str(dtype))
        rows = [[recurse(v, depth + 1) for v in row] for row in a.ravel().tolist()]
        return {"dtype": fields, "shape": list(a.shape), "data": rows}
    if not _DTYPE.match(dtype.str):
        raise _Unencodable(dtype.str)
    flat = a.ravel()
    if dtype.kind in "Mm":
        data = flat.view("i8").tolist()
    elif dtype.kind == "O":
        data = [recurse(v, depth + 1) for v in flat]
    else:
        data = [recurse(v, depth + 1) for v in flat.tolist()]
    return {"dtype": dtype.str, "shape": list(a.shape), "data": data}


def _encode_pandas(value: Any, depth: int, recurse: Recurse) -> Any:
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        columns = [_values(value.iloc[:, i], depth, recurse) for i in range(value.shape[1])]
        return {
            "pdf": {
                "columns": _index(value.columns, depth, recurse),
                "index": _index(value.index, depth, recurse),
                "data": columns,
            }
        }
    if isinstance(value, pd.Series):
        return {
            "pds": {
                "values": _values(value, depth, recurse),
                "index": _index(value.index, depth, recurse),
                "name": recurse(value.name, depth + 1),
            }
        }
    if isinstance(value, pd.Index):
        return {"pdi": _index(value, depth, recurse)}
    if value is pd.NaT:
        return {"pdt": None}
    if isinstance(value, pd.Timestamp):
        return {"pdt": [int(value.value), value.unit, None if value.tz is None else str(value.tz)]}
    if isinstance(value, pd.Timedelta):
        return {"pdd": [int(value.value), value.unit]}
    if value is pd.NA:
        return {"pna": 0}
    if isinstance(value, pd.api.extensions.ExtensionArray):
        return {"pda": _values(value, depth, recurse)}
    if isinstance(value, pd.Interval):
        return {"piv": [recurse(value.left, depth + 1), recurse(value.right, depth + 1), value.closed]}
    return None


def _index(index: Any, depth: int, recurse: Recurse) -> dict[str, Any]:
    import pandas as pd

    if isinstance(index, pd.RangeIndex):
        return {"range": [index.start, index.stop, index.step], "name": recurse(index.name, depth + 1)}
    if isinstance(index, pd.MultiIndex):
        return {
            "levels": [_index(level, depth + 1, recurse) for level in index.levels],
            "codes": [_array(c, depth, recurse) for c in index.codes],
            "names": [recurse(n, depth + 1) for n in index.names],
        }
    freq = getattr(index, "freqstr", None) if isinstance(index, pd.DatetimeIndex) else None
    return {"values": _values(index, depth, recurse), "name": recurse(index.name, depth + 1), "freq": freq}


def _values(column: Any, depth: int, recurse: Recurse) -> dict[str, Any]:
    """The values of a Series or an Index (a numpy array or one of pandas' extension arrays) with their dtype."""
    import numpy as np
    import pandas as pd

    dtype = column.dtype
    if isinstance(dtype, np.dtype):
        return {"np": _array(column.to_numpy(), depth, recurse)}
    array = getattr(column, "array", column)
    if isinstance(dtype, pd.CategoricalDtype):
        return {
            "cat": [
                _index(dtype.categories, depth, recurse),
                _array(np.asarray(array.codes), depth, recurse),
                bool(dtype.ordered),
            ]
        }
    if isinstance(dtype, pd.DatetimeTZDtype):
        return {"dtz": [dtype.unit, str(dtype.tz), array.asi8.tolist()]}
    if isinstance(dtype, pd.StringDtype):
        na = "nan" if dtype.na_value is not pd.NA else "NA"
        return {
            "str": [na, [None if v is pd.NA or (isinstance(v, float) and v != v) else str(v) for v in array]]
        }
    if isinstance(dtype, pd.IntervalDtype):
        return {
            "iv": [
                _index(pd.Index(array.left), depth, recurse),
                _index(pd.Index(array.right), depth, recurse),
                array.closed,
            ]
        }
    if str(dtype) in _MASKED:
        items = array.to_numpy(dtype=object, na_value=None)
        return {
            "masked": [
                str(dtype),
                [
                    None if v is None else recurse(v.item() if hasattr(v, "item") else v, depth + 1)
                    for v in items
                ],
            ]
        }
    raise _Unencodable(str(dtype))


# ------------------------------------------------------------------------------------------------ decode


def decode(tag: str, body: Any, depth: int, recurse: Recurse) -> Any:
    """Rebuild a value from its tag and body; ``WireError`` on anything malformed."""
    try:
        if tag in ("nd", "ns", "pdf", "pds", "pdi"):
            return _decode_arrays(tag, body, depth, recurse)
        if tag == "pdt":
            import pandas as pd

            if body is None:
                return pd.NaT
            value, unit, tz = _list(body, 3)
            _check(
                type(value) is int and _UNIT.match(str(unit)) is not None and (tz is None or _tz(tz)),
                "timestamp",
            )
            return (
                pd.Timestamp(value, unit="ns", tz="UTC").tz_convert(tz).as_unit(unit)
                if tz
                else pd.Timestamp(value, unit="ns").as_unit(unit)
            )
        if tag == "pdd":
            import pandas as pd

            value, unit = _list(body, 2)
            _check(type(value) is int and _UNIT.match(str(unit)) is not None, "timedelta")
            return pd.Timedelta(value, unit="ns").as_unit(unit)
        if tag == "pda":
            return _make_values(body, depth, recurse)
        if tag == "piv":
            import pandas as pd

            left, right, closed = _list(body, 3)
            _check(closed in ("left", "right", "both", "neither"), "interval")
            return pd.Interval(recurse(left, depth + 1), recurse(right, depth + 1), closed=closed)
        if tag == "sl":
            start, stop, step = (recurse(x, depth + 1) for x in _list(body, 3))
            return slice(start, stop, step)
        if tag == "pna":
            import pandas as pd

            return pd.NA
        if tag == "dt":
            kind, text = _list(body, 2)
            if kind == "timedelta":
                days, seconds, micro = _list(text, 3)
                _check(all(type(x) is int for x in (days, seconds, micro)), "timedelta")
                return _dt.timedelta(days=days, seconds=seconds, microseconds=micro)
            _check(isinstance(text, str) and len(text) < 64, "date")
            parse = {"datetime": _dt.datetime, "date": _dt.date, "time": _dt.time}.get(kind)
            _check(parse is not None, "date kind")
            return parse.fromisoformat(text)  # type: ignore[union-attr]
        if tag == "dec":
            _check(isinstance(body, str) and len(body) < 4400, "decimal")
            return decimal.Decimal(body)
        if tag == "ty":
            _check(isinstance(body, str), "type")
            if body in _TYPES:
                return _TYPES[body]
            import numpy as np

            name = body.removeprefix("numpy.")
            value = getattr(np, name, None) if body.startswith("numpy.") and name.isidentifier() else None
            _check(isinstance(value, type) and issubclass(value, np.generic), "type")
            return value
        if tag == "npdt":
            return _dtype(body)
        if tag == "rng":
            start, stop, step = _list(body, 3)
            _check(all(type(x) is int for x in (start, stop, step)) and step != 0, "range")
            return range(start, stop, step)
        if tag == "fn":
            return _named_function(body)
        if tag == "cb":
            caller = CALL_BACK
            _check(type(body) is int and caller is not None, "function")

            def stub(*args: Any, **kwargs: Any) -> Any:
                return caller(body, args, kwargs)  # type: ignore[misc]

            return stub
        if tag == "it":
            _check(type(body) is list, "iterator")
            return iter([recurse(v, depth + 1) for v in body])
    except WireError:
        raise
    except RecursionError:
        raise
    except (Exception, MemoryError) as e:  # whatever numpy or pandas make of malformed data: not a value
        raise WireError(f"malformed {tag!r} value: {type(e).__name__}: {str(e)[:200]}") from None
    raise WireError(f"unknown tag {tag!r}")


def _check(ok: Any, what: str) -> None:
    if not ok:
        raise WireError(f"malformed {what}")


def _list(body: Any, n: int) -> list:
    _check(type(body) is list and len(body) == n, "value")
    return body


def _dict(body: Any, keys: tuple[str, ...]) -> dict:
    _check(type(body) is dict and set(body) == set(keys), "value")
    return body


def _tz(tz: Any) -> bool:
    return isinstance(tz, str) and _TZ.match(tz) is not None and ".." not in tz


def _decode_arrays(tag: str, body: Any, depth: int, recurse: Recurse) -> Any:
    import numpy as np

    if tag == "nd":
        return _ndarray(body, depth, recurse)
    if tag == "ns":
        dtype_str, value = _list(body, 2)
        dtype = _dtype(dtype_str)
        _check(dtype.kind != "O", "numpy scalar")
        if dtype.kind in "Mm":
            _check(type(value) is int, "numpy scalar")
            return np.array([value], dtype="i8").view(dtype)[0]
        return np.array([recurse(value, depth + 1)], dtype=dtype)[0]
    import pandas as pd

    if tag == "pdi":
        return _make_index(body, depth, recurse)
    if tag == "pds":
        b = _dict(body, ("values", "index", "name"))
        values = _make_values(b["values"], depth, recurse)
        index = _make_index(b["index"], depth, recurse)
        _check(len(values) == len(index), "series length")
        return pd.Series(values, index=index, name=_name(b["name"], depth, recurse), copy=False)
    b = _dict(body, ("columns", "index", "data"))
    columns = _make_index(b["columns"], depth, recurse)
    index = _make_index(b["index"], depth, recurse)
    _check(type(b["data"]) is list and len(b["data"]) == len(columns), "frame columns")
    data = [_make_values(c, depth, recurse) for c in b["data"]]
    _check(all(len(c) == len(index) for c in data), "frame column length")
    # built on positions, then labelled: labels may repeat (duplicate columns, a non-unique index)
    frame = pd.DataFrame(dict(enumerate(data)), index=pd.RangeIndex(len(index)))
    frame.index = index
    frame.columns = columns
    return frame


def _name(data: Any, depth: int, recurse: Recurse) -> Any:
    name = recurse(data, depth + 1)
    hash(name)  # a label must be hashable (TypeError: malformed)
    return name


def _dtype(text: Any) -> Any:
    import numpy as np

    _check(isinstance(text, str) and _DTYPE.match(text) is not None, "dtype")
    return np.dtype(text)


_FIELD = re.compile(r"^[<>|=]?(?:b1|[iu][1248]|f(?:2|4|8)|c(?:8|16)|[US]\d{1,6}|O)$")


def _structured(fields: Any) -> Any:
    """A structured dtype from [[name, field dtype], ...]: named fields of plain kinds or objects, packed, at most
    64 (no sub-arrays, no nesting)."""
    import numpy as np

    _check(type(fields) is list and 0 < len(fields) <= 64, "structured dtype")
    _check(
        all(
            type(f) is list
            and len(f) == 2
            and type(f[0]) is str
            and 0 < len(f[0]) <= 64
            and type(f[1]) is str
            and _FIELD.match(f[1])
            for f in fields
        ),
        "structured dtype",
    )
    _check(len({f[0] for f in fields}) == len(fields), "structured dtype")
    return np.dtype([(name, kind) for name, kind in fields])


def _ndarray(body: Any, depth: int, recurse: Recurse) -> Any:
    import numpy as np

    b = _dict(body, ("dtype", "shape", "data"))
    structured = type(b["dtype"]) is list
    dtype = _structured(b["dtype"]) if structured else _dtype(b["dtype"])
    shape, data = b["shape"], b["data"]
    _check(
        type(shape) is list and len(shape) <= MAX_DIMS and all(type(n) is int and n >= 0 for n in shape),
        "shape",
    )
    _check(type(data) is list, "array data")
    count = 1
    for n in shape:
        count *= n
    _check(count == len(data), "array size")
    _check(count * max(dtype.itemsize, 1) <= MAX_ARRAY_BYTES, "array size (too large)")
    if structured:
        width = len(dtype.names)
        _check(all(type(r) is list and len(r) == width for r in data), "structured data")
        rows = [tuple(recurse(v, depth + 1) for v in r) for r in data]
        return np.array(rows, dtype=dtype).reshape(shape)
    if dtype.kind in "Mm":
        _check(all(type(v) is int for v in data), "datetime data")
        return np.array(data, dtype="i8").view(dtype).reshape(shape)
    values = [recurse(v, depth + 1) for v in data]
    if dtype.kind == "O":
        out = np.empty(count, dtype=object)
        for i, v in enumerate(values):
            out[i] = v
        return out.reshape(shape)
    if dtype.kind in "biufc":
        _check(all(type(v) in (bool, int, float, complex) for v in values), "numeric data")
    elif dtype.kind == "U":
        _check(all(type(v) is str for v in values), "string data")
    elif dtype.kind == "S":
        _check(all(type(v) is bytes for v in values), "bytes data")
    return np.array(values, dtype=dtype).reshape(shape)


def _make_values(body: Any, depth: int, recurse: Recurse) -> Any:
    import numpy as np
    import pandas as pd

    _check(type(body) is dict and len(body) == 1, "column")
    ((kind, v),) = body.items()
    if kind == "np":
        array = _ndarray(v, depth, recurse)
        _check(array.ndim == 1, "column shape")
        return array
    if kind == "cat":
        categories, codes, ordered = _list(v, 3)
        cats = _make_index(categories, depth, recurse)
        codes = _ndarray(codes, depth, recurse)
        _check(codes.ndim == 1 and codes.dtype.kind == "i" and type(ordered) is bool, "categorical")
        _check(((codes >= -1) & (codes < len(cats))).all(), "categorical codes")
        return pd.Categorical.from_codes(codes, dtype=pd.CategoricalDtype(cats, ordered=ordered))
    if kind == "dtz":
        unit, tz, i8 = _list(v, 3)
        _check(_UNIT.match(str(unit)) is not None and _tz(tz) and type(i8) is list, "datetime column")
        _check(all(type(x) is int for x in i8) and len(i8) * 8 <= MAX_ARRAY_BYTES, "datetime column")
        naive = np.array(i8, dtype="i8").view(f"M8[{unit}]")
        return pd.DatetimeIndex(naive).tz_localize("UTC").tz_convert(tz).array
    if kind == "str":
        na, values = _list(v, 2)
        _check(
            na in ("nan", "NA") and type(values) is list and all(x is None or type(x) is str for x in values),
            "string column",
        )
        dtype = pd.StringDtype(na_value=np.nan if na == "nan" else pd.NA)
        return pd.array(values, dtype=dtype)
    if kind == "iv":
        left, right, closed = _list(v, 3)
        _check(closed in ("left", "right", "both", "neither"), "interval column")
        return pd.arrays.IntervalArray.from_arrays(
            _make_index(left, depth, recurse), _make_index(right, depth, recurse), closed=closed
        )
    if kind == "masked":
        name, values = _list(v, 2)
        _check(name in _MASKED and type(values) is list, "nullable column")
        items = [None if x is None else recurse(x, depth + 1) for x in values]
        _check(all(x is None or type(x) in (bool, int, float) for x in items), "nullable column")
        return pd.array(items, dtype=name)
    raise WireError(f"unknown column kind {kind!r}")


def _make_index(body: Any, depth: int, recurse: Recurse) -> Any:
    import pandas as pd

    _check(type(body) is dict, "index")
    if "range" in body:
        b = _dict(body, ("range", "name"))
        start, stop, step = _list(b["range"], 3)
        _check(all(type(x) is int for x in (start, stop, step)) and step != 0, "range index")
        return pd.RangeIndex(start, stop, step, name=_name(b["name"], depth, recurse))
    if "levels" in body:
        b = _dict(body, ("levels", "codes", "names"))
        _check(
            type(b["levels"]) is list and type(b["codes"]) is list and type(b["names"]) is list, "multi-index"
        )
        _check(0 < len(b["levels"]) == len(b["codes"]) == len(b["names"]) <= MAX_DIMS, "multi-index")
        levels = [_make_index(level, depth + 1, recurse) for level in b["levels"]]
        codes = [_ndarray(c, depth, recurse) for c in b["codes"]]
        _check(all(c.ndim == 1 and c.dtype.kind == "i" for c in codes), "multi-index codes")
        _check(len({len(c) for c in codes}) == 1, "multi-index codes")
        names = [_name(n, depth, recurse) for n in b["names"]]
        return pd.MultiIndex(levels=levels, codes=codes, names=names, verify_integrity=True)
    b = _dict(body, ("values", "name", "freq"))
    values = _make_values(b["values"], depth, recurse)
    name = _name(b["name"], depth, recurse)
    freq = b["freq"]
    if freq is not None:
        _check(isinstance(freq, str) and len(freq) <= 32 and re.match(r"^[\w\-]+$", freq) is not None, "freq")
        return pd.DatetimeIndex(values, name=name, freq=freq)
    return pd.Index(values, name=name, dtype=values.dtype, copy=False)
