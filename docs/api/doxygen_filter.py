#!/usr/bin/env python3
"""Doxygen input filter for Ferry's public headers (docs/api/Doxyfile.in).

The headers are written with plain comments (`/* ... */` in ferry.h, `// ...` in ferry.hpp) so that they read well
as files; this filter turns them into documentation comments for Doxygen without changing the headers:
a comment that stands alone before a declaration becomes `/** ... */` or `///`, and a comment after code on the
same line (an enum value, a member) becomes `/**< ... */` or `///<`. Section banners (`/* ---`) stay plain.
Usage (by Doxygen): doxygen_filter.py FILE  -> the filtered text on stdout.
"""

import re
import sys

TRAILING_BLOCK = re.compile(r"^(\s*\S.*?;?,?\s*)/\*(?![*!<])(.*)$")
TRAILING_LINE = re.compile(r"^(\s*[^\s/].*?)//(?![/!<])(.*)$")


def filter_text(text):
    out = []
    for line in text.split("\n"):
        stripped = line.lstrip()
        if stripped.startswith("/* ---") or stripped.startswith("/*---") or stripped.startswith("// ---"):
            out.append(line)
        elif stripped.startswith("/*") and not stripped.startswith(("/**", "/*!")):
            out.append(line.replace("/*", "/**", 1))
        elif stripped.startswith("//") and not stripped.startswith(("///", "//!")):
            out.append(line.replace("//", "///", 1))
        elif not stripped.startswith(("#", "*")) and TRAILING_BLOCK.match(line) and '"' not in line.split("/*")[0]:
            out.append(re.sub(r"/\*(?![*!<])", "/**<", line, count=1))
        elif not stripped.startswith("#") and TRAILING_LINE.match(line) and "NOLINT" not in line and \
                '"' not in line.split("//")[0]:
            out.append(re.sub(r"//(?![/!<])", "///<", line, count=1))
        else:
            out.append(line)
    return "\n".join(out)


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as f:
        sys.stdout.write(filter_text(f.read()))
