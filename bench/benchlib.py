"""Helpers shared by the bench scripts: running commands, PostgreSQL's
binaries, running as `nobody` when root (PostgreSQL refuses root), and the
CPU's name for reports."""
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def as_user(cmd):
    if os.geteuid() == 0:
        return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"] + cmd
    return cmd


def chown(p):
    if os.geteuid() == 0:
        run(["chown", "-R", "65534:65534", str(p)])


def pg_bin(tool):
    for d in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (d / tool).exists():
            return str(d / tool)
    return shutil.which(tool) or sys.exit(f"{tool} not found: apt-get install postgresql")


def cpu_name():
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()
