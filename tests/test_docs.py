"""The README and docs/ hold to the code: the option listings are the scripts' real
--help, and every command they show is read and checked against what it names.

    python3 -m tests.test_docs --write   # rewrite the --help listings in docs/
"""

import glob
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import unittest

from . import support

DOCUMENTS = [os.path.join(support.PROJECT, "README.md"),
             *sorted(glob.glob(os.path.join(support.PROJECT, "docs", "*.md"))),
             os.path.join(support.PROJECT, "tests", "README.md")]
HELP = re.compile(r"(<!-- help: (\S+) -->\n)(.*?)(<!-- end help -->)", re.S)
SCRIPTS = ("multicast_sender.py", "multicast_receiver.py", "socket_multicast_sender.py",
           "socket_multicast_receiver.py")


def help_of(script):
    """The script's --help as a 100-column terminal shows it."""
    result = subprocess.run(support.python_script(script, "--help"), capture_output=True,
                            text=True, env=dict(os.environ, COLUMNS="100"), timeout=30)
    return result.stdout


def with_help(text):
    """The document's text with each --help listing as the script prints it now."""
    return HELP.sub(lambda m: f"{m[1]}```text\n{help_of(m[2])}```\n{m[4]}", text)


def read(path):
    with open(path, encoding="utf-8") as document:
        return document.read()


COMMAND = re.compile(r"^(?:[A-Z_]+=\S* )*(?:sudo )?(?:docker|docker-compose|python3|bash) ")


def commands(text):
    """The command lines of the document's ```bash blocks (continuations joined), and
    the commands written as code in the first cell of a table's rows."""
    found = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #", 1)[0].strip()
            if line and not line.startswith("#"):
                found.append(line)
    for row in re.findall(r"^\| `([^`]+)` \|", text, re.M):
        if COMMAND.match(row):
            found.append(row)
    return found


def compose_file():
    """Services, container names, profiles and networks of docker-compose.yml."""
    text = read(os.path.join(support.PROJECT, "docker-compose.yml"))
    services_part = text.split("\nservices:\n", 1)[1].split("\nnetworks:\n", 1)[0]
    return {"services": set(re.findall(r"^  ([\w-]+):$", services_part, re.M)),
            "containers": set(re.findall(r"container_name: ([\w-]+)", text)),
            "profiles": {p.strip() for group in re.findall(r"profiles: \[([^\]]*)\]", text)
                         for p in group.split(",")},
            # A network's name, with each ${VARIABLE:-default} as its default.
            "networks": {re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", name)
                         for name in re.findall(r"^    name: (\S+)$", text, re.M)}}


class DocumentsTest(unittest.TestCase):
    def test_the_option_listings_are_the_scripts_help(self):
        listed = set()
        for path in DOCUMENTS:
            text = read(path)
            listed |= {m[2] for m in HELP.finditer(text)}
            self.assertTrue(text == with_help(text),
                            f"{path}: a --help listing is stale "
                            f"(python3 -m tests.test_docs --write)")
        self.assertEqual(listed, set(SCRIPTS))

    def test_every_command_names_what_exists(self):
        compose = compose_file()
        checked = 0
        folder = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, folder)
        self.addCleanup(os.chdir, os.getcwd())
        os.chdir(folder)  # where a document's commands make their files (a key file)
        for path in DOCUMENTS:
            for line in commands(read(path)):
                made = re.search(r">\s*([\w.-]+)$", line)
                if made:  # a file the next commands use: one with a key's worth of text
                    with open(made[1], "w") as file:
                        file.write(os.urandom(32).hex())
                    os.chmod(made[1], 0o600)
                for command in re.split(r"\s*(?:&&|\||>)\s*", line):
                    with self.subTest(document=os.path.basename(path), command=command):
                        checked += self.check(shlex.split(command), compose)
        self.assertGreater(checked, 15)

    def check(self, words, compose):
        """Check one command; return 1 if it was one this test knows, else 0."""
        while words and (re.match(r"^[A-Z_]+=", words[0]) or words[0] == "sudo"):
            words = words[1:]  # VARIABLE=value or sudo before it
        if words[:2] == ["docker", "compose"]:
            words = ["docker-compose", *words[2:]]
        if words[:1] == ["python3"] and words[1] in SCRIPTS:
            module = support.load(words[1])
            try:
                module.build_parser(environ={}).parse_args(words[2:])
            except SystemExit:
                self.fail(f"{words[1]} refuses {words[2:]}")
            return 1
        if words[:1] == ["python3"] and words[1].startswith(("tests/", "lab/")):
            self.assertTrue(os.path.exists(support.script(words[1])), words[1])
            return 1
        if words[:2] == ["docker", "exec"]:
            arguments = words[2:]
            while arguments[0].startswith("-"):  # its own options (-it)
                arguments = arguments[1:]
            self.assertIn(arguments[0], compose["containers"])
            if arguments[1:2] == ["python3"]:
                return self.check(arguments[1:], compose)
            return 1
        if words[:3] == ["docker", "network", "inspect"]:
            self.assertIn(words[3], compose["networks"])
            return 1
        if words[:1] == ["docker-compose"]:
            for flag, value in zip(words, words[1:]):
                if flag == "--profile":
                    self.assertIn(value, compose["profiles"])
                if flag == "--scale":
                    self.assertIn(value.split("=")[0], compose["services"])
            verb = next((w for w in words[1:] if w in ("up", "down", "logs", "stop", "start",
                                                       "ps", "build", "exec")), None)
            self.assertIsNotNone(verb, words)
            after = words[words.index(verb) + 1:]
            names = [w for w, before in zip(after, [""] + after)
                     if not w.startswith("-") and before not in ("--tail", "--scale")]
            for name in names:
                self.assertIn(name, compose["services"])
            return 1
        if words[:1] == ["bash"]:
            self.assertTrue(os.path.exists(support.script(words[1])), words[1])
            return 1
        return 0


class DriftTest(unittest.TestCase):
    """The lists kept beside docker-compose.yml say what it says."""

    def test_every_lab_file_the_images_run_gets_into_them(self):
        """A file of lab/ that a service or a lab script runs is let in by .dockerignore."""
        used = set(re.findall(r"/lab/([\w-]+\.\w+)", read(os.path.join(support.PROJECT,
                                                                    "docker-compose.yml"))))
        for script in glob.glob(os.path.join(support.PROJECT, "lab", "*.sh")):
            used |= set(re.findall(r'"\$here/([\w.-]+)"', read(script)))
        allowed = set(re.findall(r"^!lab/([\w.-]+)$",
                                 read(os.path.join(support.PROJECT, ".dockerignore")), re.M))
        self.assertGreaterEqual(len(used), 4, used)
        self.assertLessEqual(used, allowed, ".dockerignore lets in none of " +
                             ", ".join(sorted(used - allowed)))

    def test_the_compose_tests_bring_up_every_profile_but_the_hosts(self):
        from . import test_compose
        tested = set(test_compose.PROFILES[1::2])
        self.assertEqual(tested, compose_file()["profiles"] - {"host"})
        self.assertLessEqual(compose_file()["containers"], set(test_compose.CONTAINERS))


def write():
    for path in DOCUMENTS:
        text = read(path)
        if with_help(text) != text:
            with open(path, "w", encoding="utf-8") as document:
                document.write(with_help(text))
            print(f"wrote {os.path.relpath(path, support.PROJECT)}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        write()
    else:
        unittest.main()
