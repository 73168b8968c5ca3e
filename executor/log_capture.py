"""A capped tail of a run's log lines, handed out in batches for flushing while the run goes."""

from collections import deque

from executor.secret_mask import SecretMask

MAX_LINE_CHARS = 4000
# The tail an execution keeps: its last lines, and at most this many bytes of them.
MAX_LINES = 1000
MAX_BYTES = 256 * 1024


class LogTail:
    """Keeps the last `max_lines` lines and at most `max_bytes` of them; older lines fall off."""

    def __init__(
        self, *, max_lines: int = MAX_LINES, max_bytes: int = MAX_BYTES, secrets: list[str] | None = None
    ):
        self._lines: deque[str] = deque()
        # A child that echoes a header or a password (or a piece or an encoding of one) must not put it in
        # the execution record.
        self._mask = SecretMask(secrets or [])
        self._bytes = 0
        self._max_lines = max_lines
        self._max_bytes = max_bytes
        self._unflushed: list[str] = []
        self.dropped = 0

    def add(self, line: str, *, stream: str = "stdout") -> None:
        text = line.rstrip("\r\n")
        if len(text) > MAX_LINE_CHARS:
            text = text[:MAX_LINE_CHARS] + f"… ({len(text) - MAX_LINE_CHARS} more characters)"
        text = self._mask(text)
        entry = f"[{stream}] {text}"
        self._lines.append(entry)
        self._unflushed.append(entry)
        self._bytes += len(entry)
        while len(self._lines) > self._max_lines or self._bytes > self._max_bytes:
            self._bytes -= len(self._lines.popleft())
            self.dropped += 1
        if len(self._unflushed) > self._max_lines:
            del self._unflushed[: len(self._unflushed) - self._max_lines]

    def take_unflushed(self) -> list[str]:
        lines, self._unflushed = self._unflushed, []
        return lines

    def lines(self) -> list[str]:
        return list(self._lines)

    def last(self, count: int) -> list[str]:
        return list(self._lines)[-count:]
