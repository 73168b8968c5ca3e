"""The per-run supervisor: a tiny process between the worker and one source, so no process outlives its run.

Why a supervisor per run, and not the worker itself as the subreaper: an orphan reparents to the nearest
ancestor marked `PR_SET_CHILD_SUBREAPER`. If that were the worker, the escaped descendants of every run going
at once would all land on it, with nothing saying which run each belongs to (a grandchild that called
`setsid` has left its run's process group and session), so ending one run could not kill its leftovers
without risking another run's live processes; and asyncio's child watcher reaps only the pids it started,
so the worker would collect zombies. One supervisor per run is the subreaper for that run's tree alone:
whatever escapes lands on it, and when the source ends it kills everything it has left, whatever group or
session that is in.

The life of a run:
- the worker's fork server (executor/fork_server.py) forks this supervisor in a session of its own, with the
  source's pipes and environment; the supervisor marks itself subreaper, asks for SIGTERM should the fork
  server die (`PR_SET_PDEATHSIG`; the fork server itself dies with the worker), starts the source in a
  session of its own, and then holds none of the source's pipes, so the worker sees EOF as soon as the
  source's tree is gone;
- it reports on the status pipe, one JSON object a line: `{"started": pid, "supervisor": its own pid}` (the
  worker signals that pid: it is not the worker's child) or `{"cannotStart": message}`, then
  `{"exited": code}` (negative: killed by that signal) when the source itself ends; the pipe closes when
  the supervisor is gone, and with it the source's whole tree;
- SIGTERM (or SIGINT, SIGHUP, or the fork server's death) asks for a stop: SIGTERM to the source's group,
  SIGKILL after the grace;
- with a lease of S seconds, the source may run only while the worker keeps renewing its job lock: each
  SIGUSR1 from the worker (sent with every renewal) extends the lease to S seconds from then; when it runs
  out (the worker is stopped, paused or cut off, and another worker may take the job) the source is stopped
  as above. The worker sizes S so that the source is gone before the lock can lapse. The first lease may be
  shorter (`first_lease`): the lock was last renewed before the source started, not at its start;
- once the source has ended, every process left (its group, and every descendant reparented here) gets
  SIGKILL and is reaped, round after round until none is left; then the supervisor exits.

Only the standard library: the fork server loads this file into a `python -I -S`, before any of our packages.
Linux gives the full guarantee; elsewhere (no prctl) only the source's process group is stopped.
"""

import contextlib
import errno
import functools
import json
import os
import signal
import subprocess
import sys
import time

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
RENEWED = signal.SIGUSR1
WATCHED = STOP_SIGNALS | {signal.SIGCHLD, RENEWED}
# Ignored by Python at start-up, and an ignored signal stays ignored across exec: subprocess restores them.
RESTORED_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ)


@functools.cache
def libc():
    """The C library, loaded once: by the fork server, so no forked supervisor loads it again."""
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


def prctl(option: int, value: int) -> bool:
    """`prctl(option, value)` through libc; False where there is no such call (not Linux)."""
    if not sys.platform.startswith("linux"):
        return False
    return libc().prctl(option, value, 0, 0, 0) == 0


def children_of(parent: int) -> list[int]:
    """Pids whose parent is `parent`, read from /proc (empty where there is no /proc)."""
    found = []
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/stat", "rb") as stat:
                    fields = stat.read().rsplit(b")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
            if int(fields[1]) == parent:
                found.append(int(name))
    return found


def has_children() -> bool:
    """Whether any process is still our child (exited or not), without reaping it."""
    try:
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    return True


def kill_everything_left(source_pid: int, on_reaped) -> None:
    """SIGKILL the source's group and every child of ours, reap them, and again for what reparents here.

    A subreaper with no child has no descendant at all (each living descendant has a living parent in the
    tree: an orphan is taken in by the nearest subreaper above it, us at the latest), so /proc is read only
    when something is left."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(source_pid, signal.SIGKILL)
    while has_children():
        left = children_of(os.getpid())
        if not left:
            break
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        for _ in left:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            on_reaped(pid, status)
    # Reparented children /proc did not show yet, if any.
    reap_ready(on_reaped)


def reap_ready(on_reaped) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        on_reaped(pid, status)


def already(user: int, group: int | None) -> bool:
    """Whether this process runs as `user` and `group` with no other group: switching would change nothing."""
    gid = user if group is None else group
    return (
        os.getuid() == os.geteuid() == user
        and os.getgid() == os.getegid() == gid
        and set(os.getgroups()) <= {gid}
    )


def spawn(argv: list[str], env: dict[str, str], cwd: str | None) -> int:
    """posix_spawn `argv` as subprocess would with start_new_session: a session of its own, the signals
    Python ignores (SIGPIPE, SIGXFSZ) back to their defaults, none blocked, no descriptor beyond 0, 1 and 2;
    the program looked up on the PATH of `env`. Raises OSError as subprocess does when it cannot run."""
    for fd in open_descriptors():
        if fd > 2:
            with contextlib.suppress(OSError):
                os.set_inheritable(fd, False)
    if cwd is not None:
        os.chdir(cwd)  # this process's own directory matters to nothing after this
    program = argv[0]
    if os.path.dirname(program):
        paths = [program]
    else:
        paths = [os.path.join(directory, program) for directory in os.get_exec_path(env)]
    failure: OSError | None = None
    for path in paths:
        try:
            return os.posix_spawn(path, argv, env, setsid=True, setsigmask=(), setsigdef=RESTORED_SIGNALS)
        except OSError as error:
            # As exec's search: a missing candidate lets the next one try; the first other error is kept.
            if failure is None or failure.errno in (errno.ENOENT, errno.ENOTDIR):
                failure = error
    raise failure or FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)


def open_descriptors() -> list[int]:
    """This process's open file descriptors (from /proc; where there is none, the first 256)."""
    try:
        return [int(name) for name in os.listdir("/proc/self/fd")]
    except FileNotFoundError:
        return list(range(256))


class Supervision:
    def __init__(
        self,
        argv: list[str],
        status_fd: int,
        grace: float,
        user: int | None = None,
        group=None,
        lease: float | None = None,
        first_lease: float | None = None,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        parent: int | None = None,
    ):
        self.argv = argv
        self.env = env
        self.cwd = cwd
        # The process whose death stops the run (the fork server); by default the one that started us.
        self.parent = parent
        # The source's own uid and gid (SOURCE_USER), with no supplementary groups; this supervisor keeps
        # the worker's, so it can signal and reap the source's whole tree.
        self.identity = {} if user is None else {"user": user, "group": group, "extra_groups": []}
        if user is not None and already(user, group):
            self.identity = {}  # the source's identity is ours already: nothing to switch
        self.popen: subprocess.Popen | None = None
        self.grace = grace
        self.status = os.fdopen(status_fd, "w", buffering=1)
        self.source_pid = 0
        self.code: int | None = None
        self.kill_at: float | None = None
        self.killed = False
        self.lease = lease
        first = lease if first_lease is None or lease is None else min(lease, first_lease)
        self.lease_until = None if first is None else time.monotonic() + first

    def report(self, **message) -> None:
        with contextlib.suppress(BrokenPipeError):
            self.status.write(json.dumps(message) + "\n")

    def reaped(self, pid: int, status: int) -> None:
        if pid == self.source_pid and self.code is None:
            self.code = os.waitstatus_to_exitcode(status)

    def run(self) -> int:
        parent = os.getppid() if self.parent is None else self.parent
        prctl(PR_SET_CHILD_SUBREAPER, 1)
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        # Blocked, then taken one at a time with sigtimedwait: no handler runs in the middle of a waitpid.
        signal.pthread_sigmask(signal.SIG_BLOCK, WATCHED)
        if os.getppid() != parent:
            return 1  # our parent died before the death signal was armed: start nothing
        try:
            self.source_pid = self.start_source()
        except OSError as error:
            self.report(cannotStart=f"{error.strerror or error}", errno=error.errno)
            return 0
        self.report(started=self.source_pid, supervisor=os.getpid())
        # Only the source holds its pipes now: the worker reads EOF when the source's tree is gone.
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(null, 1)
        while self.code is None:
            reap_ready(self.reaped)
            if self.code is not None:
                break
            self.wait_for_signal()
        if self.popen is not None:
            self.popen.returncode = self.code  # reaped here, not by Popen
        self.report(exited=self.code)
        kill_everything_left(self.source_pid, self.reaped)
        return 0

    def start_source(self) -> int:
        """Start the source in a session of its own, signals unblocked; returns its pid.

        Without a change of user (the worker is not root, or the source's user is the worker's own),
        posix_spawn: glibc starts the program from a vfork-like clone, without copying this process's
        memory map or running any Python between the fork and the exec: about 1.5 ms of CPU less per run
        here (the supervisor's and the source's together, bench/executor_throughput.py) than subprocess
        with a preexec_fn, which forks in full. With a change of user, subprocess, whose child calls
        setgroups, setgid and setuid before the exec (Python 3.11 forks in full for those too)."""
        if self.identity:
            self.popen = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
                preexec_fn=lambda: signal.pthread_sigmask(signal.SIG_UNBLOCK, WATCHED),
                **self.identity,
            )
            return self.popen.pid
        return spawn(self.argv, os.environ if self.env is None else self.env, self.cwd)

    def wait_for_signal(self) -> None:
        deadline = None
        if self.kill_at is None and self.lease_until is not None:
            deadline = self.lease_until
        elif self.kill_at is not None and not self.killed:
            deadline = self.kill_at
        if deadline is None:
            received = signal.sigwaitinfo(WATCHED)
        else:
            received = signal.sigtimedwait(WATCHED, max(0.0, deadline - time.monotonic()))
        if received is None and self.kill_at is None:  # the lease ran out: the worker stopped renewing
            self.stop()
        elif received is None:  # the grace after SIGTERM is over
            self.killed = True
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.source_pid, signal.SIGKILL)
        elif received.si_signo == RENEWED and self.lease is not None:
            self.lease_until = time.monotonic() + self.lease
        elif received.si_signo in STOP_SIGNALS and self.kill_at is None:
            self.stop()

    def stop(self) -> None:
        self.kill_at = time.monotonic() + self.grace
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.source_pid, signal.SIGTERM)
