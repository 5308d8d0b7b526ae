class StopRequest:
    """SIGTERM and SIGINT set a flag and wake the event loop through a socket."""

    def __init__(self, selector):
        self.requested = False
        self.wakeup, self.writer = socket.socketpair()
        for end in (self.wakeup, self.writer):
            end.setblocking(False)
        signal.set_wakeup_fd(self.writer.fileno(), warn_on_full_buffer=False)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self.request)
        selector.register(self.wakeup, selectors.EVENT_READ)

    def request(self, signum, frame):
        self.requested = True

    def ignore_from_now(self):
        """The work is done: no later signal may cut the summary or the exit short (at
        exit Python gives back the default handlers, which would kill the process)."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, signal.SIG_IGN)
