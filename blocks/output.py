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
