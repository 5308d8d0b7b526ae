AUTHENTICATED = 0x80  # flag in any kind: the datagram ends with an HMAC-SHA256 tag
TAG_SIZE = 16  # bytes of the tag: HMAC-SHA256 cut to 128 bits, as in TWAMP
MIN_KEY = 16  # bytes a key must have at least


def sign(datagram, key):
    """The datagram with its tag: HMAC-SHA256 over all of it, cut to TAG_SIZE bytes."""
    return datagram + hmac.new(key, datagram, hashlib.sha256).digest()[:TAG_SIZE]


def verify(datagram, key):
    """The datagram without its tag if the tag is right, else None (constant time)."""
    body, tag = datagram[:-TAG_SIZE], datagram[-TAG_SIZE:]
    expected = hmac.new(key, body, hashlib.sha256).digest()[:TAG_SIZE]
    return body if len(datagram) > TAG_SIZE and hmac.compare_digest(tag, expected) else None


class Key(bytes):
    """A key, and the file it came from (for the warning); never printed."""

    path = None

    def __repr__(self):
        return "Key(...)"


def key_file(path):
    """The key in a file: its bytes, less one trailing newline, at least MIN_KEY of them."""
    try:
        with open(path, "rb") as stream:
            key = stream.read(65536)
    except OSError as error:
        raise argparse.ArgumentTypeError(
            f"cannot read the key file {path!r}: {error.strerror}") from None
    key = key[:-2] if key.endswith(b"\r\n") else key[:-1] if key.endswith(b"\n") else key
    if len(key) < MIN_KEY:
        raise argparse.ArgumentTypeError(
            f"the key file {path!r} holds {len(key)} bytes (valid: at least {MIN_KEY})")
    key = Key(key)
    key.path = path
    return key


def warn_if_readable_by_others(key, program):
    """A key that every user of this host can read is no secret: say so."""
    if key is None:
        return
    path = key.path
    try:
        if os.stat(path).st_mode & 0o004:
            print(f"{program}: warning: the key file {path} is readable by every user of "
                  f"this host (chmod 600 {path})", file=sys.stderr)
    except OSError:
        pass
