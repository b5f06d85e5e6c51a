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


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far (Linux reports ru_maxrss in KiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)
