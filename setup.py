"""Build the Cython core, ``fastlog._core``.

A failed compile is a failed install: there is deliberately no pure-Python
fallback, so a broken toolchain can never silently cost an order of magnitude.
"""

from Cython.Build import cythonize
from setuptools import Extension, setup

extensions = [
    Extension(
        "fastlog._core",
        ["src/fastlog/_core.pyx"],
        extra_compile_args=["-O3"],
    )
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives={
            "language_level": "3",
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
        },
        annotate=False,
    )
)
