"""How the supervisor starts a source (executor/supervisor.py): posix_spawn when the source keeps the
worker's user, subprocess when it switches to SOURCE_USER. Either way the source starts alike: in a session
of its own, in its directory, no signal blocked or ignored that a fresh program would not have, holding no
descriptor of ours beyond its stdin, stdout and stderr."""

import json
import os
import pwd
import sys
import textwrap

import pytest

from executor.child import CannotStart, minimal_environment, start_child
from executor.supervisor import already
from tests.interpreters import script_python

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the supervisor is for Linux")

REPORT = textwrap.dedent("""
    import json, os
    held = []
    for fd in range(3, 256):
        try:
            os.fstat(fd)
        except OSError:
            continue
        held.append(fd)
    print(json.dumps({
        "held": held,
        "own_session": os.getsid(0) == os.getpid(),
        "cwd": os.getcwd(),
        "uid": os.getuid(),
    }))
""")


def identities() -> list:
    """No switch (posix_spawn), and a switch to nobody (subprocess) where the tests run as root."""
    cases = [pytest.param({}, id="own-user")]
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        cases.append(pytest.param({"user": nobody.pw_uid, "group": nobody.pw_gid}, id="source-user"))
    return cases


async def started(argv: list[str], identity: dict, cwd: str = "/") -> tuple[int | None, bytes]:
    env = minimal_environment({"PATH": "/usr/bin:/bin"})
    process = await start_child(argv, env, grace_seconds=1, cwd=cwd, **identity)
    process.stdin.close()
    out = await process.stdout.read()
    return await process.wait(), out


@pytest.mark.parametrize("identity", identities())
async def test_a_source_starts_in_its_own_session_with_default_signals_and_no_descriptor_of_ours(
    identity, tmp_path
):
    os.chmod(tmp_path, 0o777)  # the source user's directory, as the sandbox makes it
    code, out = await started([script_python(), "-I", "-S", "-c", REPORT], identity, cwd=str(tmp_path))
    assert code == 0, out
    seen = json.loads(out)
    assert seen["held"] == []  # the status pipe above all: the worker sees the supervisor end by its EOF
    assert seen["own_session"]
    assert seen["cwd"] == str(tmp_path)
    assert seen["uid"] == identity.get("user", os.getuid())


@pytest.mark.parametrize("identity", identities())
async def test_a_source_has_no_signal_blocked_or_ignored_that_a_fresh_program_would_not(identity):
    # grep reports its own signal masks, as they came through the exec (a Python would ignore SIGPIPE itself).
    code, out = await started(["grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"], identity)
    assert code == 0, out
    masks = {name: int(value, 16) for name, value in (line.split(":") for line in out.decode().splitlines())}
    standard = (1 << 31) - 1  # SIGHUP to SIGSYS; glibc keeps 32 and 33 for itself
    assert (
        masks["SigBlk"] & standard == 0
    )  # the supervisor's own (SIGTERM, SIGCHLD, ...) are not the source's
    assert masks["SigIgn"] & standard == 0  # nor Python's SIGPIPE and SIGXFSZ


@pytest.mark.parametrize("identity", identities())
async def test_a_program_named_without_a_path_is_found_on_the_path_of_the_sources_environment(identity):
    code, _ = await started(["true"], identity)
    assert code == 0


@pytest.mark.parametrize("identity", identities())
@pytest.mark.parametrize("program", ["/no/such/program", "no-such-program-anywhere"])
async def test_a_program_that_does_not_exist_cannot_start_and_says_why(identity, program):
    with pytest.raises(CannotStart, match="No such file or directory"):
        await started([program], identity)


def test_a_switch_to_the_identity_the_supervisor_has_already_is_no_switch():
    me = os.getuid()
    groups = set(os.getgroups()) - {os.getgid()}
    assert already(me, os.getgid()) == (os.geteuid() == me and os.getegid() == os.getgid() and not groups)
    assert not already(me + 1, os.getgid())
    assert not already(me, os.getgid() + 1)
