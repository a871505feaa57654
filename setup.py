"""Packages asrec. The CUDA extension (csrc/) and the Triton kernels (kernels/, mapped to
asrec.kernels) join here as they land; this build has neither, so it is pure Python."""

from setuptools import find_packages, setup

setup(packages=find_packages(include=["asrec", "asrec.*"]))
