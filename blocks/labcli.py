# The lab tools' command line: one-line errors, and intervals in seconds.
def seconds(text):
    """An interval in seconds, from 1 to 3600 (an argparse type)."""
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 1 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds from 1 to 3600")
    return value


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr, exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")
