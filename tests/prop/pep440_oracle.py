"""The PEP 440 oracle: Python's `packaging`, the library pip and most tools use.

Reads one JSON object on stdin: {"versions": [str], "specifiers": [str], "matrix": int}
and writes one JSON object on stdout:
- "packaging": the library's version;
- "versions": for each input, its normalized form, or null when it is not a version;
- "ranks": for each input, its place in the sorted order of the valid inputs (equal
  versions share a place), or null;
- "specifiers": for each input, [normalized, implies_prereleases] or null when invalid;
- "contains": for each specifier, a string of one character per version among the first
  `matrix` inputs: "1" or "0" (SpecifierSet.contains with prereleases=True, i.e. the bare
  PEP 440 match), "-" when the specifier or the version is invalid.
"""

import json
import sys

import packaging
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version


def version(s):
    try:
        return Version(s)
    except InvalidVersion:
        return None


def specifier(s):
    try:
        return SpecifierSet(s)
    except InvalidSpecifier:
        return None


def main():
    req = json.load(sys.stdin)
    versions = [version(s) for s in req["versions"]]
    valid = sorted({v for v in versions if v is not None})
    rank = {v: i for i, v in enumerate(valid)}
    specs = [specifier(s) for s in req["specifiers"]]
    matrix = versions[: req["matrix"]]
    contains = []
    for s in specs:
        if s is None:
            contains.append("")
            continue
        contains.append(
            "".join("-" if v is None else "1" if s.contains(v, prereleases=True) else "0" for v in matrix)
        )
    json.dump(
        {
            "packaging": packaging.__version__,
            "versions": [None if v is None else str(v) for v in versions],
            "ranks": [None if v is None else rank[v] for v in versions],
            "specifiers": [None if s is None else [str(s), bool(s.prereleases)] for s in specs],
            "contains": contains,
        },
        sys.stdout,
    )


main()
