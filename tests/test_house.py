"""Each socket script shows its own map and keeps to it: its docstring lists its
sections, top to bottom, and a banner opens each; the constants come first, the
shared blocks stand together in one generated region, each option's validator
under the command line's banner; the core takes a settings record."""

import ast
import itertools
import re
import unittest

from . import support

SCRIPTS = ("socket_multicast_sender.py", "socket_multicast_receiver.py")
BANNER = re.compile(r"^# ==== (.+?) ====$", re.M)
BLOCK = re.compile(r"^# ---- block (\w+): generated from .*?^# ---- end of block \1 ----$",
                   re.M | re.S)
MAP_LINE = re.compile(r"^    (\S.*?)  +(\S.*)$")
SHARED = "shared blocks"
COMMAND_LINE = "the command line"
MAX_CLASS_LINES = 100


def source(name):
    with open(support.script(name), encoding="utf-8") as stream:
        return stream.read()


def documented_map(text):
    """The sections the docstring lists under 'Top to bottom:', in order."""
    docstring = ast.get_docstring(ast.parse(text))
    lines = docstring.split("Top to bottom:\n", 1)[1].splitlines()
    titles = []
    for line in lines:
        match = MAP_LINE.match(line)
        if not match:
            break
        titles.append(match[1])
    return titles


def sections(text):
    """(title, first line, last line) of each banner's section, 1-based."""
    found = [(m[1], text.count("\n", 0, m.start()) + 1) for m in BANNER.finditer(text)]
    ends = [line - 1 for _, line in found[1:]] + [text.count("\n") + 1]
    return [(title.split(":")[0], start, end) for (title, start), end in zip(found, ends)]


class MapTest(unittest.TestCase):
    def test_the_docstring_lists_the_banners_in_order(self):
        for name in SCRIPTS:
            with self.subTest(name):
                text = source(name)
                titles = [title for title, _, _ in sections(text)]
                self.assertGreaterEqual(len(titles), 5)
                self.assertEqual(documented_map(text), titles)
                self.assertEqual(titles[:2], ["constants", SHARED])

    def test_the_first_banner_follows_the_imports(self):
        for name in SCRIPTS:
            with self.subTest(name):
                text = source(name)
                tree = ast.parse(text)
                last_import = max(node.end_lineno for node in tree.body
                                  if isinstance(node, (ast.Import, ast.ImportFrom)))
                first_banner = sections(text)[0][1]
                between = text.splitlines()[last_import:first_banner - 1]
                self.assertEqual([line for line in between if line.strip()], [], name)

    def test_every_constant_stands_under_the_constants_banner_or_in_a_block(self):
        for name in SCRIPTS:
            with self.subTest(name):
                text = source(name)
                (_, start, end), (_, shared_start, shared_end) = sections(text)[:2]
                for node in ast.parse(text).body:
                    targets = [t.id for t in getattr(node, "targets", [])
                               if isinstance(t, ast.Name)]
                    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                        targets = [node.target.id]
                    for target in targets:
                        if target.isupper() or target.lstrip("_").isupper():
                            self.assertTrue(start <= node.lineno <= end
                                            or shared_start <= node.lineno <= shared_end,
                                            f"{name}:{node.lineno}: {target}")

    def test_the_shared_blocks_stand_together_in_their_region_which_names_them(self):
        for name in SCRIPTS:
            with self.subTest(name):
                text = source(name)
                _, start, end = sections(text)[1]
                lines = text.splitlines(keepends=True)
                region = "".join(lines[start:end])
                names = [m[1] for m in BLOCK.finditer(text)]
                self.assertEqual([m[1] for m in BLOCK.finditer(region)], names)
                rest = [line for line in BLOCK.sub("", region).splitlines()
                        if line.strip() and not line.startswith("#")]
                self.assertEqual(rest, [], "only blocks, and comments, in it")
                # The banner, and the comment lines under it, name the blocks in order.
                after = itertools.takewhile(lambda line: not line.startswith("# ---- block"),
                                            lines[start:])
                banner = lines[start - 1] + "".join(after)
                self.assertEqual(re.findall(r"\b(?:%s)\b" % "|".join(names), banner), names,
                                 banner)

    def test_each_validator_stands_under_the_command_line(self):
        for name in SCRIPTS:
            with self.subTest(name):
                text = source(name)
                tree = ast.parse(text)
                found = {title: (start, end) for title, start, end in sections(text)}
                start, end = found[COMMAND_LINE]
                shared_start, shared_end = found[SHARED]
                functions = {node.name: node.lineno for node in tree.body
                             if isinstance(node, ast.FunctionDef)}
                validators = {keyword.value.id for node in ast.walk(tree)
                              if isinstance(node, ast.Call)
                              for keyword in node.keywords
                              if keyword.arg == "type" and isinstance(keyword.value, ast.Name)
                              and keyword.value.id in functions}
                self.assertTrue(validators)
                for validator in validators:
                    line = functions[validator]
                    self.assertTrue(start <= line <= end or shared_start <= line <= shared_end,
                                    f"{name}: {validator} at line {line}")


class CoreTest(unittest.TestCase):
    def test_the_core_takes_a_settings_record_not_the_command_line(self):
        for name, core in (("socket_multicast_sender.py", "Sender"),
                           ("socket_multicast_receiver.py", "Receiver")):
            with self.subTest(name):
                tree = ast.parse(source(name))
                [cls] = [node for node in tree.body
                         if isinstance(node, ast.ClassDef) and node.name == core]
                names = {node.id for node in ast.walk(cls) if isinstance(node, ast.Name)}
                attributes = {node.attr for node in ast.walk(cls)
                              if isinstance(node, ast.Attribute)}
                self.assertNotIn("args", names | attributes, core)
                [settings] = [node for node in tree.body
                              if isinstance(node, ast.ClassDef) and node.name == "Settings"]
                self.assertIn("NamedTuple", ast.unparse(settings.bases[0]))

    def test_no_class_is_longer_than_a_screenful_or_two(self):
        for name in SCRIPTS:
            for node in ast.parse(source(name)).body:
                if isinstance(node, ast.ClassDef):
                    length = node.end_lineno - node.lineno + 1
                    self.assertLessEqual(length, MAX_CLASS_LINES, f"{name}: {node.name}")


if __name__ == "__main__":
    unittest.main()
