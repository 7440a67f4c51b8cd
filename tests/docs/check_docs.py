#!/usr/bin/env python3
"""Checks that the repository refers only to itself.

Usage: check_docs.py [REPO_ROOT]   (default: the repository this script is in)
       check_docs.py --extract FILE.md ID   prints the code blocks of FILE.md marked <!-- test: ID -->, in order

Four checks over the tracked files (`git ls-files`; without git, every file outside .git/ and build*/):

1. Links between Markdown files: every relative link or image in a *.md file ([text](path), [text](path#anchor),
   [id]: path) names a file or folder of the repository, and an #anchor names a heading of the target file (GitHub's
   anchor rules) or an explicit <a name/id>. Links with a scheme (https:, mailto:) are not followed.
2. Markdown files named in any text file (a comment that says "see docs/PROTOCOL.md"): the name resolves to a file of
   the repository (from the root or from the naming file's folder; a bare name such as PII.md matches any tracked
   Markdown file of that name). A citation of a document that is not in the repository is a dead reference.
3. Paths of a particular machine or checkout: the build machine's top-level work folder, /home/<user>, /root/,
   /Users/<user>, and the design folder beside the checkout (see the patterns below). They work on one machine
   only. Deployment paths (/etc, /var/lib, /usr) and mkdtemp templates under /tmp are fine.

4. Code blocks that a reader would paste or compile: every fenced block of README.md and of the Markdown files under
   docs/ whose language is a command (sh, console, bash, shell) or a program (c, cpp, c++) has, on the line before
   its fence, either `<!-- illustrative -->` (a sketch, an example with placeholders, a command for another machine)
   or `<!-- test: ID -->` (ID: lower case, digits and '-'), and then a tracked file under tests/ other than this
   checker names ID: that test extracts the blocks (--extract) and runs or compiles them. A block with neither, or an
   ID that no test names, is a problem.

Prints one line per problem (file:line: what) and exits 1 if there is any, 0 otherwise. Python 3 standard library
only. Tested by check_docs_test.py.
"""

import os
import re
import subprocess
import sys
import unicodedata
from urllib.parse import unquote

# Exceptions to check 3, each with its reason: (path in the repository, the exact text allowed there).
ALLOWED_PATHS = {
    # A fake $HOME set in the test's own environment, to test the XDG data-directory fallback.
    ("tests/unit/platform/device_test.cc", "/home/ana"),
}
# Files that spell out the patterns themselves (this checker and its test).
SELF = {"tests/docs/check_docs.py", "tests/docs/check_docs_test.py"}

MACHINE_PATHS = [
    (re.compile(r"(?<![\w.~/-])/work(?=/|\b)(?!-)"), "an absolute path of a build machine (/work)"),
    (re.compile(r"\.\./shared\b"), "a folder outside the repository (../shared)"),
    (re.compile(r"(?<![\w.~/-])/home/[A-Za-z0-9_][A-Za-z0-9_.-]*"), "a user's home directory (/home/<user>)"),
    (re.compile(r"(?<![\w.~/-])/root/"), "root's home directory (/root/)"),
    (re.compile(r"(?<![\w.~/-])/Users/[A-Za-z0-9_][A-Za-z0-9_.-]*"), "a user's home directory (/Users/<user>)"),
]

# A Markdown file named in text: optional folders, then NAME.md, not inside a longer word or path.
MD_MENTION = re.compile(r"(?<![\w/.@-])((?:\.{1,2}/|[\w-][\w.-]*/)*[\w-][\w.-]*\.md)(?![\w/-])")
URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s)>\]\"'`]*")

# Markdown.
FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
ATX_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
SETEXT_UNDERLINE = re.compile(r"^\s{0,3}(=+|-+)\s*$")
INLINE_CODE = re.compile(r"(`+)(.+?)\1")
INLINE_LINK = re.compile(r"!?\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\(\s*(<[^>]*>|[^\s)]+)(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)")
REF_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
HTML_ANCHOR = re.compile(r"<a\s+[^>]*\b(?:name|id)\s*=\s*[\"']([^\"']+)[\"']", re.IGNORECASE)
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")

# Code blocks (check 4).
RUNNABLE_LANGUAGES = {"sh", "console", "bash", "shell", "c", "cpp", "c++"}
ILLUSTRATIVE = re.compile(r"^\s*<!--\s*illustrative\s*-->\s*$")
TESTED = re.compile(r"^\s*<!--\s*test:\s*([a-z0-9][a-z0-9-]*)\s*-->\s*$")


def code_blocks(text):
    """(line number of the opening fence, language, marker line before it, body) of each fenced block."""
    lines = text.split("\n")
    out = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        mark = m.group(1)
        lang = lines[i].strip()[len(mark):].strip().split(" ")[0].lower() if lines[i].strip() != mark else ""
        prev = ""
        j = i - 1
        while j >= 0 and not lines[j].strip():
            j -= 1
        if j >= 0:
            prev = lines[j]
        body = []
        k = i + 1
        while k < len(lines):
            line = lines[k]
            if line.strip() == mark[0] * max(len(mark), len(line.strip())) and line.strip().startswith(mark):
                break
            body.append(line)
            k += 1
        out.append((i + 1, lang, prev, "\n".join(body)))
        i = k + 1
    return out


def is_user_doc(rel):
    """README.md and the Markdown files under docs/: the documents whose blocks a reader runs."""
    return rel == "README.md" or (rel.startswith("docs/") and rel.lower().endswith(".md"))


def extract(path, block_id):
    """The bodies of the blocks of a Markdown file marked <!-- test: block_id -->, joined by newlines."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    bodies = []
    for _, _, prev, body in code_blocks(text):
        m = TESTED.match(prev)
        if m and m.group(1) == block_id:
            bodies.append(body)
    return "\n".join(bodies) + ("\n" if bodies else "")


def tracked_files(root):
    """Repository-relative paths of the tracked files, with '/' separators."""
    try:
        out = subprocess.run(["git", "-C", root, "ls-files", "-z"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             check=True).stdout
        files = [f for f in out.decode("utf-8", "surrogateescape").split("\0") if f]
        if files:
            return sorted(f for f in files if os.path.isfile(os.path.join(root, f)))
    except (OSError, subprocess.CalledProcessError):
        pass
    files = []
    for d, dirs, names in os.walk(root):
        rel = os.path.relpath(d, root)
        dirs[:] = [x for x in dirs if x != ".git" and not (rel == "." and x.startswith("build"))]
        for n in names:
            files.append(os.path.normpath(os.path.join(rel, n)).replace(os.sep, "/"))
    return sorted(files)


def read_text(root, rel):
    """The file's text, or None for a binary file."""
    with open(os.path.join(root, rel), "rb") as f:
        data = f.read()
    if b"\0" in data:
        return None
    return data.decode("utf-8", "replace")


def markdown_lines(text):
    """(line number, line) of the lines outside fenced code blocks, inline code removed."""
    fence = None
    for no, line in enumerate(text.split("\n"), 1):
        m = FENCE.match(line)
        if m:
            mark = m.group(1)
            if fence is None:
                fence = mark
                continue
            if mark[0] == fence[0] and len(mark) >= len(fence) and line.strip() == mark:
                fence = None
                continue
        if fence is not None:
            continue
        yield no, INLINE_CODE.sub(lambda c: " " * len(c.group(0)), line), line


def slug(heading):
    """GitHub's anchor for a heading's text: formatting dropped, lower case, punctuation removed, blanks to '-'."""
    text = INLINE_LINK.sub(lambda m: m.group(1), heading)
    text = re.sub(r"<[^>]+>", "", text)
    text = text.replace("`", "").lower()
    kept = []
    for ch in text:
        cat = unicodedata.category(ch)
        if ch in " -" or ch == "_" or cat[0] in "LNM":
            kept.append(ch)
    return "".join(kept).replace(" ", "-")


def anchors_of(text):
    """Every anchor a Markdown document defines: heading slugs (numbered when repeated) and <a name|id>."""
    seen = {}
    out = set()
    prev = None
    for _, stripped, raw in markdown_lines(text):
        title = None
        m = ATX_HEADING.match(raw)
        if m:
            title = m.group(2)
        elif (prev is not None and prev.strip() and SETEXT_UNDERLINE.match(raw) and not ATX_HEADING.match(prev)
              and not prev.lstrip().startswith(("-", "*", "+", "|", ">"))):
            title = prev.strip()
        if title is not None:
            s = slug(title)
            n = seen.get(s, 0)
            seen[s] = n + 1
            out.add(s if n == 0 else "%s-%d" % (s, n))
        for a in HTML_ANCHOR.findall(raw):
            out.add(a)
        prev = raw
    return out


class Checker:
    def __init__(self, root):
        self.root = os.path.abspath(root)
        self.files = tracked_files(self.root)
        self.file_set = set(self.files)
        self.dirs = set()
        for f in self.files:
            parts = f.split("/")
            for i in range(1, len(parts)):
                self.dirs.add("/".join(parts[:i]))
        self.md_names = {}
        for f in self.files:
            if f.lower().endswith(".md"):
                self.md_names.setdefault(os.path.basename(f), []).append(f)
        self.anchor_cache = {}
        self.problems = []

    def problem(self, rel, line, what):
        p = "%s:%d: %s" % (rel, line, what)
        if p not in self.problems:
            self.problems.append(p)

    def resolve(self, base_dir, target):
        """The repository path a relative reference names, or None when it leaves the repository."""
        if target.startswith("/"):
            path = os.path.normpath(target.lstrip("/"))
        else:
            path = os.path.normpath(os.path.join(base_dir, target))
        path = path.replace(os.sep, "/")
        if path == ".":
            return ""
        if path.startswith("../") or path == "..":
            return None
        return path

    def exists(self, path):
        return path == "" or path in self.file_set or path in self.dirs

    def anchors(self, path):
        if path not in self.anchor_cache:
            text = read_text(self.root, path) or ""
            self.anchor_cache[path] = anchors_of(text)
        return self.anchor_cache[path]

    def check_links(self, rel, text):
        base = os.path.dirname(rel)
        for no, line, raw in markdown_lines(text):
            targets = [m.group(2) for m in INLINE_LINK.finditer(line)]
            m = REF_DEF.match(line)
            if m:
                targets.append(m.group(1))
            for t in targets:
                t = t[1:-1] if t.startswith("<") and t.endswith(">") else t
                if SCHEME.match(t) or t.startswith("//"):
                    continue
                path_part, _, anchor = t.partition("#")
                path_part = unquote(path_part.split("?", 1)[0])
                target = rel if path_part == "" else self.resolve(base, path_part)
                if target is None:
                    self.problem(rel, no, "link leaves the repository: %s" % t)
                    continue
                if not self.exists(target):
                    self.problem(rel, no, "dead link: %s (no such file in the repository)" % t)
                    continue
                if anchor and target.lower().endswith(".md") and target in self.file_set:
                    if unquote(anchor) not in self.anchors(target):
                        self.problem(rel, no, "dead anchor: %s (no such heading in %s)" % (t, target))

    def check_mentions(self, rel, text):
        base = os.path.dirname(rel)
        for no, line in enumerate(text.split("\n"), 1):
            line = URL.sub(" ", line)
            for m in MD_MENTION.finditer(line):
                name = m.group(1)
                if "/" in name:
                    candidates = [self.resolve("", name), self.resolve(base, name)]
                    if any(c is not None and c in self.file_set for c in candidates):
                        continue
                    self.problem(rel, no, "names %s, which is not in the repository" % name)
                elif name not in self.md_names:
                    self.problem(rel, no, "names %s, which is not in the repository" % name)

    def check_paths(self, rel, text):
        if rel in SELF:
            return
        for no, line in enumerate(text.split("\n"), 1):
            for pattern, what in MACHINE_PATHS:
                for m in pattern.finditer(line):
                    if (rel, m.group(0)) in ALLOWED_PATHS:
                        continue
                    self.problem(rel, no, "%s: %s" % (what, m.group(0)))

    def check_blocks(self, rel, text):
        for no, lang, prev, _ in code_blocks(text):
            if lang not in RUNNABLE_LANGUAGES or ILLUSTRATIVE.match(prev):
                continue
            m = TESTED.match(prev)
            if not m:
                self.problem(rel, no, "a ```%s block that no test runs: mark it <!-- test: ID --> and run it in a test, "
                                      "or mark it <!-- illustrative -->" % lang)
                continue
            if m.group(1) not in self.test_text():
                self.problem(rel, no, "<!-- test: %s --> but no file under tests/ names %s" % (m.group(1), m.group(1)))

    def test_text(self):
        """The text of every tracked file under tests/ but this checker and its test, for looking up block ids."""
        if not hasattr(self, "_test_text"):
            parts = []
            for f in self.files:
                if f.startswith("tests/") and f not in SELF:
                    parts.append(read_text(self.root, f) or "")
            self._test_text = "\n".join(parts)
        return self._test_text

    def run(self):
        for rel in self.files:
            text = read_text(self.root, rel)
            if text is None:
                continue
            if rel.lower().endswith(".md"):
                self.check_links(rel, text)
            if is_user_doc(rel):
                self.check_blocks(rel, text)
            if rel not in SELF:
                self.check_mentions(rel, text)
            self.check_paths(rel, text)
        return self.problems


def main(argv):
    if len(argv) == 4 and argv[1] == "--extract":
        sys.stdout.write(extract(argv[2], argv[3]))
        return 0
    root = argv[1] if len(argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    checker = Checker(root)
    problems = checker.run()
    for p in problems:
        print(p)
    if problems:
        print("check_docs: %d problem(s) in %d tracked files" % (len(problems), len(checker.files)))
        return 1
    print("check_docs: %d tracked files, links and references resolve, no machine paths, every command and program "
          "block is tested or illustrative" % len(checker.files))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
