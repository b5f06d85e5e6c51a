"""What machine a number came from, and how much memory a run used at peak."""

from __future__ import annotations

import os
import platform
import resource
import sys


def machine_description() -> str:
    """One line: CPU model and cores, RAM, GPU (if any), Python and torch versions."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        ram_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        ram = f"{ram_gib:.0f} GiB RAM"
    except (ValueError, OSError):
        ram = "RAM unknown"
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{cpu}, {os.cpu_count()} cores, {ram}, {gpu}; Python {sys.version.split()[0]}, "
        f"torch {torch.__version__}"
    )


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one; a container or
    ``taskset`` often allows fewer than ``os.cpu_count()`` reports)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def peak_rss_bytes(children: bool = False) -> int:
    """Peak resident set size of this process so far or, with ``children``, of the largest finished child
    process (Linux reports ru_maxrss in KiB)."""
    peak = resource.getrusage(resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)
