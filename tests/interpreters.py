"""Which Python a source may run as in these tests.

When the tests run as root, sources run as SOURCE_USER (nobody). On a machine whose interpreter lives
under a directory only root may enter (pyenv under /root), nobody cannot start this interpreter: then
scripts run with the system Python (stdlib only, which is all they use), and the built-in HTTP connector,
which needs this interpreter and this checkout (maybe in a directory only root may enter, too), runs as
root: the one place the tests give up the sandbox."""

import os
import subprocess
import sys
from functools import cache


@cache
def nobody_can_run(executable: str, *, code: str = "") -> bool:
    if os.geteuid() != 0:
        return True
    try:
        subprocess.run(
            [executable, "-c", code], user="nobody", group="nogroup", cwd="/", check=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return True


def script_python() -> str:
    """An interpreter the source user can start, for stdlib-only scripts."""
    if nobody_can_run(sys.executable):
        return sys.executable
    return "/usr/bin/python3"


def http_connector_user() -> str:
    """SOURCE_USER for runs of the built-in HTTP connector (see the module's docstring)."""
    return "nobody" if nobody_can_run(sys.executable, code="import executor.sync_cli") else "root"
