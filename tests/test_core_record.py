"""fastlog.Record, the core's record type: it must behave as the 5-tuple it replaced."""

from __future__ import annotations

import copy
import gc
import pickle
import tracemalloc

import pytest

from fastlog import Log, Record, _core


def test_record_is_the_core_type_and_log_read_yields_it(tmp_path):
    assert Record is _core.Record
    with Log(tmp_path / "log") as log:
        log.append(b"v", key=b"k", headers=[("h", b"x")], timestamp=5)
        log.append(b"w", timestamp=6)
        a, b = log.read(0)
    assert type(a) is Record and type(b) is Record
    assert a == Record(0, 5, b"k", b"v", [("h", b"x")])
    assert b == (1, 6, None, b"w", [])


def test_unpacks_indexes_and_compares_like_a_tuple():
    r = Record(7, 1000, b"k", b"v", [("a", b"1")])
    off, ts, key, value, headers = r
    assert (off, ts, key, value, headers) == (7, 1000, b"k", b"v", [("a", b"1")])
    assert len(r) == 5 and list(r) == [7, 1000, b"k", b"v", [("a", b"1")]]
    assert r[0] == 7 and r[3] == b"v" and r[-1] == [("a", b"1")] and r[1:3] == (1000, b"k")
    with pytest.raises(IndexError):
        r[5]
    assert r == (7, 1000, b"k", b"v", [("a", b"1")]) and (7, 1000, b"k", b"v", [("a", b"1")]) == r
    assert r != (7, 1000, b"k", b"v", []) and r != "record" and r != [7, 1000, b"k", b"v", []]
    assert Record(1, 0, None, None) < Record(2, 0, None, None) <= Record(2, 0, None, None)
    assert sorted([Record(3, 0, None, None), Record(1, 0, None, None)])[0].offset == 1
    with pytest.raises(TypeError):
        hash(r)  # headers is a list, as with the NamedTuple it replaced
    with pytest.raises(TypeError):
        _ = r < 3


def test_namedtuple_helpers_pickle_and_repr():
    r = Record(1, 2, None, b"v")
    assert Record._fields == ("offset", "timestamp", "key", "value", "headers")
    assert r._asdict() == {"offset": 1, "timestamp": 2, "key": None, "value": b"v", "headers": []}
    assert r._replace(value=b"w", key=b"k") == (1, 2, b"k", b"w", [])
    with pytest.raises(ValueError):
        r._replace(nope=1)
    for proto in range(pickle.HIGHEST_PROTOCOL + 1):
        assert pickle.loads(pickle.dumps(r, proto)) == r
    assert copy.deepcopy(r) == r
    assert repr(r) == "Record(offset=1, timestamp=2, key=None, value=b'v', headers=[])"


def test_fields_are_read_only_and_headers_made_once():
    r = Record(1, 2, b"k", b"v")
    for name in Record._fields:
        with pytest.raises(AttributeError):
            setattr(r, name, None)
    h = r.headers
    assert h == [] and r.headers is h  # made on first access, then kept
    h.append(("x", None))
    assert r.headers == [("x", None)] and r[4] == [("x", None)]
    # key and value are member slots: CPython 3.11 specialises `record.value` to an indexed load
    assert type(Record.__dict__["value"]).__name__ == "member_descriptor"
    assert type(Record.__dict__["key"]).__name__ == "member_descriptor"


def test_constructor_checks_offsets():
    with pytest.raises(OverflowError):
        Record(2**63, 0, None, None)
    with pytest.raises(TypeError):
        Record("0", 0, None, None)


def test_decoding_records_does_not_leak(tmp_path):
    batch = _core.build_batch([(b"k", b"v" * 100, [("h", b"x")], 1), (None, b"w", None, 2)] * 500)
    for _ in range(3):  # warm the free lists
        _core.iter_records(batch, record_type=Record)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(200):
            recs = _core.iter_records(batch, record_type=Record)
            assert recs[0].headers == [("h", b"x")] and recs[1].headers == []
            del recs
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 64 * 1024, f"{grown} bytes retained after decoding 200,000 records"
