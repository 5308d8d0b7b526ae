class Output:
    """Prints each event as a line of text, or as a JSON object with --json."""

    def __init__(self, as_json):
        self.as_json = as_json

    def event(self, kind, line, **fields):
        if self.as_json:
            print(json.dumps({"type": kind, "time": round(time.time(), 6), **fields}))
        else:
            print(line)


def printable(text):
    """text with control characters escaped, so a name cannot forge output lines."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class LinePacer:
    """Lets through at most per_second lines a second and counts the rest: once a second
    is over, one line says how many of what were not printed (hint: how to print none)."""

    def __init__(self, out, per_second, what, hint=""):
        self.out, self.per_second, self.what, self.hint = out, per_second, what, hint
        self.window_start = time.monotonic()
        self.printed = 0
        self.unprinted = 0  # since the last note
        self.unprinted_total = 0

    def allow(self, now):
        return self.allow_many(now, 1) == 1

    def allow_many(self, now, count):
        """As allow() count times over: how many of count lines may be printed now."""
        if now - self.window_start >= 1.0:
            self.note(now)
        allowed = max(0, min(count, self.per_second - self.printed))
        self.printed += allowed
        self.unprinted += count - allowed
        self.unprinted_total += count - allowed
        return allowed

    def note(self, now, at_once=False):
        """Once a second is over (or at_once), say how many went unprinted in it."""
        if now - self.window_start < 1.0 and not at_once:
            return
        if self.unprinted:
            self.out.event("unprinted", f"... and {self.unprinted} more {self.what}, not "
                           f"printed: more than {self.per_second} a second{self.hint}",
                           count=self.unprinted, what=self.what)
        self.unprinted = 0
        self.window_start, self.printed = now, 0
