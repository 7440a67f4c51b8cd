"""Wheel tags: a wheel that bundles libferry (ferry/libferry.so) is a platform wheel, py3-none-<platform>.

The package itself is pure Python (ctypes), so it runs on any Python 3 of that platform; only the bundled library
ties it to one. Without a bundled library the wheel stays py3-none-any. Everything else is in pyproject.toml.
"""

import os

from setuptools import setup
from setuptools.dist import Distribution

HERE = os.path.dirname(os.path.abspath(__file__))
BUNDLED = any(os.path.exists(os.path.join(HERE, "ferry", n)) for n in ("libferry.so", "libferry.dylib", "ferry.dll"))


class _Dist(Distribution):
    def has_ext_modules(self):  # a platform-specific payload: platlib, platform tag
        return BUNDLED


cmdclass = {}
try:
    from wheel.bdist_wheel import bdist_wheel

    class _BdistWheel(bdist_wheel):
        def get_tag(self):
            python, abi, plat = super().get_tag()
            if BUNDLED:
                return "py3", "none", plat  # ctypes: no Python ABI involved
            return python, abi, plat

    cmdclass["bdist_wheel"] = _BdistWheel
except ImportError:  # building an sdist without the wheel package
    pass

setup(distclass=_Dist, cmdclass=cmdclass)
