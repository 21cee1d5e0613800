"""Print the one closing line of `make test` and exit non-zero on any failure.

Every pytest*.xml and testthat*.txt in the output folder counts (the suites
run again under the AVX2 emulation write their own).
"""
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

out = Path(sys.argv[1])
passed = failed = skipped = 0
for name in ("pytest.xml", "pytest-avx2.xml"):
    try:
        suite = ET.parse(out / name).getroot()
        suite = suite.find("testsuite") if suite.tag == "testsuites" else suite
        n, f, e, s = (int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped"))
        passed, failed, skipped = passed + n - f - e - s, failed + f + e, skipped + s
    except (OSError, ET.ParseError):
        print(f"pytest wrote no results ({name})")
        failed += 1
for name in ("testthat.txt", "testthat-avx2.txt"):
    try:
        p, f, s = (int(x) for x in (out / name).read_text().split())
        passed, failed, skipped = passed + p, failed + f, skipped + s
    except (OSError, ValueError):
        print(f"testthat wrote no results ({name})")
        failed += 1
check = (out / "check.log").read_text() if (out / "check.log").exists() else ""
check_ok = "Status: OK" in check or ("Status:" in check and "ERROR" not in check.split("Status:")[-1]
                                     and "WARNING" not in check.split("Status:")[-1])
if not check_ok:
    print("R CMD check did not pass: see", out / "check.log")
line = f"{passed} passed, {failed} failed, {skipped} skipped"
(out / "summary.txt").write_text(line + "\n")
print(line)
sys.exit(0 if failed == 0 and check_ok else 1)
