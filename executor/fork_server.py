"""The fork server: one small process per worker that forks each run's supervisor, so that a run costs the
fork of a Python already started, not the start of a new one (tens of milliseconds on a busy host).

The worker starts it once, at its first run, as `python -I -S fork_server.py --socket-fd N --parent PID`,
with the end of a SOCK_SEQPACKET socket pair, and starts another when it finds this one gone. A request is
one message on that socket: a JSON object (argv, env, cwd, user, group, grace, lease) and four file
descriptors passed with it (SCM_RIGHTS): the source's stdin, stdout and stderr, and the write end of the
status pipe. For each, the fork server forks a child that is that run's supervisor
(executor/supervisor.py, in a session of its own), closes its own copies of the descriptors, and waits for
the next. Nothing comes back on the socket: the supervisor answers on the status pipe, its pid included.

The supervisors are its children, so their death signal (SIGTERM, when their parent dies) follows the fork
server, and the fork server's own follows the worker: it asks for SIGKILL when the worker dies
(`PR_SET_PDEATHSIG`, which Linux ties to the thread that started it: the worker's event-loop thread), and
it also ends when the worker's end of the socket closes. It reaps the supervisors as they end (the worker
learns that one has ended from its status pipe), so that their CPU, and their sources', counts in its own
ended children's time in /proc/<pid>/stat, as it did in the worker's when the worker started them.
SOCK_SEQPACKET keeps one request one message; Linux has it for Unix sockets, as it has the prctl calls.

It is non-dumpable (`PR_SET_DUMPABLE` 0): a source running as the worker's own user could otherwise
ptrace it and take over the runs it forks next. Only the standard library, as for the supervisor.
"""

import contextlib
import importlib.util
import json
import os
import signal
import socket
import sys
import traceback
from pathlib import Path

PR_SET_DUMPABLE = 4
REQUEST_LIMIT = 1 << 20
# The source's stdin, stdout and stderr, then the status pipe.
DESCRIPTORS = 4


def load_supervisor():
    """executor/supervisor.py, loaded by its path: `-I` keeps this directory off sys.path, so that no
    module of ours can shadow the standard library."""
    path = Path(__file__).with_name("supervisor.py")
    spec = importlib.util.spec_from_file_location("supervisor", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def refuse(fds: list[int], message: str) -> None:
    """Tell the worker, on the request's status pipe if it came with one, that its source did not start."""
    if len(fds) == DESCRIPTORS:
        with contextlib.suppress(OSError):
            os.write(fds[-1], json.dumps({"cannotStart": message}).encode() + b"\n")


def supervise(supervisor, request: dict, fds: list[int], parent: int) -> int:
    """In the forked child: become the run's supervisor, with the source's pipes as stdin, stdout and stderr
    (the supervisor's own errors then reach the run's log, as the source's do)."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the supervisor waits for its source itself
    os.setsid()
    stdin, stdout, stderr, status = fds
    for fd, standard in ((stdin, 0), (stdout, 1), (stderr, 2)):
        os.dup2(fd, standard)
        os.close(fd)
    return supervisor.Supervision(
        request["argv"],
        status,
        request["grace"],
        user=request.get("user"),
        group=request.get("group"),
        lease=request.get("lease"),
        first_lease=request.get("firstLease"),
        env=request["env"],
        cwd=request.get("cwd"),
        parent=parent,
    ).run()


def serve(channel: socket.socket, worker: int) -> int:
    supervisor = load_supervisor()
    supervisor.prctl(supervisor.PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != worker:
        return 1  # the worker died before the death signal was armed
    supervisor.prctl(PR_SET_DUMPABLE, 0)
    # Supervisors that ended are reaped as they end: the SIGCHLD interrupts the wait for a request, which
    # goes on.
    signal.signal(signal.SIGCHLD, lambda signum, frame: supervisor.reap_ready(lambda pid, status: None))
    server = os.getpid()
    while True:
        data, fds, flags, _ = socket.recv_fds(channel, REQUEST_LIMIT, DESCRIPTORS)
        if not data and not fds:
            return 0  # the worker's end closed: the worker is gone
        try:
            if len(fds) != DESCRIPTORS or flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
                refuse(fds, "the request to the fork server was cut short")
                continue
            try:
                request = json.loads(data)
            except ValueError:
                refuse(fds, "the request to the fork server is not JSON")
                continue
            if os.fork() == 0:
                code = 1
                try:
                    channel.close()
                    code = supervise(supervisor, request, fds, server)
                except BaseException:
                    traceback.print_exc()
                finally:
                    os._exit(code)
        except OSError as error:  # fork failed: out of processes or memory
            refuse(fds, f"the fork server cannot fork: {error.strerror or error}")
        finally:
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)


def main(args: list[str]) -> int:
    options = dict(zip(args[::2], args[1::2], strict=True))
    channel = socket.socket(fileno=int(options["--socket-fd"]))
    return serve(channel, int(options["--parent"]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
