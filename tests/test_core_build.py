"""The compiled core is the one loaded, and its CRC-32C agrees with the crc32c package."""

from __future__ import annotations

import importlib.machinery
import os
import zlib
from pathlib import Path

import crc32c as crc32c_pkg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastlog
from fastlog import _core


def test_compiled_extension_is_loaded() -> None:
    assert _core.__file__.endswith(".so"), _core.__file__
    assert isinstance(_core.__loader__, importlib.machinery.ExtensionFileLoader)
    # there is no pure-Python fallback to fall back to
    pkg_dir = os.path.dirname(fastlog.__file__)
    assert not os.path.exists(os.path.join(pkg_dir, "_core.py"))


def test_constants() -> None:
    assert _core.BATCH_HEADER_SIZE == 61
    assert _core.LOG_OVERHEAD == 12
    assert (
        _core.COMPRESSION_NONE,
        _core.COMPRESSION_GZIP,
        _core.COMPRESSION_SNAPPY,
        _core.COMPRESSION_LZ4,
        _core.COMPRESSION_ZSTD,
    ) == (0, 1, 2, 3, 4)
    assert issubclass(_core.CorruptRecordError, _core.CoreError)
    assert issubclass(_core.InvalidRecordError, _core.CoreError)
    assert issubclass(_core.CoreError, Exception)


def test_crc32c_check_value() -> None:
    # the standard check value of CRC-32C (RFC 3720, appendix B.4)
    assert _core.crc32c(b"123456789") == 0xE3069283
    assert _core._crc32c_software(b"123456789") == 0xE3069283
    assert _core.crc32c(b"") == 0
    # RFC 3720 B.4: 32 bytes of zeros, of 0xff, ascending
    assert _core.crc32c(bytes(32)) == 0x8A9136AA
    assert _core.crc32c(b"\xff" * 32) == 0x62A8AB43
    assert _core.crc32c(bytes(range(32))) == 0x46DD794E


def test_crc32c_is_not_crc32() -> None:
    data = b"fastlog"
    assert _core.crc32c(data) != zlib.crc32(data)


@pytest.mark.parametrize(
    "size",
    [
        1,
        7,
        8,
        9,
        63,
        767,
        768,
        769,
        1543,
        1544,
        4095,
        12287,
        12288,
        12289,
        13057,
        3 * 4096 * 5 + 13,
        1 << 20,
        (1 << 20) + 3,
    ],
)
def test_crc32c_sizes_around_stream_blocks(size: int) -> None:
    data = os.urandom(size)
    expected = crc32c_pkg.crc32c(data)
    assert _core.crc32c(data) == expected
    assert _core._crc32c_software(data) == expected
    # unaligned starts exercise the byte-wise prologue
    mv = memoryview(data)[3:]
    assert _core.crc32c(mv) == crc32c_pkg.crc32c(bytes(mv))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=40000), st.integers(0, 40000), st.integers(0, 2**32 - 1))
def test_crc32c_matches_package_and_chains(data: bytes, cut: int, seed: int) -> None:
    cut = min(cut, len(data))
    expected = crc32c_pkg.crc32c(data)
    assert _core.crc32c(data) == expected
    assert _core._crc32c_software(data) == expected
    assert _core.crc32c(data[cut:], _core.crc32c(data[:cut])) == expected
    assert _core.crc32c(data, seed) == crc32c_pkg.crc32c(data, seed)
    assert _core._crc32c_software(data, seed) == crc32c_pkg.crc32c(data, seed)


def test_crc32c_accepts_buffers() -> None:
    data = os.urandom(1000)
    expected = crc32c_pkg.crc32c(data)
    assert _core.crc32c(bytearray(data)) == expected
    assert _core.crc32c(memoryview(data)) == expected
    with pytest.raises(TypeError):
        _core.crc32c("not bytes")  # type: ignore[arg-type]
    with pytest.raises(BufferError):
        _core.crc32c(memoryview(data)[::2])


def test_hardware_flag_is_bool() -> None:
    assert isinstance(_core._crc32c_hardware(), bool)


def test_stub_matches_the_module() -> None:
    """_core.pyi is the contract others code against: same names, same parameters."""
    import ast
    import inspect

    stub = ast.parse((Path(fastlog.__file__).parent / "_core.pyi").read_text())
    declared = {}
    for node in stub.body:
        if isinstance(node, ast.FunctionDef):
            declared[node.name] = [a.arg for a in node.args.args]
        elif isinstance(node, ast.ClassDef):
            declared[node.name] = None
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            declared[node.target.id] = None
    public = {n for n in dir(_core) if not n.startswith("_") or n in declared}
    public -= {"__builtins__", "__doc__", "__file__", "__loader__", "__name__", "__package__"}
    public -= {"__spec__", "__test__"}
    assert set(declared) == public
    for name, params in declared.items():
        if params is not None:
            assert list(inspect.signature(getattr(_core, name)).parameters) == params, name
    info_fields = {
        n.target.id
        for c in stub.body
        if isinstance(c, ast.ClassDef) and c.name == "BatchInfo"
        for n in c.body
        if isinstance(n, ast.AnnAssign)
    }
    [info] = _core.scan_batches(_core.build_batch([(None, b"v", None, 1)]))
    assert all(hasattr(info, f) for f in info_fields | {"last_offset"})


@pytest.mark.parametrize(
    ("codec", "low", "high"), [(1, 1, 9), (3, 1, 17), (4, -5, 19)], ids=["gzip", "lz4", "zstd"]
)
def test_compression_levels_are_applied_and_readable(codec: int, low: int, high: int) -> None:
    values = [b"%06d " % i + b"abcdefgh" * (i % 17) for i in range(2000)]
    fast = _core.build_batch(values, compression=codec, compression_level=low)
    small = _core.build_batch(values, compression=codec, compression_level=high)
    assert len(small) < len(fast)  # the level reached the codec
    for batch in (fast, small):
        assert [r[3] for r in _core.decode_records(batch)] == values
        (info,) = _core.scan_batches(batch)
        assert info.compression == codec


@pytest.mark.parametrize(
    ("codec", "level"),
    [(1, 0), (1, 10), (1, -2), (3, 0), (3, 18), (4, 23), (4, -131073), (1, "6"), (4, True)],
)
def test_compression_levels_outside_kafkas_ranges_are_refused(codec: int, level: object) -> None:
    with pytest.raises(ValueError):
        _core.build_batch([b"v"], compression=codec, compression_level=level)


def test_compression_level_is_ignored_where_kafka_has_none() -> None:
    # snappy has no levels; an uncompressed batch compresses nothing
    for codec in (0, 2):
        batch = _core.build_batch([b"v" * 100], compression=codec, compression_level=5)
        assert [r[3] for r in _core.decode_records(batch)] == [b"v" * 100]
