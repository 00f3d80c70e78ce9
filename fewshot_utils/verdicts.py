"""A paper's claim against what a chapter measured: one verdict, in words.

A chapter lists each claim with named checks (a name saying what must hold, and whether it
held). The verdict is one of three: **agrees** when every check holds, **disagrees** naming
the checks that were not met, or **not testable in this profile** with the reason, when the
experiment as run cannot tell (it is then not counted for or against the paper).
``effects.verdict`` is another question: the sign and size of one measured difference against
the paper's.
"""

from __future__ import annotations


def verdict(checks: dict[str, bool], untestable: str = "") -> str:
    """'not testable in this profile (why)' when ``untestable`` says why; else 'agrees' when
    every check holds, else 'disagrees (check not met: ...)' with the checks that do not."""
    if not checks and not untestable:
        raise ValueError("a verdict needs at least one check, or the reason it is untestable")
    if untestable:
        return f"not testable in this profile ({untestable})"
    failed = [name for name, ok in checks.items() if not ok]
    return "agrees" if not failed else "disagrees (check not met: " + "; ".join(failed) + ")"
