"""Build of geohm's compiled forest kernel; everything else is in pyproject.toml.

``pip install .`` (or ``-e .``) compiles ``geohm/models/_forest_kernel.c`` into the
extension module ``geohm.models._forest_kernel`` with the system C compiler. The
extension is optional: without a compiler the build goes on without it, and geohm
evaluates forests with scikit-learn's ``predict`` (the same maps, slower; a warning
says so once per process).
"""

from __future__ import annotations

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

#: Optimisation flags per compiler family. No ``-march=native``: the built module may
#: run on another machine than the one that compiled it (a wheel).
FLAGS = {
    "unix": ["-O3", "-std=c99"],
    "mingw32": ["-O3", "-std=c99"],
    "msvc": ["/O2"],
}


class BuildKernel(build_ext):
    """``build_ext`` with the optimisation flags of the compiler in use."""

    def build_extensions(self) -> None:
        flags = FLAGS.get(self.compiler.compiler_type, [])
        for ext in self.extensions:
            ext.extra_compile_args = [*flags, *ext.extra_compile_args]
        super().build_extensions()


setup(
    ext_modules=[
        Extension(
            "geohm.models._forest_kernel",
            sources=["geohm/models/_forest_kernel.c"],
            optional=True,  # no compiler: geohm falls back to scikit-learn's predict
        )
    ],
    cmdclass={"build_ext": BuildKernel},
)
