"""Compiled CPU kernels registered with XLA through its FFI, built on first use.

vbinfer's compiled kernels are the fused delayed coupling sum (``delayed_sum.cc``) and its
adjoint: XLA's CPU gather materialises every gathered history row before the weighted sum, which
bounds delayed network throughput on CPUs, and its scatter is slower still; the kernels stream
the rows instead (the adjoint adds into the buffer's cotangent in place).

The source ships with the package and is compiled the first time a simulator asks for it (a
few seconds, ``g++`` or ``$CXX`` against the XLA FFI headers that ship with jaxlib), into a
cache folder keyed by the source, the jaxlib version and the compiler flags:
``$VBINFER_CACHE_DIR`` or ``$XDG_CACHE_HOME/vbinfer`` or ``~/.cache/vbinfer``. Nothing happens
on import. Where no compiler is found or the build fails, :func:`available` is false and the
simulators use the pure-XLA path, which gives the same results; ``VBINFER_FFI=0`` forces that.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

__all__ = ["available", "build_error", "library_path"]

_SOURCE = Path(__file__).with_name("delayed_sum.cc")
_TARGETS = {"float32": "vbinfer_delayed_sum_f32", "float64": "vbinfer_delayed_sum_f64"}
_SYMBOLS = {"float32": "VbinferDelayedSumF32", "float64": "VbinferDelayedSumF64"}
_TRANSPOSE_TARGETS = {
    "float32": "vbinfer_delayed_sum_transpose_f32",
    "float64": "vbinfer_delayed_sum_transpose_f64",
}
_TRANSPOSE_SYMBOLS = {
    "float32": "VbinferDelayedSumTransposeF32",
    "float64": "VbinferDelayedSumTransposeF64",
}
_FLAGS = ["-O3", "-march=native", "-std=c++17", "-shared", "-fPIC", "-w"]


def _cache_dir() -> Path:
    if os.environ.get("VBINFER_CACHE_DIR"):
        return Path(os.environ["VBINFER_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "vbinfer"


def _compiler() -> str | None:
    return os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")


def library_path() -> Path:
    """Where the compiled kernel is (or would be) cached."""
    import jax
    import jaxlib

    digest = hashlib.sha256()
    digest.update(_SOURCE.read_bytes())
    digest.update(f"{jaxlib.__version__} {jax.__version__} {_compiler()} {_FLAGS}".encode())
    return _cache_dir() / "ffi" / digest.hexdigest()[:16] / "libvbinfer_ffi.so"


def _build(target: Path) -> None:
    import jax

    cxx = _compiler()
    if cxx is None:
        raise RuntimeError("no C++ compiler found (set CXX or install g++)")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(fd)
    cmd = [cxx, *_FLAGS, "-I", jax.ffi.include_dir(), str(_SOURCE), "-o", tmp]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        os.unlink(tmp)
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    os.replace(tmp, target)  # atomic: concurrent builders never see a partial library


@functools.cache
def _load() -> str | None:
    """Build (once per cache), load and register the kernels; the error text on failure."""
    if os.environ.get("VBINFER_FFI", "1") == "0":
        return "disabled by VBINFER_FFI=0"
    try:
        import ctypes

        import jax

        path = library_path()
        if not path.exists():
            _build(path)
        lib = ctypes.cdll.LoadLibrary(str(path))
        for targets, symbols in ((_TARGETS, _SYMBOLS), (_TRANSPOSE_TARGETS, _TRANSPOSE_SYMBOLS)):
            for dtype, name in targets.items():
                capsule = jax.ffi.pycapsule(getattr(lib, symbols[dtype]))
                jax.ffi.register_ffi_target(name, capsule, platform="cpu")
    except Exception as exc:  # any failure means: use the XLA path
        return f"{type(exc).__name__}: {exc}"
    return None


def available() -> bool:
    """Whether the compiled kernels are built and registered (builds them on first call)."""
    return _load() is None


def build_error() -> str | None:
    """Why :func:`available` is false, or ``None``."""
    return _load()


def target_name(dtype, transpose: bool = False) -> str:
    """The FFI target for ``dtype`` (float32 or float64): the delayed sum or its adjoint."""
    import numpy as np

    name = np.dtype(dtype).name
    if name not in _TARGETS:
        raise ValueError(f"the compiled delayed sum supports float32 and float64, got {name}")
    return (_TRANSPOSE_TARGETS if transpose else _TARGETS)[name]


def warn_unavailable() -> None:
    """Warn once that the compiled kernel was asked for but could not be built."""
    warnings.warn(
        f"vbinfer's compiled delay kernel is unavailable ({build_error()}); using XLA's gather",
        RuntimeWarning,
        stacklevel=3,
    )
