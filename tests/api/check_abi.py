#!/usr/bin/env python3
"""ABI check of api/engram_store.h: every exported signature in the baseline must still be
declared, unchanged (additions are fine). Run with --update to rewrite the baseline after an
intended, version-bumped break.

usage: check_abi.py HEADER BASELINE [--update]
"""
import re
import sys


def signatures(header_text):
    text = re.sub(r"/\*.*?\*/", " ", header_text, flags=re.S)
    decls = re.findall(r"^\s*ES_EXPORT\s+([^;]+);", text, flags=re.M)
    return sorted(" ".join(d.split()) for d in decls)


def main():
    header, baseline = sys.argv[1], sys.argv[2]
    current = signatures(open(header).read())
    if "--update" in sys.argv:
        open(baseline, "w").write("\n".join(current) + "\n")
        print(f"wrote {len(current)} signatures to {baseline}")
        return 0
    expected = [l for l in open(baseline).read().splitlines() if l.strip()]
    missing = [s for s in expected if s not in current]
    for s in missing:
        print(f"ABI break: signature removed or changed: {s}", file=sys.stderr)
    added = [s for s in current if s not in expected]
    for s in added:
        print(f"note: new signature (add it to the baseline): {s}")
    print(f"{len(expected) - len(missing)} passed, {len(missing)} failed")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
