"""Packages asrec, with the Triton kernels of kernels/ installed as ``asrec.kernels``.

The CUDA extension of csrc/ is not part of this build yet; ``asrec.backends`` says so.
"""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["asrec", "asrec.*"]) + ["asrec.kernels"],
    package_dir={"asrec.kernels": "kernels"},
)
