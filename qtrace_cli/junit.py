"""JUnit XML for ``qtrace check``: one test case per model."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

from qtrace_cli.check import CheckResult
from qtrace_cli.compare import describe


def junit_xml(results: Sequence[CheckResult], seconds: float) -> str:
    """A ``<testsuites>`` document that CI systems show as test results."""
    failures = sum(not r.ok for r in results)
    suites = ET.Element(
        "testsuites",
        tests=str(len(results)),
        failures=str(failures),
        time=f"{seconds:.3f}",
    )
    suite = ET.SubElement(
        suites,
        "testsuite",
        name="qtrace check",
        tests=str(len(results)),
        failures=str(failures),
        errors="0",
        skipped="0",
        time=f"{seconds:.3f}",
    )
    for result in results:
        case = ET.SubElement(
            suite,
            "testcase",
            classname="qtrace.check",
            name=result.check.label,
            time=f"{result.seconds:.3f}",
        )
        if not result.ok:
            failure = ET.SubElement(
                case, "failure", message=result.problems[0] if result.problems else ""
            )
            details = list(result.problems)
            if result.diff is not None:
                details += ["", *describe(result.diff)]
            failure.text = "\n".join(details)
        elif result.report is not None:
            out = ET.SubElement(case, "system-out")
            out.text = f"{result.nodes} nodes"
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"
