"""A dependency-free progress line: in place on a terminal, every 10% otherwise."""

import sys
import time


class Progress:
    def __init__(self, total: int, label: str, stream=sys.stderr, enabled: bool = True):
        self.total, self.label, self.stream, self.enabled = total, label, stream, enabled
        self.started = time.perf_counter()
        self.interactive = hasattr(stream, "isatty") and stream.isatty()
        self._next_report = 0.1
        self._shown = 0  # characters of the line now on the terminal

    def due(self, done: int) -> bool:
        """Whether ``update(done, ...)`` would print: callers skip computing fields (and the
        host synchronisation a loss value costs) when it would not."""
        if not self.enabled:
            return False
        fraction = done / max(1, self.total)
        return self.interactive or fraction >= self._next_report or done == self.total

    def update(self, done: int, **fields) -> None:
        if not self.due(done):
            return
        fraction = done / max(1, self.total)
        self._next_report = fraction + 0.1
        elapsed = time.perf_counter() - self.started
        eta = elapsed / max(fraction, 1e-9) - elapsed
        shown = "  ".join(f"{k} {v}" for k, v in fields.items())
        line = (f"{self.label} {done}/{self.total} [{'#' * int(20 * fraction):<20}] {shown}  "
                f"{elapsed:.0f}s elapsed, {eta:.0f}s left")
        if self.interactive:
            # \r returns to the line's start without clearing it: spaces cover what a longer
            # earlier line (a wider ETA, a longer loss) left, so no stale characters remain
            print("\r" + line.ljust(self._shown), end="", file=self.stream, flush=True)
            self._shown = len(line)
        else:
            print(line, file=self.stream, flush=True)

    def close(self) -> None:
        if self.enabled and self.interactive and self._shown:
            print(file=self.stream, flush=True)
            self._shown = 0
