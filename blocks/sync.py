#!/usr/bin/env python3
"""Write each shared block of the measuring pair into the scripts that use it.

The two socket scripts each run alone (a student copies one file), so the code
they share stands in both. Its one source is here: blocks/NAME.py. In a script,
the block stands between these two lines, and only this program writes it:

    # ---- block NAME: generated from blocks/NAME.py (python3 blocks/sync.py) ----
    # ---- end of block NAME ----

    python3 blocks/sync.py           # rewrite the scripts from the blocks
    python3 blocks/sync.py --check   # exit 1, naming them, if a script differs

A block may stand in one script only, to keep a long text out of the reading
path: board_page, the sender's board page. The lab's querier and bystander
share labcli (their command line's one-line errors). The textbook pair
(multicast_sender.py, multicast_receiver.py) shares nothing.
"""

import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PROJECT = os.path.dirname(HERE)
SCRIPTS = ("socket_multicast_sender.py", "socket_multicast_receiver.py", "lab/querier.py",
           "lab/bystander.py")
BLOCK = re.compile(r"(# ---- block (\w+): generated from blocks/\2\.py \(python3 blocks/sync\.py\)"
                   r" ----\n)(.*?)(# ---- end of block \2 ----\n)", re.S)


def block_source(name):
    with open(os.path.join(HERE, name + ".py"), encoding="utf-8") as source:
        return source.read()


def synced(text):
    """The script's text with every block as its source has it."""
    return BLOCK.sub(lambda match: match[1] + block_source(match[2]) + match[4], text)


def blocks_in(text):
    """The names of the blocks a script's text holds, in order."""
    return [match[2] for match in BLOCK.finditer(text)]


def main(argv=None):
    check = (argv if argv is not None else sys.argv[1:]) == ["--check"]
    stale = []
    for name in SCRIPTS:
        path = os.path.join(PROJECT, name)
        with open(path, encoding="utf-8") as script:
            text = script.read()
        wanted = synced(text)
        if wanted != text:
            stale.append(name)
            if not check:
                with open(path, "w", encoding="utf-8") as script:
                    script.write(wanted)
    if check and stale:
        print(f"out of sync with blocks/: {', '.join(stale)} (run python3 blocks/sync.py)",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
