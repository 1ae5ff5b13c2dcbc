"""Build hook for the one compiled module, the scoring core ``model._fastcore`` (Cython).

Everything else is declared in ``pyproject.toml``. The extension is optional: where
it cannot be compiled (no C compiler), the install goes on and the fast path scores
with its numpy implementation (``model.fastpath``), which gives the same numbers,
about 1.4x slower per comment; the service logs which one it uses.
"""
from setuptools import Extension, setup

try:
    from Cython.Build import cythonize
except ImportError:  # pragma: no cover - Cython is a build requirement; without it, no core
    cythonize = None

CORE = Extension("model._fastcore", ["model/_fastcore.pyx"], optional=True, extra_compile_args=["-O2"])

setup(ext_modules=cythonize([CORE], quiet=True) if cythonize is not None else [])
