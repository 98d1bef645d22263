# cython: language_level=3
"""fastlog's Cython core: placeholder until the core lands (see _core.pyi for the contract)."""

import crc32c as _crc32c_mod


def crc32c(data, unsigned int crc=0):
    return _crc32c_mod.crc32c(data, crc)
