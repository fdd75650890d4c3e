#!/usr/bin/env python3
"""Counts the Schemathesis JUnit reports of scripts/fuzz-api.sh: one test case per operation,
failed if it holds a <failure> or <error>. Prints each failure's first lines and the line
`fuzz: N passed, M failed`; exits 1 if any case failed or a report is missing or empty.

    summary.py REPORT.junit.xml...
"""

import sys
import xml.etree.ElementTree as ET


def main(paths):
    passed, failed, skipped, broken = 0, 0, 0, []
    for path in paths:
        try:
            cases = list(ET.parse(path).getroot().iter("testcase"))
        except (OSError, ET.ParseError) as e:
            broken.append(f"{path}: {e}")
            continue
        if not cases:
            broken.append(f"{path}: no test cases")
        for case in cases:
            problems = case.findall("failure") + case.findall("error")
            if problems:
                failed += 1
                print(f"FAILED {path.rsplit('/', 1)[-1]}: {case.get('name')}")
                for problem in problems:
                    text = (problem.get("message") or problem.text or "").strip()
                    for line in text.splitlines()[:12]:
                        print(f"    {line}")
            elif case.find("skipped") is not None:
                skipped += 1
            else:
                passed += 1
    for problem in broken:
        print(f"fuzz: report problem: {problem}")
    extra = f" ({skipped} skipped)" if skipped else ""
    print(f"fuzz: {passed} passed, {failed + len(broken)} failed{extra}")
    return 1 if failed or broken else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
