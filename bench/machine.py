"""What every benchmark records about where and when it ran (imported by the bench scripts)."""

from __future__ import annotations

import datetime as dt
import os
import platform
from pathlib import Path
from types import ModuleType
from typing import Any


def machine(*modules: ModuleType) -> dict[str, Any]:
    """UTC date, Python, platform, cores, memory, load average, and each module's version."""
    meminfo = Path("/proc/meminfo")
    memory = meminfo.read_text().split("\n", 1)[0].split(":", 1)[-1].strip() if meminfo.exists() else ""
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "memory": memory,
        "loadavg": os.getloadavg(),
        **{module.__name__: getattr(module, "__version__", "") for module in modules},
    }
