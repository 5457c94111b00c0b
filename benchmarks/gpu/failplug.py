"""pytest plugin: append each failure to $OUT/failures.txt as it happens.

A command on a lent GPU machine can be cut off by its time limit before pytest
prints its summary; with ``-p failplug`` the failures seen so far survive.
"""

import os


def pytest_runtest_logreport(report):
    if report.failed:
        path = os.path.join(os.environ.get("OUT", "/tmp"), "failures.txt")
        with open(path, "a", encoding="utf-8") as f:
            f.write(f"==== {report.nodeid} [{report.when}]\n"
                    f"{report.longreprtext[-2500:]}\n")
