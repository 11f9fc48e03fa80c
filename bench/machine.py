"""Machine, date and command line for benchmark records in bench/RESULTS.md."""

from __future__ import annotations

import os
import platform
import sys
from datetime import UTC, datetime


def describe_machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            names = [line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {memory_gib:.0f} GiB RAM, Python {platform.python_version()}"


def record_header(title: str) -> str:
    command = " ".join([os.path.relpath(sys.argv[0]), *sys.argv[1:]])
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"### {title}\n\n- machine: {describe_machine()}\n- date: {date}\n- command: `python {command}`\n"
