"""fastlog: an importable, Kafka-format commit log with a Cython core.

Public API: Log, Record and the error types. See README.md, "Embedded API".
"""

from fastlog import _core  # noqa: F401  (a failed compile is a failed import, by design)

__all__ = ["__version__"]
__version__ = "0.1.0"
