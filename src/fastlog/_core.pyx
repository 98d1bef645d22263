# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""fastlog's Cython core: the hot paths over Kafka record batch v2 bytes.

Owns: batch header validation and walking (scan_batches, valid_prefix_length), in-place offset,
timestamp and leader-epoch rewriting (assign_offsets, set_partition_leader_epoch), record
encoding and decoding (build_batch, decode_records, iter_records), binary search over the offset
and time indexes, the sendfile(2) loop, and CRC-32C. The contract is src/fastlog/_core.pyi.

Every reader works on a Py_buffer (any contiguous buffer: bytes, bytearray, memoryview, mmap,
numpy) through a raw pointer. Bounds checking is off for the whole module, so every length read
from the input is checked against the bytes that remain before it is used: a hostile batch gets a
CorruptRecordError, never a read past the end of the buffer.
"""

import time as _time

cimport cython

import cramjam as _cramjam

from cpython.buffer cimport (
    PyBUF_SIMPLE,
    PyBUF_WRITABLE,
    PyBuffer_Release,
    PyObject_GetBuffer,
)
from cpython.bytearray cimport (
    PyByteArray_AS_STRING,
    PyByteArray_CheckExact,
    PyByteArray_FromStringAndSize,
)
from cpython.bytes cimport (
    PyBytes_AS_STRING,
    PyBytes_CheckExact,
    PyBytes_FromStringAndSize,
    PyBytes_GET_SIZE,
)
from cpython.list cimport PyList_Append
from cpython.object cimport PyObject_RichCompare
from cpython.tuple cimport PyTuple_CheckExact, PyTuple_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.unicode cimport PyUnicode_Check, PyUnicode_DecodeUTF8
from libc.errno cimport EAGAIN, EINTR, errno
from libc.stdint cimport INT64_MAX, INT64_MIN, int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy, strerror
from posix.types cimport off_t

include "_crc32c.pxi"

cdef extern from "Python.h":
    ctypedef struct PyObject
    const char* PyUnicode_AsUTF8AndSize(object s, Py_ssize_t* size) except NULL
    object PyMemoryView_FromMemory(char* mem, Py_ssize_t size, int flags)
    int PyBUF_READ

cdef extern from *:
    """
    /* A decoded record: a plain 5-tuple, or an instance of a tuple subclass (a NamedTuple such as
       fastlog.records.Record) allocated directly, as structseq does, so the caller need not
       convert each record in Python. */
    static PyObject *fl_record(PyObject *rtype, PyObject *a, PyObject *b, PyObject *c,
                               PyObject *d, PyObject *e) {
        PyObject *r = rtype ? ((PyTypeObject *)rtype)->tp_alloc((PyTypeObject *)rtype, 5)
                            : PyTuple_New(5);
        if (r == NULL) return NULL;
        Py_INCREF(a); PyTuple_SET_ITEM(r, 0, a);
        Py_INCREF(b); PyTuple_SET_ITEM(r, 1, b);
        Py_INCREF(c); PyTuple_SET_ITEM(r, 2, c);
        Py_INCREF(d); PyTuple_SET_ITEM(r, 3, d);
        Py_INCREF(e); PyTuple_SET_ITEM(r, 4, e);
        return r;
    }

    /* Expose object fields of a type as member descriptors (T_OBJECT_EX). Cython exposes cdef
       attributes as getset properties, which CPython 3.11's adaptive interpreter cannot
       specialise: a member slot makes `record.value` a LOAD_ATTR_SLOT, an indexed load. */
    #include <structmember.h>
    static PyMemberDef fl_record_members[3];
    /* Where in instance o the field holding `needle` lies (Cython has no offsetof for object
       fields): scanned once at import, with distinct sentinels as the field values. */
    static Py_ssize_t fl_slot_of(PyObject *o, PyObject *needle) {
        Py_ssize_t n = Py_TYPE(o)->tp_basicsize;
        for (Py_ssize_t off = sizeof(PyObject); off + (Py_ssize_t)sizeof(PyObject *) <= n;
             off += sizeof(PyObject *))
            if (*(PyObject **)((char *)o + off) == needle) return off;
        PyErr_SetString(PyExc_RuntimeError, "Record field not found in its instance layout");
        return -1;
    }
    static int fl_object_members(PyTypeObject *t, Py_ssize_t key_off, Py_ssize_t value_off) {
        const char *names[2] = {"key", "value"};
        Py_ssize_t offs[2] = {key_off, value_off};
        for (int i = 0; i < 2; i++) {
            fl_record_members[i].name = names[i];
            fl_record_members[i].type = T_OBJECT_EX;
            fl_record_members[i].offset = offs[i];
            fl_record_members[i].flags = READONLY;
            fl_record_members[i].doc = NULL;
            PyObject *d = PyDescr_NewMember(t, &fl_record_members[i]);
            if (d == NULL) return -1;
            int rc = PyDict_SetItemString(t->tp_dict, names[i], d);
            Py_DECREF(d);
            if (rc < 0) return -1;
        }
        PyType_Modified(t);
        return 0;
    }
    """
    object fl_record(PyObject* rtype, object a, object b, object c, object d, object e)
    int fl_object_members(type t, Py_ssize_t key_off, Py_ssize_t value_off) except -1
    Py_ssize_t fl_slot_of(object o, object needle) except -1

cdef extern from "<errno.h>" nogil:
    int EWOULDBLOCK

cdef extern from "<sys/sendfile.h>" nogil:
    ssize_t sendfile(int out_fd, int in_fd, off_t* offset, size_t count)


BATCH_HEADER_SIZE = 61
LOG_OVERHEAD = 12
RECORD_BATCH_MAGIC = 2
COMPRESSION_NONE = 0
COMPRESSION_GZIP = 1
COMPRESSION_SNAPPY = 2
COMPRESSION_LZ4 = 3
COMPRESSION_ZSTD = 4
TIMESTAMP_CREATE_TIME = 0
TIMESTAMP_LOG_APPEND_TIME = 1
# Bound on a decompressed batch (compression bombs, CVE-2023-34455). Kafka caps the compressed
# batch at message.max.bytes (1 MiB by default); 64 MiB leaves room for highly compressible data.
MAX_UNCOMPRESSED_DEFAULT = 64 * 1024 * 1024


class CoreError(Exception):
    """Base of the core's errors (fastlog.errors re-exports these)."""


class CorruptRecordError(CoreError):
    """A batch or record failed validation (bad magic, length, CRC, varint ...)."""


class InvalidRecordError(CoreError):
    """Input from the caller that cannot be encoded (value not bytes, ...)."""


cdef enum:
    HEADER = 61
    OVERHEAD = 12
    MIN_BATCH_LENGTH = 49  # HEADER - OVERHEAD: a batch with no records
    MAX_SENDFILE = 0x7ffff000  # Linux moves at most this much per sendfile call

    # positions within a batch
    P_BASE_OFFSET = 0
    P_LENGTH = 8
    P_EPOCH = 12
    P_MAGIC = 16
    P_CRC = 17
    P_ATTRIBUTES = 21
    P_LAST_DELTA = 23
    P_BASE_TS = 27
    P_MAX_TS = 35
    P_PRODUCER_ID = 43
    P_PRODUCER_EPOCH = 51
    P_BASE_SEQ = 53
    P_COUNT = 57

    # results of _check_batch
    B_OK = 0
    B_PARTIAL = 1  # fewer bytes than the batch needs: the tail of a torn write or a cut fetch
    B_SHORT = 2
    B_MAGIC = 3
    B_CODEC = 4
    B_NEGATIVE = 5
    B_CRC = 6


cdef struct Header:
    int64_t base_offset
    int32_t batch_length
    int32_t leader_epoch
    int8_t magic
    uint32_t crc
    int16_t attributes
    int32_t last_offset_delta
    int64_t base_timestamp
    int64_t max_timestamp
    int64_t producer_id
    int16_t producer_epoch
    int32_t base_sequence
    int32_t record_count


# ---------------------------------------------------------------- big-endian fields

cdef inline uint16_t _u16(const uint8_t* p) noexcept nogil:
    return (<uint16_t>p[0] << 8) | p[1]


cdef inline uint32_t _u32(const uint8_t* p) noexcept nogil:
    return (<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16) | (<uint32_t>p[2] << 8) | p[3]


cdef inline uint64_t _u64(const uint8_t* p) noexcept nogil:
    return (<uint64_t>_u32(p) << 32) | _u32(p + 4)


cdef inline void _put_u16(uint8_t* p, uint16_t v) noexcept nogil:
    p[0] = <uint8_t>(v >> 8)
    p[1] = <uint8_t>v


cdef inline void _put_u32(uint8_t* p, uint32_t v) noexcept nogil:
    p[0] = <uint8_t>(v >> 24)
    p[1] = <uint8_t>(v >> 16)
    p[2] = <uint8_t>(v >> 8)
    p[3] = <uint8_t>v


cdef inline void _put_u64(uint8_t* p, uint64_t v) noexcept nogil:
    _put_u32(p, <uint32_t>(v >> 32))
    _put_u32(p + 4, <uint32_t>v)


# ---------------------------------------------------------------- zigzag varints

cdef inline int _read_varint(
    const uint8_t* p, Py_ssize_t end, Py_ssize_t* pos, int64_t* out, int max_bytes
) noexcept nogil:
    """Zigzag varint (max_bytes 5: int32) or varlong (max_bytes 10) at p[pos[0]], before end.

    Returns 0, or -1 if it runs past end, is longer than max_bytes or overflows its type.
    """
    cdef uint64_t raw = 0
    cdef uint64_t b
    cdef Py_ssize_t i = pos[0]
    cdef int shift = 0
    cdef int n
    for n in range(max_bytes):
        if i >= end:
            return -1
        b = p[i]
        i += 1
        raw |= (b & 0x7F) << shift
        if b < 0x80:
            if max_bytes == 5 and (raw >> 32) != 0:
                return -1
            if n == 9 and b > 1:
                return -1
            pos[0] = i
            out[0] = <int64_t>((raw >> 1) ^ (-(raw & 1)))
            return 0
        shift += 7
    return -1


cdef inline uint64_t _zigzag(int64_t v) noexcept nogil:
    return (<uint64_t>v << 1) ^ <uint64_t>(v >> 63)


cdef inline Py_ssize_t _uvarint_size(uint64_t v) noexcept nogil:
    cdef Py_ssize_t n = 1
    while v >= 0x80:
        v >>= 7
        n += 1
    return n


cdef inline uint8_t* _put_uvarint(uint8_t* p, uint64_t v) noexcept nogil:
    while v >= 0x80:
        p[0] = <uint8_t>((v & 0x7F) | 0x80)
        p += 1
        v >>= 7
    p[0] = <uint8_t>v
    return p + 1


def _encode_varint(int64_t value) -> bytes:
    """Zigzag varint encoding of value (test helper)."""
    cdef uint8_t tmp[10]
    cdef uint8_t* end = _put_uvarint(tmp, _zigzag(value))
    return PyBytes_FromStringAndSize(<char*>tmp, end - tmp)


def _decode_varint(data, int max_bytes=10) -> tuple:
    """(value, bytes consumed) of the zigzag varint at the start of data (test helper)."""
    cdef Py_buffer view
    cdef Py_ssize_t pos = 0
    cdef int64_t value = 0
    cdef int rc
    if max_bytes != 5 and max_bytes != 10:
        raise ValueError("max_bytes must be 5 (varint) or 10 (varlong)")
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        rc = _read_varint(<const uint8_t*>view.buf, view.len, &pos, &value, max_bytes)
    finally:
        PyBuffer_Release(&view)
    if rc < 0:
        raise CorruptRecordError("invalid varint")
    return value, pos


# ---------------------------------------------------------------- CRC-32C

def crc32c(data, uint32_t crc=0) -> int:
    """CRC-32C of data, continuing from crc (the value for the bytes before), as crc32c.crc32c."""
    cdef Py_buffer view
    cdef uint32_t result
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        if view.len >= 65536:
            with nogil:
                result = fl_crc32c(crc, <const uint8_t*>view.buf, <size_t>view.len)
        else:
            result = fl_crc32c(crc, <const uint8_t*>view.buf, <size_t>view.len)
    finally:
        PyBuffer_Release(&view)
    return result


def _crc32c_software(data, uint32_t crc=0) -> int:
    """CRC-32C by the table path only, so tests can check it on CPUs that have SSE4.2."""
    cdef Py_buffer view
    cdef uint32_t result
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        result = fl_crc32c_sw(crc, <const uint8_t*>view.buf, <size_t>view.len)
    finally:
        PyBuffer_Release(&view)
    return result


def _crc32c_hardware() -> bool:
    """Whether crc32c() uses the SSE4.2 instruction on this CPU."""
    return fl_crc_have_hw != 0


# ---------------------------------------------------------------- batch headers

cdef inline void _read_header(const uint8_t* p, Header* h) noexcept nogil:
    h.base_offset = <int64_t>_u64(p + P_BASE_OFFSET)
    h.batch_length = <int32_t>_u32(p + P_LENGTH)
    h.leader_epoch = <int32_t>_u32(p + P_EPOCH)
    h.magic = <int8_t>p[P_MAGIC]
    h.crc = _u32(p + P_CRC)
    h.attributes = <int16_t>_u16(p + P_ATTRIBUTES)
    h.last_offset_delta = <int32_t>_u32(p + P_LAST_DELTA)
    h.base_timestamp = <int64_t>_u64(p + P_BASE_TS)
    h.max_timestamp = <int64_t>_u64(p + P_MAX_TS)
    h.producer_id = <int64_t>_u64(p + P_PRODUCER_ID)
    h.producer_epoch = <int16_t>_u16(p + P_PRODUCER_EPOCH)
    h.base_sequence = <int32_t>_u32(p + P_BASE_SEQ)
    h.record_count = <int32_t>_u32(p + P_COUNT)


cdef int _check_batch(
    const uint8_t* p, Py_ssize_t avail, bint validate_crc, Header* h
) noexcept nogil:
    """Validate the batch at p with avail bytes left in the buffer; fills h when it gets far enough."""
    cdef int32_t length
    if avail < OVERHEAD:
        return B_PARTIAL
    length = <int32_t>_u32(p + P_LENGTH)
    if length < MIN_BATCH_LENGTH:
        h.batch_length = length
        return B_SHORT
    if avail > P_MAGIC and p[P_MAGIC] != 2:
        h.magic = <int8_t>p[P_MAGIC]
        return B_MAGIC
    if <Py_ssize_t>length > avail - OVERHEAD:
        h.batch_length = length
        return B_PARTIAL
    _read_header(p, h)
    if (h.attributes & 0x07) > 4:
        return B_CODEC
    if h.last_offset_delta < 0 or h.record_count < 0:
        return B_NEGATIVE
    if validate_crc:
        if fl_crc32c(0, p + P_ATTRIBUTES, <size_t>(<Py_ssize_t>length + OVERHEAD - P_ATTRIBUTES)) != h.crc:
            return B_CRC
    return B_OK


cdef object _batch_error(int code, Py_ssize_t position, const uint8_t* p, Py_ssize_t avail, Header* h):
    if code == B_PARTIAL:
        if avail < OVERHEAD:
            msg = f"truncated batch: {avail} bytes left, a batch needs at least {HEADER}"
        else:
            msg = (f"truncated batch: batchLength {h.batch_length} needs "
                   f"{<Py_ssize_t>h.batch_length + OVERHEAD} bytes, {avail} left")
    elif code == B_SHORT:
        msg = f"batchLength {h.batch_length} is below the minimum {MIN_BATCH_LENGTH}"
    elif code == B_MAGIC:
        msg = f"unsupported magic {h.magic} (only record batch v2, magic 2)"
    elif code == B_CODEC:
        msg = f"unknown compression codec {h.attributes & 0x07}"
    elif code == B_NEGATIVE:
        msg = f"negative lastOffsetDelta {h.last_offset_delta} or recordCount {h.record_count}"
    elif code == B_CRC:
        actual = fl_crc32c(0, p + P_ATTRIBUTES, <size_t>(<Py_ssize_t>h.batch_length + OVERHEAD - P_ATTRIBUTES))
        msg = f"CRC-32C mismatch: batch says {h.crc:#010x}, bytes give {actual:#010x}"
    else:
        msg = f"invalid batch (code {code})"
    return CorruptRecordError(f"record batch at position {position}: {msg}")


cdef class BatchInfo:
    """Header fields of one validated batch; plain attributes, cheap to create."""

    cdef public Py_ssize_t position
    cdef public Py_ssize_t size
    cdef public int64_t base_offset
    cdef public int32_t last_offset_delta
    cdef public int32_t partition_leader_epoch
    cdef public int attributes
    cdef public int compression
    cdef public int timestamp_type
    cdef public bint is_transactional
    cdef public bint is_control
    cdef public int64_t base_timestamp
    cdef public int64_t max_timestamp
    cdef public int64_t producer_id
    cdef public int producer_epoch
    cdef public int32_t base_sequence
    cdef public int32_t record_count

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    def __repr__(self) -> str:
        return (
            f"BatchInfo(position={self.position}, size={self.size}, base_offset={self.base_offset}, "
            f"last_offset_delta={self.last_offset_delta}, record_count={self.record_count}, "
            f"compression={self.compression}, timestamp_type={self.timestamp_type}, "
            f"max_timestamp={self.max_timestamp}, producer_id={self.producer_id}, "
            f"producer_epoch={self.producer_epoch}, base_sequence={self.base_sequence}, "
            f"is_transactional={self.is_transactional}, is_control={self.is_control})"
        )


cdef BatchInfo _make_info(Py_ssize_t position, Header* h):
    cdef BatchInfo info = BatchInfo.__new__(BatchInfo)
    info.position = position
    info.size = <Py_ssize_t>h.batch_length + OVERHEAD
    info.base_offset = h.base_offset
    info.last_offset_delta = h.last_offset_delta
    info.partition_leader_epoch = h.leader_epoch
    info.attributes = h.attributes
    info.compression = h.attributes & 0x07
    info.timestamp_type = (h.attributes >> 3) & 1
    info.is_transactional = (h.attributes >> 4) & 1
    info.is_control = (h.attributes >> 5) & 1
    info.base_timestamp = h.base_timestamp
    info.max_timestamp = h.max_timestamp
    info.producer_id = h.producer_id
    info.producer_epoch = h.producer_epoch
    info.base_sequence = h.base_sequence
    info.record_count = h.record_count
    return info


def scan_batches(buf, bint validate_crc=True, bint stop_at_corruption=False) -> list:
    """Walk a buffer of concatenated v2 batches and return each batch's header (see _core.pyi)."""
    cdef Py_buffer view
    cdef const uint8_t* p
    cdef Py_ssize_t pos = 0, n
    cdef Header h
    cdef int code
    cdef list out = []
    PyObject_GetBuffer(buf, &view, PyBUF_SIMPLE)
    try:
        p = <const uint8_t*>view.buf
        n = view.len
        while pos < n:
            code = _check_batch(p + pos, n - pos, validate_crc, &h)
            if code != B_OK:
                if stop_at_corruption:
                    break
                raise _batch_error(code, pos, p + pos, n - pos, &h)
            PyList_Append(out, _make_info(pos, &h))
            pos += <Py_ssize_t>h.batch_length + OVERHEAD
    finally:
        PyBuffer_Release(&view)
    return out


def valid_prefix_length(buf, bint validate_crc=True) -> int:
    """Bytes of buf covered by whole, valid batches from position 0 (log recovery)."""
    cdef Py_buffer view
    cdef const uint8_t* p
    cdef Py_ssize_t pos = 0, n
    cdef Header h
    PyObject_GetBuffer(buf, &view, PyBUF_SIMPLE)
    try:
        p = <const uint8_t*>view.buf
        n = view.len
        with nogil:
            while pos < n:
                if _check_batch(p + pos, n - pos, validate_crc, &h) != B_OK:
                    break
                pos += <Py_ssize_t>h.batch_length + OVERHEAD
    finally:
        PyBuffer_Release(&view)
    return pos


cdef int _get_writable(object buf, Py_buffer* view) except -1:
    try:
        PyObject_GetBuffer(buf, view, PyBUF_SIMPLE | PyBUF_WRITABLE)
    except BufferError as e:
        raise TypeError(
            f"buf must be a writable contiguous buffer (bytearray, writable memoryview), "
            f"not {type(buf).__name__}: {e}"
        ) from None
    return 0


cdef int _check_structure(const uint8_t* p, Py_ssize_t n) except -1:
    """Whole batches with sane lengths and magic, so a rewrite pass can trust them (no CRC)."""
    cdef Py_ssize_t pos = 0
    cdef Header h
    cdef int code
    while pos < n:
        code = _check_batch(p + pos, n - pos, False, &h)
        if code != B_OK:
            raise _batch_error(code, pos, p + pos, n - pos, &h)
        pos += <Py_ssize_t>h.batch_length + OVERHEAD
    return 0


def assign_offsets(buf, int64_t base_offset, int64_t log_append_time=-1) -> tuple:
    """Rewrite baseOffset of every batch in buf in place, consecutively from base_offset (see .pyi).

    Returns (last_offset, max_timestamp, offset_of_max_timestamp); offset_of_max_timestamp is the
    last offset of the first batch holding the maximum timestamp, as Kafka's LogSegment records it.
    With no batches: (base_offset - 1, -1, -1).
    """
    cdef Py_buffer view
    cdef uint8_t* p
    cdef Py_ssize_t pos = 0, n, size
    cdef int64_t next_offset = base_offset, last_offset, max_ts = -1, max_ts_offset = -1
    cdef int64_t batch_max
    cdef int32_t delta, length
    cdef uint16_t attributes
    cdef bint first = True
    if base_offset < 0:
        raise ValueError(f"base_offset must be >= 0, not {base_offset}")
    _get_writable(buf, &view)
    try:
        p = <uint8_t*>view.buf
        n = view.len
        _check_structure(p, n)
        with nogil:
            while pos < n:
                length = <int32_t>_u32(p + pos + P_LENGTH)
                size = <Py_ssize_t>length + OVERHEAD
                delta = <int32_t>_u32(p + pos + P_LAST_DELTA)
                _put_u64(p + pos + P_BASE_OFFSET, <uint64_t>next_offset)
                # unsigned: no C undefined behaviour even for absurd offsets
                last_offset = <int64_t>(<uint64_t>next_offset + <uint64_t>delta)
                if log_append_time >= 0:
                    attributes = _u16(p + pos + P_ATTRIBUTES) | 0x08
                    _put_u16(p + pos + P_ATTRIBUTES, attributes)
                    _put_u64(p + pos + P_MAX_TS, <uint64_t>log_append_time)
                    _put_u32(p + pos + P_CRC,
                             fl_crc32c(0, p + pos + P_ATTRIBUTES, <size_t>(size - P_ATTRIBUTES)))
                batch_max = <int64_t>_u64(p + pos + P_MAX_TS)
                if first or batch_max > max_ts:
                    max_ts = batch_max
                    max_ts_offset = last_offset
                    first = False
                next_offset = <int64_t>(<uint64_t>last_offset + 1)
                pos += size
    finally:
        PyBuffer_Release(&view)
    return next_offset - 1, max_ts, max_ts_offset


def set_partition_leader_epoch(buf, int32_t epoch) -> None:
    """Set partitionLeaderEpoch of every batch in buf in place (not under the CRC)."""
    cdef Py_buffer view
    cdef uint8_t* p
    cdef Py_ssize_t pos = 0, n
    _get_writable(buf, &view)
    try:
        p = <uint8_t*>view.buf
        n = view.len
        _check_structure(p, n)
        while pos < n:
            _put_u32(p + pos + P_EPOCH, <uint32_t>epoch)
            pos += <Py_ssize_t>(<int32_t>_u32(p + pos + P_LENGTH)) + OVERHEAD
    finally:
        PyBuffer_Release(&view)


# ---------------------------------------------------------------- decompression

_XERIAL_MAGIC = b"\x82SNAPPY\x00"
_XERIAL_HEADER = 16  # magic, int32 version, int32 minimum compatible version
_XERIAL_BLOCK = 32 * 1024  # block size of the Java client's SnappyOutputStream


cdef object _corrupt_payload(str codec, object exc, Py_ssize_t limit):
    return CorruptRecordError(
        f"{codec} payload is invalid or decompresses to more than max_uncompressed={limit} bytes"
        + (f": {exc}" if exc is not None else "")
    )


cdef tuple _snappy_decompress(object src, Py_ssize_t limit):
    """Kafka snappy: xerial-framed (Java clients) or a raw block (librdkafka)."""
    cdef Py_ssize_t n = len(src), pos, blen, total = 0, offset = 0, ulen, got
    cdef const uint8_t* p
    cdef Py_buffer view
    cdef list blocks = []
    raw_len = _cramjam.snappy.decompress_raw_len
    raw_into = _cramjam.snappy.decompress_raw_into
    try:
        if n >= _XERIAL_HEADER and src[:8] == _XERIAL_MAGIC:
            PyObject_GetBuffer(src, &view, PyBUF_SIMPLE)
            try:
                p = <const uint8_t*>view.buf
                pos = _XERIAL_HEADER
                while pos < n:
                    if n - pos < 4:
                        raise CorruptRecordError("snappy: truncated xerial block length")
                    blen = <int32_t>_u32(p + pos)
                    pos += 4
                    if blen < 0 or blen > n - pos:
                        raise CorruptRecordError(f"snappy: xerial block length {blen} out of range")
                    block = src[pos:pos + blen]
                    ulen = raw_len(block)
                    total += ulen
                    if total > limit:
                        raise _corrupt_payload("snappy", None, limit)
                    blocks.append((block, ulen))
                    pos += blen
            finally:
                PyBuffer_Release(&view)
            out = PyByteArray_FromStringAndSize(NULL, total)
            mv = memoryview(out)
            for block, ulen in blocks:
                got = raw_into(block, mv[offset:offset + ulen])
                if got != ulen:
                    raise CorruptRecordError("snappy: block shorter than its declared length")
                offset += ulen
            return out, total
        ulen = raw_len(src)
        if ulen > limit:
            raise _corrupt_payload("snappy", None, limit)
        out = PyByteArray_FromStringAndSize(NULL, ulen)
        got = raw_into(src, out)
        if got != ulen:
            raise CorruptRecordError("snappy: block shorter than its declared length")
        return out, ulen
    except _cramjam.DecompressionError as e:
        raise _corrupt_payload("snappy", e, limit) from None


cdef tuple _decompress(int codec, object src, Py_ssize_t limit):
    """(bytearray, length) of the decompressed records, never more than limit bytes."""
    cdef Py_ssize_t n = len(src), size, got
    if codec == 2:
        return _snappy_decompress(src, limit)
    if codec == 1:
        name, into = "gzip", _cramjam.gzip.decompress_into
    elif codec == 3:
        name, into = "lz4", _cramjam.lz4.decompress_into
    else:
        name, into = "zstd", _cramjam.zstd.decompress_into
    # cramjam's decompress_into refuses (rather than overruns) an output buffer that is too small,
    # which is what bounds a bomb; grow the buffer from a guess until the payload fits or the limit.
    size = n * 8 + 65536
    if codec == 1 and n >= 18:
        # a single-member gzip stream ends with ISIZE, its length mod 2**32: usually exact
        mv = memoryview(src)
        size = mv[n - 4] | (mv[n - 3] << 8) | (mv[n - 2] << 16) | (mv[n - 1] << 24)
        if size == 0:
            size = 16
    if size > limit:
        size = limit
    while True:
        out = PyByteArray_FromStringAndSize(NULL, size)
        try:
            got = into(src, out)
        except _cramjam.DecompressionError as e:
            if size >= limit:
                raise _corrupt_payload(name, e, limit) from None
            size = max(size * 4, 4096) if size < limit // 4 else limit
            continue
        return out, got


# ---------------------------------------------------------------- record decoding

cdef int _check_limit(Py_ssize_t max_uncompressed) except -1:
    if max_uncompressed < 0:
        raise ValueError(f"max_uncompressed must be >= 0, not {max_uncompressed}")
    return 0


cdef object _record_error(str what, Py_ssize_t index, Py_ssize_t position):
    return CorruptRecordError(f"record {index} at byte {position} of the records: {what}")


cdef struct Shape:
    PyObject* rtype  # NULL: plain tuples, else the tuple subclass to allocate
    bint tuple_headers  # headers as a tuple, () when none, instead of a list
    bint core_record  # records are fastlog Record objects (rtype unused)


@cython.final
@cython.freelist(4096)
@cython.no_gc
cdef class Record:
    """One record of a log, as read back: offset, timestamp, key, value, headers.

    A compact immutable object rather than a tuple, because Log.read makes one per record and a
    tuple subclass costs a GC-tracked allocation, an int per offset and a list per record even
    when nothing uses them: here offset and timestamp are C integers, the headers list is made
    on first access, instances come from a free list and are not tracked by the cyclic GC (key,
    value and the header pairs are bytes and str; a headers list a caller makes refer back to
    its record is the one cycle that would leak). It behaves as the 5-tuple it replaces:
    ``offset, ts, key, value, headers = record``, ``record[3]``, ``len(record)``, equality with
    tuples and other records, ``_fields``, ``_asdict()``, ``_replace()``, pickling.
    """

    cdef readonly int64_t offset
    cdef readonly int64_t timestamp
    cdef readonly object key
    cdef readonly object value
    cdef object _headers

    _fields = ("offset", "timestamp", "key", "value", "headers")

    def __init__(self, int64_t offset, int64_t timestamp, key, value, headers=None):
        self.offset = offset
        self.timestamp = timestamp
        self.key = key
        self.value = value
        self._headers = headers

    @property
    def headers(self) -> list:
        if self._headers is None:
            self._headers = []
        return self._headers

    cdef tuple _tuple(self):
        return (self.offset, self.timestamp, self.key, self.value, self.headers)

    def __len__(self) -> int:
        return 5

    def __iter__(self):
        return iter(self._tuple())

    def __getitem__(self, i):
        return self._tuple()[i]

    def __richcmp__(self, other, int op):
        if isinstance(other, Record):
            other = (<Record>other)._tuple()
        elif not isinstance(other, tuple):
            return NotImplemented
        return PyObject_RichCompare(self._tuple(), other, op)

    __hash__ = None  # headers is a list, as it was when Record was a NamedTuple

    def __repr__(self) -> str:
        return (f"Record(offset={self.offset}, timestamp={self.timestamp}, key={self.key!r}, "
                f"value={self.value!r}, headers={self.headers!r})")

    def __reduce__(self):
        return (Record, self._tuple())

    def _asdict(self) -> dict:
        return dict(zip(self._fields, self._tuple()))

    def _replace(self, **changes) -> Record:
        d = self._asdict()
        for k, v in changes.items():
            if k not in d:
                raise ValueError(f"Got unexpected field names: {[k]!r}")
            d[k] = v
        return Record(**d)


_k, _v = object(), object()
_probe = Record(0, 0, _k, _v)
fl_object_members(Record, fl_slot_of(_probe, _k), fl_slot_of(_probe, _v))
del _probe, _k, _v


cdef int _parse_records(
    list out,
    const uint8_t* p,
    Py_ssize_t end,
    Header* h,
    int64_t start_offset,
    Py_ssize_t* budget,
    Shape* shape,
) except -1:
    """Decode h.record_count records from p[0:end] into out, each checked against its bounds.

    Records below start_offset are hopped over by their length: only the length, timestampDelta
    and offsetDelta varints are read (and bounds-checked), as a fetch skips them, so a lookup of
    the last record of a batch costs a few ns per record before it, not a full decode.
    """
    cdef Py_ssize_t pos = 0, rec_start, rec_end
    cdef int64_t length, ts_delta, off_delta, klen, vlen, nh, hklen, hvlen, j
    cdef int64_t offset, timestamp, last_ts = 0
    cdef int32_t i
    cdef bint log_append_time = (h.attributes >> 3) & 1
    cdef list hl
    cdef Record rec
    # records of a batch mostly share one timestamp (a producer's linger, LogAppendTime, bare
    # values stamped once): one int object for a run of equal timestamps, not one per record
    ts_obj = None
    for i in range(h.record_count):
        if budget[0] == 0:
            return 0
        rec_start = pos
        if _read_varint(p, end, &pos, &length, 5) < 0:
            raise _record_error("invalid length varint", i, rec_start)
        if length < 0 or length > end - pos:
            raise _record_error(f"length {length} exceeds the {end - pos} bytes left", i, rec_start)
        rec_end = pos + <Py_ssize_t>length
        if pos >= rec_end:
            raise _record_error("empty record", i, rec_start)
        pos += 1  # record attributes: unused in v2
        if _read_varint(p, rec_end, &pos, &ts_delta, 10) < 0:
            raise _record_error("invalid timestampDelta varlong", i, rec_start)
        if _read_varint(p, rec_end, &pos, &off_delta, 5) < 0:
            raise _record_error("invalid offsetDelta varint", i, rec_start)
        # Kafka wraps on overflow; so do we, through unsigned arithmetic (no C undefined behaviour)
        offset = <int64_t>(<uint64_t>h.base_offset + <uint64_t>off_delta)
        if offset < start_offset:
            pos = rec_end  # within [pos, end]: checked above
            continue
        if log_append_time:
            timestamp = h.max_timestamp
        else:
            timestamp = <int64_t>(<uint64_t>h.base_timestamp + <uint64_t>ts_delta)
        if _read_varint(p, rec_end, &pos, &klen, 5) < 0:
            raise _record_error("invalid key length varint", i, rec_start)
        if klen < -1 or klen > rec_end - pos:
            raise _record_error(f"key length {klen} out of range", i, rec_start)
        if klen >= 0:
            key = PyBytes_FromStringAndSize(<const char*>p + pos, <Py_ssize_t>klen)
            pos += <Py_ssize_t>klen
        else:
            key = None
        if _read_varint(p, rec_end, &pos, &vlen, 5) < 0:
            raise _record_error("invalid value length varint", i, rec_start)
        if vlen < -1 or vlen > rec_end - pos:
            raise _record_error(f"value length {vlen} out of range", i, rec_start)
        if vlen >= 0:
            value = PyBytes_FromStringAndSize(<const char*>p + pos, <Py_ssize_t>vlen)
            pos += <Py_ssize_t>vlen
        else:
            value = None
        if _read_varint(p, rec_end, &pos, &nh, 5) < 0:
            raise _record_error("invalid header count varint", i, rec_start)
        # a header takes at least 2 bytes: refuse counts the record cannot hold before looping
        if nh < 0 or nh > (rec_end - pos) // 2:
            raise _record_error(f"header count {nh} out of range", i, rec_start)
        hl = [] if nh or not (shape.tuple_headers or shape.core_record) else None
        for j in range(nh):
            if _read_varint(p, rec_end, &pos, &hklen, 5) < 0:
                raise _record_error("invalid header key length varint", i, rec_start)
            if hklen < 0 or hklen > rec_end - pos:
                raise _record_error(f"header key length {hklen} out of range", i, rec_start)
            # invalid UTF-8 becomes U+FFFD, as Java's Utils.utf8 reads header keys: Kafka
            # stores such keys (librdkafka takes them as raw bytes), so a reader must not fail
            hkey = PyUnicode_DecodeUTF8(<const char*>p + pos, <Py_ssize_t>hklen, "replace")
            pos += <Py_ssize_t>hklen
            if _read_varint(p, rec_end, &pos, &hvlen, 5) < 0:
                raise _record_error("invalid header value length varint", i, rec_start)
            if hvlen < -1 or hvlen > rec_end - pos:
                raise _record_error(f"header value length {hvlen} out of range", i, rec_start)
            if hvlen >= 0:
                hvalue = PyBytes_FromStringAndSize(<const char*>p + pos, <Py_ssize_t>hvlen)
                pos += <Py_ssize_t>hvlen
            else:
                hvalue = None
            PyList_Append(hl, (hkey, hvalue))
        if pos != rec_end:
            raise _record_error(
                f"length says {length} bytes, its fields end {rec_end - pos} bytes short", i, rec_start)
        if shape.core_record:
            rec = Record.__new__(Record)
            rec.offset = offset
            rec.timestamp = timestamp
            rec.key = key
            rec.value = value
            rec._headers = hl
            PyList_Append(out, rec)
            if budget[0] > 0:
                budget[0] -= 1
            continue
        if ts_obj is None or timestamp != last_ts:
            ts_obj = timestamp
            last_ts = timestamp
        if not shape.tuple_headers:
            headers = hl
        elif hl is None:
            headers = ()  # CPython's empty tuple is a singleton: no allocation per record
        else:
            headers = tuple(hl)
        PyList_Append(
            out, fl_record(shape.rtype, offset, ts_obj, key, value, headers))
        if budget[0] > 0:
            budget[0] -= 1
    if pos != end:
        raise CorruptRecordError(
            f"{end - pos} bytes left over after the batch's {h.record_count} records")
    return 0


cdef int _decode_batch(
    list out,
    const uint8_t* p,
    Header* h,
    Py_ssize_t limit,
    int64_t start_offset,
    Py_ssize_t* budget,
    Shape* shape,
) except -1:
    """Records of the validated batch at p (header in h) into out."""
    cdef Py_ssize_t size = <Py_ssize_t>h.batch_length + OVERHEAD
    cdef int codec = h.attributes & 0x07
    cdef Py_ssize_t plain_len
    if codec == 0:
        return _parse_records(out, p + HEADER, size - HEADER, h, start_offset, budget, shape)
    if h.record_count == 0 and size == HEADER:
        return 0
    # a memoryview over the batch's own memory: the caller holds the buffer for our whole call
    src = PyMemoryView_FromMemory(<char*>p + HEADER, size - HEADER, PyBUF_READ)
    plain, plain_len = _decompress(codec, src, limit)
    if plain_len > len(plain):
        raise CorruptRecordError("decompressor reported more bytes than it was given room for")
    return _parse_records(
        out, <const uint8_t*>PyByteArray_AS_STRING(plain), plain_len, h, start_offset, budget,
        shape)


cdef int _shape(Shape* shape, object record_type, bint tuple_headers) except -1:
    """How records are built: record_type None gives plain tuples, else the tuple subclass."""
    shape.rtype = NULL
    shape.tuple_headers = tuple_headers
    shape.core_record = record_type is Record
    if record_type is None or record_type is tuple or shape.core_record:
        return 0
    if not isinstance(record_type, type) or not issubclass(record_type, tuple):
        raise TypeError(f"record_type must be a tuple subclass (a NamedTuple), not {record_type!r}")
    shape.rtype = <PyObject*>record_type
    return 0


def decode_records(batch, Py_ssize_t max_uncompressed=MAX_UNCOMPRESSED_DEFAULT,
                   record_type=None, bint validate_crc=True, bint tuple_headers=False) -> list:
    """Decode the records of ONE batch (at position 0) into (offset, timestamp, key, value, headers).

    The batch is validated first (length, magic, CRC-32C unless validate_crc=False: bytes the log
    checked on append, as Kafka serves a fetch without re-checking); bytes after it are ignored.
    """
    cdef Py_buffer view
    cdef Header h
    cdef int code
    cdef list out = []
    cdef Py_ssize_t budget = -1
    cdef Shape shape
    _check_limit(max_uncompressed)
    _shape(&shape, record_type, tuple_headers)
    PyObject_GetBuffer(batch, &view, PyBUF_SIMPLE)
    try:
        code = _check_batch(<const uint8_t*>view.buf, view.len, validate_crc, &h)
        if code != B_OK:
            raise _batch_error(code, 0, <const uint8_t*>view.buf, view.len, &h)
        _decode_batch(out, <const uint8_t*>view.buf, &h, max_uncompressed, INT64_MIN, &budget,
                      &shape)
    finally:
        PyBuffer_Release(&view)
    return out


def iter_records(buf, int64_t start_offset=0, Py_ssize_t max_records=-1,
                 Py_ssize_t max_uncompressed=MAX_UNCOMPRESSED_DEFAULT, record_type=None,
                 bint validate_crc=True, bint tuple_headers=False) -> list:
    """decode_records over concatenated batches (see .pyi). A trailing partial batch is ignored,
    as Kafka clients ignore the cut-off batch at the end of a fetch; any other corruption raises."""
    cdef Py_buffer view
    cdef const uint8_t* p
    cdef Py_ssize_t pos = 0, n
    cdef Header h
    cdef int code
    cdef list out = []
    cdef Py_ssize_t budget = max_records if max_records >= 0 else -1
    cdef int64_t last
    cdef Shape shape
    _check_limit(max_uncompressed)
    _shape(&shape, record_type, tuple_headers)
    PyObject_GetBuffer(buf, &view, PyBUF_SIMPLE)
    try:
        p = <const uint8_t*>view.buf
        n = view.len
        while pos < n and budget != 0:
            code = _check_batch(p + pos, n - pos, validate_crc, &h)
            if code == B_PARTIAL:
                break
            if code != B_OK:
                raise _batch_error(code, pos, p + pos, n - pos, &h)
            # wrapping add (as Java's): hostile offsets must not be C undefined behaviour
            last = <int64_t>(<uint64_t>h.base_offset + <uint64_t>h.last_offset_delta)
            if not (h.attributes & 0x20) and last >= start_offset:
                _decode_batch(out, p + pos, &h, max_uncompressed, start_offset, &budget, &shape)
            pos += <Py_ssize_t>h.batch_length + OVERHEAD
    finally:
        PyBuffer_Release(&view)
    return out


# ---------------------------------------------------------------- record validation (produce path)

cdef enum:
    R_OK = 0
    R_LENGTH = 1
    R_FIELD = 2
    R_KEY = 3
    R_VALUE = 4
    R_HEADERS = 5
    R_HEADER = 6
    R_SIZE = 7
    R_TRAILING = 8
    R_OFFSET_DELTA = 9
    R_NO_KEY = 10
    R_TIMESTAMP = 11


cdef int _walk_records(
    const uint8_t* p, Py_ssize_t end, Header* h, bint require_keys, int64_t ts_min,
    int64_t ts_max, int32_t* failed, int64_t* detail
) noexcept nogil:
    """Parse every record of a batch without building objects (what Kafka's LogValidator checks)."""
    cdef Py_ssize_t pos = 0, rec_end
    cdef int64_t length, ts_delta, off_delta, klen, vlen, nh, hklen, hvlen, j, ts
    cdef int32_t i
    cdef bint check_ts = not ((h.attributes >> 3) & 1)
    for i in range(h.record_count):
        failed[0] = i
        if _read_varint(p, end, &pos, &length, 5) < 0 or length <= 0 or length > end - pos:
            return R_LENGTH
        rec_end = pos + <Py_ssize_t>length
        pos += 1
        if (_read_varint(p, rec_end, &pos, &ts_delta, 10) < 0
                or _read_varint(p, rec_end, &pos, &off_delta, 5) < 0):
            return R_FIELD
        if off_delta != i:
            detail[0] = off_delta
            return R_OFFSET_DELTA
        if check_ts:
            ts = <int64_t>(<uint64_t>h.base_timestamp + <uint64_t>ts_delta)
            if ts < ts_min or ts > ts_max:
                detail[0] = ts
                return R_TIMESTAMP
        if _read_varint(p, rec_end, &pos, &klen, 5) < 0 or klen < -1 or klen > rec_end - pos:
            return R_KEY
        if klen == -1 and require_keys:
            return R_NO_KEY
        if klen > 0:
            pos += <Py_ssize_t>klen
        if _read_varint(p, rec_end, &pos, &vlen, 5) < 0 or vlen < -1 or vlen > rec_end - pos:
            return R_VALUE
        if vlen > 0:
            pos += <Py_ssize_t>vlen
        if _read_varint(p, rec_end, &pos, &nh, 5) < 0 or nh < 0 or nh > (rec_end - pos) // 2:
            return R_HEADERS
        for j in range(nh):
            if _read_varint(p, rec_end, &pos, &hklen, 5) < 0 or hklen < 0 or hklen > rec_end - pos:
                return R_HEADER
            pos += <Py_ssize_t>hklen
            if _read_varint(p, rec_end, &pos, &hvlen, 5) < 0 or hvlen < -1 or hvlen > rec_end - pos:
                return R_HEADER
            if hvlen > 0:
                pos += <Py_ssize_t>hvlen
        if pos != rec_end:
            return R_SIZE
    if pos != end:
        return R_TRAILING
    return R_OK


cdef int _validate_batch(
    const uint8_t* p, Py_ssize_t position, Header* h, bint require_keys, int64_t ts_min,
    int64_t ts_max, Py_ssize_t limit
) except -1:
    cdef Py_ssize_t size = <Py_ssize_t>h.batch_length + OVERHEAD
    cdef int codec = h.attributes & 0x07
    cdef int32_t failed = 0
    cdef int64_t detail = 0
    cdef int code
    cdef const uint8_t* records
    cdef Py_ssize_t records_len
    if h.record_count == 0 or h.last_offset_delta != h.record_count - 1:
        raise InvalidRecordError(
            f"record batch at position {position}: recordCount {h.record_count} does not match "
            f"lastOffsetDelta {h.last_offset_delta}")
    if codec == 0:
        records = p + HEADER
        records_len = size - HEADER
        with nogil:
            code = _walk_records(records, records_len, h, require_keys, ts_min, ts_max, &failed, &detail)
    else:
        src = PyMemoryView_FromMemory(<char*>p + HEADER, size - HEADER, PyBUF_READ)
        plain, records_len = _decompress(codec, src, limit)
        if records_len > len(plain):
            raise CorruptRecordError("decompressor reported more bytes than it was given room for")
        records = <const uint8_t*>PyByteArray_AS_STRING(plain)
        code = _walk_records(records, records_len, h, require_keys, ts_min, ts_max, &failed, &detail)
    if code == R_OK:
        return 0
    where = f"record batch at position {position}, record {failed}"
    if code == R_NO_KEY:
        raise InvalidRecordError(f"{where}: no key (a compacted topic needs one on every record)")
    if code == R_OFFSET_DELTA:
        raise InvalidRecordError(f"{where}: offsetDelta {detail}, expected {failed}")
    if code == R_TIMESTAMP:
        raise InvalidRecordError(
            f"{where}: timestamp {detail} is outside the accepted range [{ts_min}, {ts_max}]")
    what = {
        R_LENGTH: "invalid record length",
        R_FIELD: "invalid timestampDelta or offsetDelta",
        R_KEY: "invalid key length",
        R_VALUE: "invalid value length",
        R_HEADERS: "invalid header count",
        R_HEADER: "invalid header",
        R_SIZE: "record length does not match its fields",
        R_TRAILING: "bytes left over after the last record",
    }.get(code, "invalid record")
    raise CorruptRecordError(f"{where}: {what}")


def validate_records(
    buf,
    bint require_keys=False,
    int64_t timestamp_min=INT64_MIN,
    int64_t timestamp_max=INT64_MAX,
    bint validate_crc=True,
    Py_ssize_t max_uncompressed=MAX_UNCOMPRESSED_DEFAULT,
) -> int:
    """Record-level validation of every batch in buf, as Kafka's LogValidator does on produce
    (see .pyi). Returns the number of records. No per-record Python objects."""
    cdef Py_buffer view
    cdef const uint8_t* p
    cdef Py_ssize_t pos = 0, n, total = 0
    cdef Header h
    cdef int code
    _check_limit(max_uncompressed)
    PyObject_GetBuffer(buf, &view, PyBUF_SIMPLE)
    try:
        p = <const uint8_t*>view.buf
        n = view.len
        while pos < n:
            code = _check_batch(p + pos, n - pos, validate_crc, &h)
            if code != B_OK:
                raise _batch_error(code, pos, p + pos, n - pos, &h)
            _validate_batch(p + pos, pos, &h, require_keys, timestamp_min, timestamp_max,
                            max_uncompressed)
            total += h.record_count
            pos += <Py_ssize_t>h.batch_length + OVERHEAD
    finally:
        PyBuffer_Release(&view)
    return total


# ---------------------------------------------------------------- record encoding

cdef Py_ssize_t _blob_size(object o, str what) except -2:
    """Length of a bytes-like key/value (-1 for None)."""
    cdef Py_buffer view
    cdef Py_ssize_t n
    if o is None:
        return -1
    if PyBytes_CheckExact(o):
        return PyBytes_GET_SIZE(o)
    if PyUnicode_Check(o):
        raise InvalidRecordError(f"{what} must be bytes-like or None, not str (encode it first)")
    try:
        PyObject_GetBuffer(o, &view, PyBUF_SIMPLE)
    except (TypeError, BufferError):
        raise InvalidRecordError(
            f"{what} must be a contiguous bytes-like object or None, not {type(o).__name__}"
        ) from None
    n = view.len
    PyBuffer_Release(&view)
    return n


cdef uint8_t* _put_blob(uint8_t* dst, uint8_t* limit, object o, Py_ssize_t n) except NULL:
    """Write varint length and bytes of o (n from _blob_size); refuse to pass limit."""
    cdef Py_buffer view
    if limit - dst < _uvarint_size(_zigzag(n)) + (n if n > 0 else 0):
        raise InvalidRecordError("record changed size while being encoded")
    dst = _put_uvarint(dst, _zigzag(n))
    if n < 0:
        return dst
    if PyBytes_CheckExact(o):
        if PyBytes_GET_SIZE(o) != n:
            raise InvalidRecordError("record changed size while being encoded")
        memcpy(dst, PyBytes_AS_STRING(o), <size_t>n)
    else:
        PyObject_GetBuffer(o, &view, PyBUF_SIMPLE)
        try:
            if view.len != n:
                raise InvalidRecordError("record changed size while being encoded")
            memcpy(dst, view.buf, <size_t>n)
        finally:
            PyBuffer_Release(&view)
    return dst + n


cdef inline bint _is_bare(object rec):
    return (rec is None or PyBytes_CheckExact(rec) or PyByteArray_CheckExact(rec)
            or type(rec) is memoryview)


cdef inline tuple _unpack_record(object rec, Py_ssize_t i):
    if PyTuple_CheckExact(rec) and PyTuple_GET_SIZE(rec) == 4:
        return <tuple>rec  # immutable: no copy needed
    if not isinstance(rec, (tuple, list)) or len(rec) != 4:
        raise InvalidRecordError(
            f"record {i} must be a (key, value, headers, timestamp_ms) tuple or a bytes-like "
            f"value, not {rec!r:.80}")
    return tuple(rec)


cdef int64_t _timestamp(object ts, int64_t now, Py_ssize_t i) except? -2:
    if ts is None:
        return now
    # the error messages are formatted only here: formatting them per record cost ~30 ns each
    if not isinstance(ts, int) or isinstance(ts, bool):
        where = f"record {i}: " if i >= 0 else ""
        raise InvalidRecordError(f"{where}timestamp must be an int (ms) or None, not {ts!r:.80}")
    if ts < -1 or ts > 0x7FFFFFFFFFFFFFFF:
        where = f"record {i}: " if i >= 0 else ""
        raise InvalidRecordError(f"{where}timestamp {ts} out of range (-1 or ms since epoch)")
    return ts


cdef list _header_list(object headers, Py_ssize_t i):
    if headers is None:
        return None
    if isinstance(headers, (str, bytes)):
        raise InvalidRecordError(f"record {i}: headers must be a sequence of (str, bytes) pairs")
    try:
        hl = list(headers)
    except TypeError:
        raise InvalidRecordError(
            f"record {i}: headers must be a sequence of (str, bytes) pairs, not {type(headers).__name__}"
        ) from None
    for pair in hl:
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise InvalidRecordError(f"record {i}: header {pair!r:.80} is not a (name, value) pair")
        if not PyUnicode_Check(pair[0]):
            raise InvalidRecordError(
                f"record {i}: header name must be str, not {type(pair[0]).__name__}")
    return hl


def build_batch(
    records,
    int64_t base_offset=0,
    int compression=0,
    int64_t producer_id=-1,
    int producer_epoch=-1,
    int base_sequence=-1,
    bint is_transactional=False,
    bint is_control=False,
    int partition_leader_epoch=-1,
    int timestamp_type=0,
    timestamp=None,
    compression_level=None,
) -> bytes:
    """Encode one v2 batch from (key, value, headers, timestamp_ms) tuples (see _core.pyi).

    A bare bytes-like item (or None) is a value-only record stamped `timestamp`; a timestamp of
    None means now. Compressed batches use gzip, xerial-framed snappy (as the Java client writes
    it), the LZ4 frame format or zstd, via cramjam.
    """
    cdef list recs
    cdef Py_ssize_t n, i, k, body, total = 0, klen, vlen, hklen, hvlen
    cdef int64_t now, ts, bare_ts, base_ts = 0, max_ts = -1
    cdef int64_t* stamps = NULL
    cdef Py_ssize_t* bodies = NULL
    cdef const char* hname
    cdef uint8_t* w
    cdef uint8_t* limit
    cdef uint8_t* start
    cdef uint8_t* rec_end
    cdef Py_buffer cview
    cdef int16_t attributes
    cdef list hl

    if compression < 0 or compression > 4:
        raise InvalidRecordError(f"unknown compression codec {compression} (0-4)")
    if timestamp_type not in (0, 1):
        raise InvalidRecordError(f"timestamp_type must be 0 (CreateTime) or 1 (LogAppendTime)")
    if not -32768 <= producer_epoch <= 32767:
        raise InvalidRecordError(f"producer_epoch {producer_epoch} does not fit int16")
    try:
        recs = list(records)
    except TypeError:
        raise InvalidRecordError(f"records must be a sequence, not {type(records).__name__}") from None
    n = len(recs)
    if n == 0:
        raise InvalidRecordError("a batch needs at least one record")
    if n > 0x7FFFFFFF:
        raise InvalidRecordError("too many records for one batch")
    now = <int64_t>(_time.time() * 1000)
    bare_ts = _timestamp(timestamp, now, -1)
    attributes = <int16_t>(compression | (timestamp_type << 3) | (is_transactional << 4)
                           | (is_control << 5))

    stamps = <int64_t*>PyMem_Malloc(n * sizeof(int64_t))
    bodies = <Py_ssize_t*>PyMem_Malloc(n * sizeof(Py_ssize_t))
    if stamps == NULL or bodies == NULL:
        PyMem_Free(stamps)
        PyMem_Free(bodies)
        raise MemoryError()
    try:
        # pass 1: sizes, so the batch is written once into memory of the right size
        for i in range(n):
            rec = recs[i]
            if PyBytes_CheckExact(rec):
                # the common case, a bare bytes value: sized without any Python call
                vlen = PyBytes_GET_SIZE(rec)
                if i == 0:
                    base_ts = bare_ts
                if bare_ts > max_ts:
                    max_ts = bare_ts
                stamps[i] = bare_ts
                body = (3 + _uvarint_size(_zigzag(bare_ts - base_ts)) + _uvarint_size(_zigzag(i))
                        + _uvarint_size(_zigzag(vlen)) + vlen)
                if body > 0x7FFFFFFF - HEADER:
                    raise InvalidRecordError(f"record {i} is too large ({body} bytes)")
                bodies[i] = body
                total += _uvarint_size(_zigzag(body)) + body
                if total > 0x7FFFFFFF - HEADER:
                    raise InvalidRecordError(f"batch is too large ({total} bytes of records)")
                continue
            if _is_bare(rec):
                # a value-only record: no per-record tuple needed from the caller
                key, value, headers, ts = None, rec, None, bare_ts
            else:
                key, value, headers, tsobj = _unpack_record(rec, i)
                ts = _timestamp(tsobj, now, i)
            if i == 0:
                base_ts = ts
            if ts > max_ts:
                max_ts = ts
            stamps[i] = ts
            klen = _blob_size(key, "key")
            vlen = _blob_size(value, "value")
            body = (1 + _uvarint_size(_zigzag(ts - base_ts)) + _uvarint_size(_zigzag(i))
                    + _uvarint_size(_zigzag(klen)) + (klen if klen > 0 else 0)
                    + _uvarint_size(_zigzag(vlen)) + (vlen if vlen > 0 else 0))
            hl = _header_list(headers, i)
            if hl is None:
                body += 1
            else:
                body += _uvarint_size(_zigzag(len(hl)))
                for pair in hl:
                    PyUnicode_AsUTF8AndSize(pair[0], &hklen)
                    hvlen = _blob_size(pair[1], "header value")
                    body += (_uvarint_size(_zigzag(hklen)) + hklen
                             + _uvarint_size(_zigzag(hvlen)) + (hvlen if hvlen > 0 else 0))
            if body > 0x7FFFFFFF - HEADER:
                raise InvalidRecordError(f"record {i} is too large ({body} bytes)")
            bodies[i] = body
            total += _uvarint_size(_zigzag(body)) + body
            if total > 0x7FFFFFFF - HEADER:
                raise InvalidRecordError(f"batch is too large ({total} bytes of records)")

        # pass 2: write the records; straight after the header when uncompressed
        if compression == 0:
            out = PyBytes_FromStringAndSize(NULL, HEADER + total)
            start = <uint8_t*>PyBytes_AS_STRING(out) + HEADER
        else:
            raw = PyByteArray_FromStringAndSize(NULL, total)
            start = <uint8_t*>PyByteArray_AS_STRING(raw)
        w = start
        limit = start + total
        for i in range(n):
            rec = recs[i]
            if PyBytes_CheckExact(rec):
                # attributes, timestampDelta, offsetDelta, key -1, value, no headers; bodies[i]
                # (pass 1) bounds every write: the value must still be the size pass 1 saw
                vlen = PyBytes_GET_SIZE(rec)
                if (limit - w < _uvarint_size(_zigzag(bodies[i])) + bodies[i]
                        or bodies[i] != (3 + _uvarint_size(_zigzag(stamps[i] - base_ts))
                                         + _uvarint_size(_zigzag(i)) + _uvarint_size(_zigzag(vlen))
                                         + vlen)):
                    raise InvalidRecordError("record changed size while being encoded")
                w = _put_uvarint(w, _zigzag(bodies[i]))
                w[0] = 0
                w = _put_uvarint(w + 1, _zigzag(stamps[i] - base_ts))
                w = _put_uvarint(w, _zigzag(i))
                w[0] = 1  # zigzag(-1): null key
                w = _put_uvarint(w + 1, _zigzag(vlen))
                memcpy(w, PyBytes_AS_STRING(rec), <size_t>vlen)
                w += vlen
                w[0] = 0  # no headers
                w += 1
                continue
            if _is_bare(rec):
                key, value, headers = None, rec, None
            else:
                key, value, headers, tsobj = _unpack_record(rec, i)
            # pass 1 sized every field; the checks below make a mismatch an error, not an overrun
            if limit - w < _uvarint_size(_zigzag(bodies[i])) + bodies[i]:
                raise InvalidRecordError("record changed size while being encoded")
            w = _put_uvarint(w, _zigzag(bodies[i]))
            rec_end = w + bodies[i]
            w[0] = 0
            w += 1
            w = _put_uvarint(w, _zigzag(stamps[i] - base_ts))
            w = _put_uvarint(w, _zigzag(i))
            w = _put_blob(w, rec_end, key, _blob_size(key, "key"))
            w = _put_blob(w, rec_end, value, _blob_size(value, "value"))
            hl = _header_list(headers, i)
            k = len(hl) if hl is not None else 0
            if rec_end - w < _uvarint_size(_zigzag(k)):
                raise InvalidRecordError("record changed size while being encoded")
            w = _put_uvarint(w, _zigzag(k))
            if hl is not None:
                for pair in hl:
                    hname = PyUnicode_AsUTF8AndSize(pair[0], &hklen)
                    if rec_end - w < _uvarint_size(_zigzag(hklen)) + hklen:
                        raise InvalidRecordError("record changed size while being encoded")
                    w = _put_uvarint(w, _zigzag(hklen))
                    memcpy(w, hname, <size_t>hklen)
                    w += hklen
                    w = _put_blob(w, rec_end, pair[1], _blob_size(pair[1], "header value"))
            if w != rec_end:
                raise InvalidRecordError("record changed size while being encoded")
        if w != limit:
            raise InvalidRecordError("record changed size while being encoded")
    finally:
        PyMem_Free(stamps)
        PyMem_Free(bodies)

    if compression != 0:
        payload = _compress(compression, raw, compression_level)
        PyObject_GetBuffer(payload, &cview, PyBUF_SIMPLE)
        try:
            if cview.len > 0x7FFFFFFF - HEADER:
                raise InvalidRecordError("compressed batch is too large")
            out = PyBytes_FromStringAndSize(NULL, HEADER + cview.len)
            memcpy(PyBytes_AS_STRING(out) + HEADER, cview.buf, <size_t>cview.len)
        finally:
            PyBuffer_Release(&cview)

    w = <uint8_t*>PyBytes_AS_STRING(out)
    total = PyBytes_GET_SIZE(out)
    _put_u64(w + P_BASE_OFFSET, <uint64_t>base_offset)
    _put_u32(w + P_LENGTH, <uint32_t>(total - OVERHEAD))
    _put_u32(w + P_EPOCH, <uint32_t>partition_leader_epoch)
    w[P_MAGIC] = 2
    _put_u16(w + P_ATTRIBUTES, <uint16_t>attributes)
    _put_u32(w + P_LAST_DELTA, <uint32_t>(n - 1))
    _put_u64(w + P_BASE_TS, <uint64_t>base_ts)
    _put_u64(w + P_MAX_TS, <uint64_t>max_ts)
    _put_u64(w + P_PRODUCER_ID, <uint64_t>producer_id)
    _put_u16(w + P_PRODUCER_EPOCH, <uint16_t>producer_epoch)
    _put_u32(w + P_BASE_SEQ, <uint32_t>base_sequence)
    _put_u32(w + P_COUNT, <uint32_t>n)
    _put_u32(w + P_CRC, fl_crc32c(0, w + P_ATTRIBUTES, <size_t>(total - P_ATTRIBUTES)))
    return out


# Kafka's compression.<codec>.level ranges (KIP-390); gzip's -1 is zlib's default (6)
_LEVELS = {1: (-1, 9), 3: (1, 17), 4: (-131072, 22)}


cdef object _compress(int codec, object raw, object level=None):
    if level is not None and codec in _LEVELS:
        lo, hi = _LEVELS[codec]
        if (isinstance(level, bool) or not isinstance(level, int) or not lo <= level <= hi
                or (codec == 1 and level == 0)):
            raise ValueError(f"compression level {level!r} is outside [{lo}, {hi}] for this codec")
    if codec == 1:
        if level is None or level == -1:
            return _cramjam.gzip.compress(raw)
        return _cramjam.gzip.compress(raw, level=level)
    if codec == 2:
        return _xerial_snappy(raw)  # snappy has no levels
    if codec == 3:
        return _cramjam.lz4.compress(raw) if level is None else _cramjam.lz4.compress(raw, level=level)
    # Kafka's default compression.zstd.level is 3
    return _cramjam.zstd.compress(raw, level=3 if level is None else level)


cdef object _xerial_snappy(object raw):
    """Snappy in the xerial framing the Java client writes (every Kafka client reads it)."""
    cdef Py_ssize_t n = len(raw), pos = 0
    cdef uint8_t lenbuf[4]
    parts = bytearray(_XERIAL_MAGIC)
    parts += b"\x00\x00\x00\x01\x00\x00\x00\x01"
    mv = memoryview(raw)
    compress_raw = _cramjam.snappy.compress_raw
    while pos < n:
        block = compress_raw(mv[pos:pos + _XERIAL_BLOCK])
        _put_u32(lenbuf, <uint32_t>len(block))
        parts += PyBytes_FromStringAndSize(<char*>lenbuf, 4)
        parts += block
        pos += _XERIAL_BLOCK
    return parts


# ---------------------------------------------------------------- indexes

cdef int _index_view(object index, Py_ssize_t entries, Py_ssize_t entry_size, Py_buffer* view) except -1:
    if entries < 0:
        raise ValueError(f"entries must be >= 0, not {entries}")
    PyObject_GetBuffer(index, view, PyBUF_SIMPLE)
    if entries > view.len // entry_size:
        n = view.len
        PyBuffer_Release(view)
        raise ValueError(f"{entries} entries of {entry_size} bytes do not fit the {n}-byte index")
    return 0


def offset_index_lookup(index, Py_ssize_t entries, int64_t target_relative_offset) -> int:
    """Slot of the largest entry with relative offset <= target in an offset index, or -1."""
    cdef Py_buffer view
    cdef const uint8_t* p
    cdef Py_ssize_t lo = 0, hi, mid, found = -1
    _index_view(index, entries, 8, &view)
    p = <const uint8_t*>view.buf
    hi = entries - 1
    # a few dozen compares: cheaper than releasing the GIL
    while lo <= hi:
        mid = lo + (hi - lo) // 2
        if <int64_t>(<int32_t>_u32(p + mid * 8)) <= target_relative_offset:
            found = mid
            lo = mid + 1
        else:
            hi = mid - 1
    PyBuffer_Release(&view)
    return found


def time_index_lookup(index, Py_ssize_t entries, int64_t target_timestamp) -> int:
    """Slot of the first entry with timestamp >= target in a time index, or -1 if none."""
    cdef Py_buffer view
    cdef const uint8_t* p
    cdef Py_ssize_t lo = 0, hi, mid, found = -1
    _index_view(index, entries, 12, &view)
    p = <const uint8_t*>view.buf
    hi = entries - 1
    # a few dozen compares: cheaper than releasing the GIL
    while lo <= hi:
        mid = lo + (hi - lo) // 2
        if <int64_t>_u64(p + mid * 12) >= target_timestamp:
            found = mid
            hi = mid - 1
        else:
            lo = mid + 1
    PyBuffer_Release(&view)
    return found


def offset_index_ordered(index, Py_ssize_t entries) -> bool:
    """True if the first entries of an offset index are well formed: relative offsets and
    positions non-negative and both strictly increasing (Kafka's OffsetIndex.sanityCheck)."""
    cdef Py_buffer view
    cdef const uint8_t* p
    cdef Py_ssize_t i
    cdef int32_t rel, pos, prev_rel = -1, prev_pos = -1
    cdef bint ok = True
    _index_view(index, entries, 8, &view)
    p = <const uint8_t*>view.buf
    with nogil:
        for i in range(entries):
            rel = <int32_t>_u32(p + i * 8)
            pos = <int32_t>_u32(p + i * 8 + 4)
            if rel <= prev_rel or pos <= prev_pos:
                ok = False
                break
            prev_rel = rel
            prev_pos = pos
    PyBuffer_Release(&view)
    return ok


def time_index_ordered(index, Py_ssize_t entries) -> bool:
    """True if the first entries of a time index are well formed: timestamps strictly
    increasing, relative offsets non-negative and non-decreasing (TimeIndex.sanityCheck)."""
    cdef Py_buffer view
    cdef const uint8_t* p
    cdef Py_ssize_t i
    cdef int64_t ts, prev_ts = INT64_MIN
    cdef int32_t rel, prev_rel = 0
    cdef bint ok = True
    _index_view(index, entries, 12, &view)
    p = <const uint8_t*>view.buf
    with nogil:
        for i in range(entries):
            ts = <int64_t>_u64(p + i * 12)
            rel = <int32_t>_u32(p + i * 12 + 8)
            if (i > 0 and ts <= prev_ts) or rel < prev_rel:
                ok = False
                break
            prev_ts = ts
            prev_rel = rel
    PyBuffer_Release(&view)
    return ok


# ---------------------------------------------------------------- sendfile

def sendfile_chunk(int out_fd, int in_fd, int64_t offset, int64_t count) -> int:
    """Move up to count bytes of in_fd at offset to out_fd with sendfile(2) (see .pyi).

    Returns early with fewer bytes when the socket would block (EAGAIN) or the file ends.
    """
    cdef off_t off = <off_t>offset
    cdef int64_t sent = 0
    cdef ssize_t r
    cdef size_t want
    cdef int err = 0
    if offset < 0 or count < 0:
        raise ValueError(f"offset and count must be >= 0 (got {offset}, {count})")
    with nogil:
        while sent < count:
            want = <size_t>(count - sent) if count - sent < MAX_SENDFILE else MAX_SENDFILE
            r = sendfile(out_fd, in_fd, &off, want)
            if r > 0:
                sent += r
            elif r == 0:
                break
            elif errno == EINTR:
                continue
            elif errno == EAGAIN or errno == EWOULDBLOCK:
                break
            else:
                err = errno
                break
    if err:
        raise OSError(err, strerror(err).decode("utf-8", "replace"))
    return sent
