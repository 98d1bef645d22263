# CRC-32C (Castagnoli), included by _core.pyx.
#
# Why our own C instead of one call into the `crc32c` package per batch: the batch walkers
# (scan_batches, valid_prefix_length, iter_records) run over every batch of a produce request or a
# segment, and a C-level CRC lets them do so without a Python call and a memoryview slice per batch,
# and with the GIL released. x86-64 with SSE4.2 uses the crc32 instruction on three interleaved
# streams (the instruction has a latency of 3 and a throughput of 1), other CPUs a slicing-by-8
# table. The tests check both paths against the `crc32c` package.

from libc.stdint cimport uint8_t, uint32_t

cdef extern from *:
    """
    #include <stdint.h>
    #include <stddef.h>
    #include <string.h>

    #define FL_CRC_POLY 0x82F63B78u  /* CRC-32C, reflected */
    /* bytes per stream per round of the 3-way hardware loop: long rounds for big buffers, short
       ones so that batches of a few KiB (the common produce size) also get the 3x */
    #define FL_CRC_LONG 4096
    #define FL_CRC_SHORT 256

    static uint32_t fl_crc_table[8][256];
    /* register -> register after FL_CRC_LONG / FL_CRC_SHORT zero bytes */
    static uint32_t fl_crc_shift_long[4][256];
    static uint32_t fl_crc_shift_short[4][256];
    static int fl_crc_have_hw = 0;

    static uint32_t fl_crc_sw(uint32_t crc, const uint8_t *p, size_t len) {
        while (len && ((uintptr_t)p & 7)) {
            crc = fl_crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
            len--;
        }
        while (len >= 8) {
            uint32_t lo = crc ^ ((uint32_t)p[0] | ((uint32_t)p[1] << 8) |
                                 ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24));
            uint32_t hi = (uint32_t)p[4] | ((uint32_t)p[5] << 8) |
                          ((uint32_t)p[6] << 16) | ((uint32_t)p[7] << 24);
            crc = fl_crc_table[7][lo & 0xff] ^ fl_crc_table[6][(lo >> 8) & 0xff] ^
                  fl_crc_table[5][(lo >> 16) & 0xff] ^ fl_crc_table[4][lo >> 24] ^
                  fl_crc_table[3][hi & 0xff] ^ fl_crc_table[2][(hi >> 8) & 0xff] ^
                  fl_crc_table[1][(hi >> 16) & 0xff] ^ fl_crc_table[0][hi >> 24];
            p += 8;
            len -= 8;
        }
        while (len--) crc = fl_crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
        return crc;
    }

    static inline uint32_t fl_crc_shift(uint32_t (*t)[256], uint32_t c) {
        return t[0][c & 0xff] ^ t[1][(c >> 8) & 0xff] ^ t[2][(c >> 16) & 0xff] ^ t[3][c >> 24];
    }

    #if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    #include <nmmintrin.h>
    __attribute__((target("sse4.2")))
    static uint32_t fl_crc_hw(uint32_t crc, const uint8_t *p, size_t len) {
        uint64_t c0 = crc;
        while (len && ((uintptr_t)p & 7)) {
            c0 = _mm_crc32_u8((uint32_t)c0, *p++);
            len--;
        }
        /* CRC is linear: crc(A|B) = shift_|B|(crc(A)) ^ crc_from_zero(B) */
    #define FL_CRC_3WAY(STREAM, TABLE)                                                         \
        while (len >= 3 * (STREAM)) {                                                          \
            uint64_t c1 = 0, c2 = 0, w0, w1, w2;                                               \
            const uint8_t *p1 = p + (STREAM), *p2 = p + 2 * (STREAM);                          \
            size_t i;                                                                          \
            for (i = 0; i < (STREAM); i += 8) {                                                \
                memcpy(&w0, p + i, 8);                                                         \
                memcpy(&w1, p1 + i, 8);                                                        \
                memcpy(&w2, p2 + i, 8);                                                        \
                c0 = _mm_crc32_u64(c0, w0);                                                    \
                c1 = _mm_crc32_u64(c1, w1);                                                    \
                c2 = _mm_crc32_u64(c2, w2);                                                    \
            }                                                                                  \
            c0 = fl_crc_shift(TABLE, fl_crc_shift(TABLE, (uint32_t)c0) ^ (uint32_t)c1)         \
                 ^ (uint32_t)c2;                                                               \
            p += 3 * (STREAM);                                                                 \
            len -= 3 * (STREAM);                                                               \
        }
        FL_CRC_3WAY(FL_CRC_LONG, fl_crc_shift_long)
        FL_CRC_3WAY(FL_CRC_SHORT, fl_crc_shift_short)
    #undef FL_CRC_3WAY
        while (len >= 8) {
            uint64_t w;
            memcpy(&w, p, 8);
            c0 = _mm_crc32_u64(c0, w);
            p += 8;
            len -= 8;
        }
        while (len--) c0 = _mm_crc32_u8((uint32_t)c0, *p++);
        return (uint32_t)c0;
    }
    static int fl_crc_detect_hw(void) {
        __builtin_cpu_init();
        return __builtin_cpu_supports("sse4.2") ? 1 : 0;
    }
    #else
    static uint32_t fl_crc_hw(uint32_t crc, const uint8_t *p, size_t len) {
        return fl_crc_sw(crc, p, len);
    }
    static int fl_crc_detect_hw(void) { return 0; }
    #endif

    /* shifting by zero bytes is linear in the register: tabulate it from the 32 unit vectors */
    static void fl_crc_shift_table(uint32_t (*t)[256], int nbytes) {
        uint32_t n, c, basis[32];
        int k, i, j;
        for (i = 0; i < 32; i++) {
            c = (uint32_t)1 << i;
            for (j = 0; j < nbytes; j++) c = fl_crc_table[0][c & 0xff] ^ (c >> 8);
            basis[i] = c;
        }
        for (k = 0; k < 4; k++) {
            for (n = 0; n < 256; n++) {
                c = 0;
                for (j = 0; j < 8; j++)
                    if (n & (1u << j)) c ^= basis[8 * k + j];
                t[k][n] = c;
            }
        }
    }

    static void fl_crc_init(void) {
        uint32_t n, c;
        int k;
        for (n = 0; n < 256; n++) {
            c = n;
            for (k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ FL_CRC_POLY : c >> 1;
            fl_crc_table[0][n] = c;
        }
        for (n = 0; n < 256; n++) {
            c = fl_crc_table[0][n];
            for (k = 1; k < 8; k++) {
                c = fl_crc_table[0][c & 0xff] ^ (c >> 8);
                fl_crc_table[k][n] = c;
            }
        }
        fl_crc_shift_table(fl_crc_shift_long, FL_CRC_LONG);
        fl_crc_shift_table(fl_crc_shift_short, FL_CRC_SHORT);
        fl_crc_have_hw = fl_crc_detect_hw();
    }

    /* crc is the previous CRC-32C value (0 to start), as in the crc32c package */
    static inline uint32_t fl_crc32c(uint32_t crc, const uint8_t *p, size_t len) {
        uint32_t reg = ~crc;
        reg = fl_crc_have_hw ? fl_crc_hw(reg, p, len) : fl_crc_sw(reg, p, len);
        return ~reg;
    }
    static inline uint32_t fl_crc32c_sw(uint32_t crc, const uint8_t *p, size_t len) {
        return ~fl_crc_sw(~crc, p, len);
    }
    """
    void fl_crc_init()
    int fl_crc_have_hw
    uint32_t fl_crc32c(uint32_t crc, const uint8_t *p, size_t length) nogil
    uint32_t fl_crc32c_sw(uint32_t crc, const uint8_t *p, size_t length) nogil

fl_crc_init()
