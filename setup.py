"""Packages asrec, its Triton kernels included (``asrec/kernels``).

The CUDA extension of csrc/ is not part of this build yet; ``asrec.backends`` says so.
(DESIGN.md maps a top-level kernels/ into the package; the kernels live in the package
instead, so that a source checkout imports exactly what an install does: tests run from
the repository root otherwise import ./asrec without the mapped kernels.)
"""

from setuptools import find_packages, setup

setup(packages=find_packages(include=["asrec", "asrec.*"]))
