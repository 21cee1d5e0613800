"""Print the one closing line of `make test` and exit non-zero on any failure."""
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

out = Path(sys.argv[1])
passed = failed = skipped = 0
try:
    suite = ET.parse(out / "pytest.xml").getroot()
    suite = suite.find("testsuite") if suite.tag == "testsuites" else suite
    n, f, e, s = (int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped"))
    passed, failed, skipped = n - f - e - s, f + e, s
except (OSError, ET.ParseError):
    print("pytest wrote no results")
    failed += 1
try:
    p, f, s = (int(x) for x in (out / "testthat.txt").read_text().split())
    passed, failed, skipped = passed + p, failed + f, skipped + s
except (OSError, ValueError):
    print("testthat wrote no results")
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
