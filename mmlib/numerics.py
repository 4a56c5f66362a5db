"""Pinned CPU numerics: the same bits from a run on any x86-64 CPU with AVX2, Intel or AMD.

A CPU run's low-order bits depend on which code path each math library picks for the CPU it finds:
MKL (torch's BLAS and LAPACK on x86-64: matrix products), ATen's vector kernels (reductions,
element-wise ops), oneDNN (convolutions) and OpenBLAS (numpy's and scipy's BLAS: the float64
Shapley values, the scikit-learn probes) each take an AVX-512 path on a CPU that has it and an
AVX2 path on one that does not, and the two paths add in different orders. In a 3-epoch run such
a difference flips an argmax, a best epoch or a tie, so an AVX-512 machine and an AMD machine
without AVX-512 store different records from the same command. Measured on an AVX-512 Xeon: of
the four, OpenBLAS alone reproduces an AMD EPYC's golden-record failures exactly (``ours``' best
epoch 2 -> 3: a Shapley value of -6e-16 instead of 0 reorders its modalities; ``mmin``'s EDM share
400 -> 300); MKL, ATen and oneDNN move only the last bits of losses and OGM coefficients.

The pin sends all four down their AVX2 path on every CPU that has AVX2 and FMA (:data:`PIN`):

- ``MKL_CBWR=AVX2`` is MKL's conditional numerical reproducibility: the AVX2 code branch, the same
  results on any CPU that supports it at a fixed thread count; ``MKL_ENABLE_INSTRUCTIONS=AVX2``
  keeps MKL's other dispatch off AVX-512.
- ``ATEN_CPU_CAPABILITY=avx2`` picks ATen's AVX2 kernels (the ones an AVX2-only CPU runs anyway).
- ``ONEDNN_MAX_CPU_ISA=AVX2`` caps oneDNN's JIT kernels (``jit:avx512_core`` otherwise).
- ``OPENBLAS_CORETYPE=Haswell`` gives numpy's and scipy's OpenBLAS its AVX2 kernels (``SkylakeX``
  on AVX-512; an AMD Zen runs the Haswell kernels natively).

MKL, ATen and oneDNN read their variable when first used, not when torch is imported; OpenBLAS
reads its own when numpy or scipy loads it. So :func:`pin_environment` runs when :mod:`mmlib` is
imported, and every path into the book (``python -m mmlib ...``, ``make``, pytest, a chapter's
kernel, a notebook in JupyterLab whose first import is ``mmlib``) is pinned once it has imported
``mmlib`` before numpy or any computation. The variables reach child processes (papermill's
kernel, sweep workers, torchrun ranks) through the environment. A value the user set is left as
it is; ``MMLIB_NUMERICS=native`` leaves them unset, for speed (:data:`OPT_OUT`). A CPU without
AVX2 and FMA is not pinned at all (OpenBLAS would stop on an illegal instruction).

:func:`numerics_info` reads back what is in force (MKL's branch from MKL itself, ATen's capability
from torch, each loaded OpenBLAS's kernels through threadpoolctl) for the records and for ``python
-m mmlib doctor``; :func:`pin_status` says why a pin is not in force, :func:`pin_problems` names
a value a library does not know. The pin covers the CPU's math only: a GPU run takes cuBLAS and cuDNN's paths, which
differ again (``book/chapters/performance`` measures how far a verdict moves between the two CPU paths).
"""

from __future__ import annotations

import ctypes
import os
import platform
from pathlib import Path
from typing import Mapping, MutableMapping

PIN: dict[str, str] = {
    "MKL_CBWR": "AVX2",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "OPENBLAS_CORETYPE": "Haswell",
}
OPT_OUT = "MMLIB_NUMERICS"  # "native": leave the libraries on the CPU's fastest paths
MODES = ("pinned", "native")

# MKL_CBWR's branches as MKL names them (mkl_service.h, MKL_CBWR_*), and the codes mkl_cbwr_get returns.
MKL_BRANCHES = {1: "OFF", 2: "AUTO", 3: "COMPATIBLE", 4: "SSE2", 6: "SSSE3", 7: "SSE4_1", 8: "SSE4_2",
                9: "AVX", 10: "AVX2", 11: "AVX512_MIC", 12: "AVX512", 13: "AVX512_MIC_E1", 14: "AVX512_E1"}
MKL_STRICT = 0x10000
MKL_CBWR_BRANCH = 1


def numerics_mode(environ: Mapping[str, str] = os.environ) -> str:
    """``pinned`` (the default) or ``native`` from ``MMLIB_NUMERICS``; a clear error for anything else."""
    mode = environ.get(OPT_OUT, "pinned").strip().lower() or "pinned"
    if mode not in MODES:
        raise ValueError(f"{OPT_OUT}={environ[OPT_OUT]!r} is not a numerics mode; choose pinned (the default: "
                         f"the same bits on every AVX2 CPU) or native (the CPU's fastest paths)")
    return mode


def pin_environment(environ: MutableMapping[str, str] = os.environ) -> None:
    """Set each variable of :data:`PIN` that the environment does not set already (unless native).

    An unknown ``MMLIB_NUMERICS`` pins anyway: importing mmlib never fails for it, and ``doctor``
    names the bad value (:func:`pin_problems`).
    """
    try:
        if numerics_mode(environ) == "native":
            return
    except ValueError:
        pass
    if not cpu_supports_pin():
        return
    for name, value in PIN.items():
        environ.setdefault(name, value)


def mkl_branch() -> str | None:
    """The code branch MKL runs in this process (``AVX2``, ``AVX2,STRICT``, ``OFF``...), read from MKL.

    MKL's ``mkl_cbwr_get(MKL_CBWR_BRANCH)``, which torch's statically linked MKL exports from
    ``libtorch_cpu`` under its service name ``mkl_serv_cbwr_get``. None when torch has no MKL (ARM,
    a build with another BLAS) or does not export it. Asking makes MKL read ``MKL_CBWR`` if nothing
    has used MKL yet.
    """
    import torch

    if not torch.backends.mkl.is_available():
        return None
    try:
        library = ctypes.CDLL(str(Path(torch.__file__).parent / "lib" / _torch_cpu_library()))
        code = library.mkl_serv_cbwr_get(MKL_CBWR_BRANCH)
    except (OSError, AttributeError):
        return None
    name = MKL_BRANCHES.get(code & ~MKL_STRICT, f"code {code}")
    return f"{name},STRICT" if code & MKL_STRICT else name


def _torch_cpu_library() -> str:
    return {"Darwin": "libtorch_cpu.dylib", "Windows": "torch_cpu.dll"}.get(platform.system(), "libtorch_cpu.so")


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else :func:`platform.processor`)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas() -> str:
    """torch's BLAS as its build reports it (``mkl``, ``openblas``, ``accelerate``...)."""
    import torch

    for part in torch.__config__.show().replace(",", "\n").splitlines():
        if part.strip().startswith("BLAS_INFO="):
            return part.split("=", 1)[1].strip()
    return "mkl" if torch.backends.mkl.is_available() else "unknown"


def cpu_supports_pin() -> bool:
    """Whether this CPU can run the pinned path: x86-64 with AVX2 and FMA (read from ``/proc/cpuinfo``)."""
    if platform.machine().lower() not in {"x86_64", "amd64"}:
        return False
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return {"avx2", "fma"} <= set(flags)


def openblas_kernels() -> list[str]:
    """The kernel family of each OpenBLAS loaded in this process (``Haswell``, ``SkylakeX``, ``Zen``...);
    empty without threadpoolctl (a bare GPU image), which the record then cannot vouch for."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return [str(lib.get("architecture")) for lib in threadpool_info() if lib.get("internal_api") == "openblas"]


def numerics_info() -> dict:
    """What decides a CPU run's bits here: CPU, BLAS, MKL's branch, ATen's capability, the pin.

    ``pinned`` is True when the pin is in force in this process: MKL runs its AVX2 branch, ATen its
    AVX2 kernels, oneDNN is capped at AVX2 and every loaded OpenBLAS runs its Haswell kernels (one
    loaded later reads the variable then). ``coverable`` says whether this CPU can be pinned.
    """
    import torch

    branch = mkl_branch()
    capability = torch.backends.cpu.get_cpu_capability()
    openblas = openblas_kernels()
    pinned = (branch is not None and branch.split(",")[0] == PIN["MKL_CBWR"] and capability == "AVX2"
              and os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper() == PIN["ONEDNN_MAX_CPU_ISA"]
              and os.environ.get("OPENBLAS_CORETYPE", "").lower() == PIN["OPENBLAS_CORETYPE"].lower()
              and all(kernels.lower() == PIN["OPENBLAS_CORETYPE"].lower() for kernels in openblas))
    return {
        "mode": os.environ.get(OPT_OUT, "pinned"),
        "pinned": pinned,
        "coverable": cpu_supports_pin() and branch is not None,
        "cpu": cpu_model(),
        "cpu_capability": capability,
        "blas": blas(),
        "mkl_branch": branch,
        "openblas": openblas,
        "variables": {name: os.environ.get(name) for name in PIN},
    }


# The values each library accepts (MKL's mkl_service.h and developer reference, ATen's
# c10/cpu capability names, oneDNN's dnnl_cpu_isa_t); a value outside them is silently ignored.
KNOWN_VALUES = {
    "MKL_CBWR": set(MKL_BRANCHES.values()) - {"OFF"},
    "MKL_ENABLE_INSTRUCTIONS": {"SSE4_2", "AVX", "AVX2", "AVX512", "AVX512_E1", "AVX512_E2", "AVX512_E3",
                                "AVX512_E4", "AVX512_E5", "AVX10"},
    "ATEN_CPU_CAPABILITY": {"DEFAULT", "AVX2", "AVX512", "ZVECTOR", "VSX", "SVE256"},
    "ONEDNN_MAX_CPU_ISA": {"ALL", "DEFAULT", "SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE",
                           "AVX512_CORE_VNNI", "AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX512_CORE_AMX",
                           "AVX512_CORE_AMX_FP16", "AVX10_1_512", "AVX10_1_512_AMX", "AVX10_1_512_AMX_FP16"},
    "OPENBLAS_CORETYPE": {"PRESCOTT", "CORE2", "NEHALEM", "SANDYBRIDGE", "HASWELL", "SKYLAKEX", "COOPERLAKE",
                          "SAPPHIRERAPIDS", "ZEN", "BARCELONA", "BULLDOZER", "PILEDRIVER", "STEAMROLLER",
                          "EXCAVATOR", "ATOM", "DUNNINGTON", "PENRYN", "OPTERON", "KATMAI", "COPPERMINE"},
}


def pin_problems(environ: Mapping[str, str] = os.environ) -> list[str]:
    """One line per variable of the pin whose value its library does not know, naming what to use."""
    problems = []
    try:
        numerics_mode(environ)
    except ValueError as error:
        problems.append(str(error))
    for name, known in KNOWN_VALUES.items():
        value = environ.get(name)
        if value is None:
            continue
        head, _, strict = value.strip().upper().partition(",")
        if head not in known or strict not in ({"", "STRICT"} if name == "MKL_CBWR" else {""}):
            problems.append(f"{name}={value!r} is not a value its library knows (it is ignored, and the CPU's own "
                            f"path runs); use {PIN[name]} as the pin does, or unset it and let mmlib set it")
    return problems


def pin_status(info: Mapping) -> str:
    """One line: whether the pin is in force and, when it is not, why."""
    paths = (f"MKL branch {info['mkl_branch']}, ATen {info['cpu_capability']}, "
             f"oneDNN cap {info['variables']['ONEDNN_MAX_CPU_ISA'] or 'none'}, "
             f"OpenBLAS {'/'.join(info['openblas']) or 'not loaded'}; {info['cpu']}, BLAS {info['blas']}")
    if info["pinned"]:
        return f"pinned to AVX2 ({paths})"
    if not info["coverable"]:
        return (f"not pinned: the pin needs x86-64 with AVX2, FMA and torch's MKL, which this machine lacks, so its "
                f"CPU runs may differ from the book's in the last bits ({paths})")
    if info["mode"] == "native":
        return (f"native ({OPT_OUT}=native: the CPU's fastest paths; records differ from the book's in the last bits) "
                f"({paths})")
    overridden = [f"{name}={value}" for name, value in info["variables"].items()
                  if value is None or value.upper() != PIN[name].upper()]
    if overridden:
        return f"not pinned: the environment sets {', '.join(overridden)}; unset them to pin ({paths})"
    return (f"not pinned: numpy or torch computed before mmlib was imported; import mmlib first, or start the "
            f"process with the pin's variables set ({paths})")
