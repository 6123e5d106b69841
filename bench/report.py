"""Reporting for the benchmark suite: plain-text tables and provenance."""
import importlib.metadata
import os
import platform

import numpy as np

import cbp

# ---------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------

def _cell(value, fmt):
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if callable(fmt):
        return fmt(value)
    return format(value, fmt)


def format_table(rows, columns, title=None):
    """A plain-text table.

    ``columns`` is a list of ``(key, header, fmt)``: ``fmt`` a format spec
    such as ``".3g"`` or a callable; None or missing values print as ``-``,
    strings as they are.  Text columns are left-aligned, the rest right-aligned.
    """
    header = [h for _, h, _ in columns]
    body = [[_cell(row.get(key), fmt) for key, _, fmt in columns] for row in rows]
    widths = [max([len(h)] + [len(r[j]) for r in body]) for j, h in enumerate(header)]
    left = [any(isinstance(row.get(key), str) for row in rows)
            and all(isinstance(row.get(key), str) or row.get(key) is None for row in rows)
            for key, _, _ in columns]

    def line(cells):
        return "  ".join(c.ljust(w) if lft else c.rjust(w)
                         for c, w, lft in zip(cells, widths, left)).rstrip()

    out = []
    if title:
        out.append(title)
    out.append(line(header))
    out.append(line(["-" * w for w in widths]))
    out.extend(line(r) for r in body)
    return "\n".join(out)


def _version(dist):
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _compiler():
    # The C compiler cbp's core was built with (sysconfig's CC) and its version line.
    import shlex
    import subprocess
    import sysconfig
    cc = (sysconfig.get_config_var("CC") or "cc").strip()
    try:
        out = subprocess.run(shlex.split(cc) + ["--version"], capture_output=True, text=True,
                             timeout=10).stdout
        return out.splitlines()[0] if out else cc
    except (OSError, subprocess.SubprocessError, ValueError):
        return cc


def _kernel_variant():
    from cbp import _core
    return _core.kernel_variant() if hasattr(_core, "kernel_variant") else None


def host_info():
    """The CPU this runs on, as the tables name it: model, family/model and widest FMA vectors."""
    fields = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for text in f:
                key, _, value = text.partition(":")
                key = key.strip()
                if key in ("model name", "cpu family", "model", "flags") and key not in fields:
                    fields[key] = value.strip()
                if not text.strip() and fields:
                    break
    except OSError:
        pass
    flags = set(fields.get("flags", "").split())
    widest = ("AVX-512F" if "avx512f" in flags else "AVX2+FMA, no AVX-512"
              if {"avx2", "fma"} <= flags else "no AVX2/FMA")
    model = fields.get("model name") or platform.processor() or platform.machine()
    where = (f"family {fields['cpu family']} model {fields['model']}"
             if "cpu family" in fields and "model" in fields else None)
    label = f"{model} ({where}; {widest})" if where else f"{model} ({widest})"
    return {"label": label, "model_name": model, "cpu_family": fields.get("cpu family"),
            "model": fields.get("model"), "avx512f": "avx512f" in flags,
            "avx2": "avx2" in flags, "fma": "fma" in flags, "node": platform.node(),
            "logical_cpus": os.cpu_count()}


def machine_info():
    """CPU, Python, library versions and BLAS as a JSON-ready dict."""
    cpu = None
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for text in f:
                if text.startswith("model name"):
                    cpu = text.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {
        "cpu": cpu or platform.processor() or platform.machine(),
        "logical_cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cbp": cbp.__version__,
        "numpy": np.__version__,
        "torch": _version("torch"),
        "jax": _version("jax"),
        "jaxlib": _version("jaxlib"),
        "scikit-learn": _version("scikit-learn"),
        "threadpoolctl": _version("threadpoolctl"),
        "compiler": _compiler(),
        "kernel_variant": _kernel_variant(),
        "host": host_info(),
        "env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                "MKL_NUM_THREADS")},
    }
    try:
        from threadpoolctl import threadpool_info
        info["threadpools"] = threadpool_info()
    except ImportError:
        info["threadpools"] = None
    # The BLAS kernel NumPy actually runs (OpenBLAS picks one at load time).
    info["blas"] = [{k: pool.get(k) for k in ("internal_api", "version", "architecture",
                                              "threading_layer", "num_threads")}
                    for pool in info["threadpools"] or [] if pool.get("user_api") == "blas"]
    try:
        deps = np.show_config(mode="dicts")["Build Dependencies"]
        info["numpy_blas"] = {k: deps[k] for k in ("blas", "lapack") if k in deps}
    except Exception:  # old NumPy: no mode="dicts"
        info["numpy_blas"] = None
    return info
