"""Builds the sbgm Python package with CMake: `pip install --no-build-isolation .` (offline, with
Debian's setuptools; docs/python.md). SBGM_CMAKE_BUILD_DIR reuses a configured build tree
(scripts/setup.sh's); otherwise the library and the extension are built in a temporary tree."""

import glob
import os
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))


class CMakeExtension(Extension):
    def __init__(self, name: str) -> None:
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def build_extension(self, ext: Extension) -> None:
        build = os.environ.get("SBGM_CMAKE_BUILD_DIR") or os.path.join(os.path.abspath(self.build_temp), "cmake")
        if not os.path.exists(os.path.join(build, "CMakeCache.txt")):
            launcher = ["-DCMAKE_CXX_COMPILER_LAUNCHER=ccache"] if shutil.which("ccache") else []
            subprocess.check_call(["cmake", "-S", ROOT, "-B", build, "-DCMAKE_BUILD_TYPE=Release",
                                   "-DSBGM_BUILD_TESTS=OFF", "-DSBGM_BUILD_BENCH=OFF", "-DSBGM_BUILD_APPS=OFF",
                                   f"-DPython3_EXECUTABLE={sys.executable}"] + launcher)
        jobs = os.environ.get("SBGM_JOBS", str(os.cpu_count() or 2))
        subprocess.check_call(["cmake", "--build", build, "--target", "_sbgm", "-j", jobs])
        package = os.path.join(build, "python", "sbgm")
        target = os.path.dirname(os.path.abspath(self.get_ext_fullpath(ext.name)))
        os.makedirs(target, exist_ok=True)
        # The extension, the library beside it (found through its $ORIGIN rpath), the Python layer.
        for path in glob.glob(os.path.join(package, "_sbgm*.so")) + glob.glob(os.path.join(build, "src", "libsbgm.so*")):
            shutil.copy2(path, target, follow_symlinks=True)


setup(
    name="sbgm",
    version="0.1.0",
    description="Score-based and flow-based generative models for scientific data (C++ library with Python bindings)",
    packages=["sbgm"],
    package_dir={"sbgm": "python/sbgm"},
    package_data={"sbgm": ["py.typed", "_sbgm.pyi"]},
    ext_modules=[CMakeExtension("sbgm._sbgm")],
    cmdclass={"build_ext": CMakeBuild},
    python_requires=">=3.11",
    install_requires=["numpy"],
    zip_safe=False,
)
