"""What a message template may be made of, checked when it is saved.

Jinja's sandbox keeps a template away from Python's internals, not from the CPU or the memory:
`{% if (9**(9**9)) > 1 %}` froze the process that checked it (jinja folds constant expressions
while it compiles), `{{ "x" | center(10**9) }}` is a gigabyte, two `{% set %}` lines that double
a text thirty times are a billion characters, and three nested loops over `range(100000)` never
end. A marketer's template needs none of that: text, the variables and their fields,
conditions, loops over the data a message is given, and filters that never make a text longer
than what they are given. So that is all a template may hold; anything else is refused with a
400 that names it. The sandbox also refuses `**`, `*` and `%` at render time
(`BoundedSandbox`), for a template stored before this check.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jinja2 import nodes

# Filters whose output is no longer than their input and arguments: not `center`, `indent`,
# `wordwrap`, `format` (widths), `replace` (chained, it multiplies), `batch`, `slice`.
FILTERS = frozenset({
    "abs", "capitalize", "count", "d", "default", "e", "escape", "first", "float", "int",
    "join", "last", "length", "lower", "round", "string", "striptags", "title", "trim",
    "truncate", "upper", "urlencode",
})  # fmt: skip
MAX_LOOP_DEPTH = 2  # loops over products and a product's fields; three multiply past reason

# The nodes a template is made of: its text and output, names and constants, fields and items,
# conditions and comparisons, loops, filters and tests, and arithmetic that cannot grow a value
# (no `*`, `**`, `%`: a number or a text raised, repeated or formatted to any size).
_NODES = frozenset({
    "Template", "Output", "TemplateData", "Name", "Const", "Getattr", "Getitem", "If",
    "CondExpr", "For", "Compare", "Operand", "And", "Or", "Not", "Neg", "Pos", "Filter", "Test",
    "Concat", "Add", "Sub", "Div", "FloorDiv", "List", "Tuple", "Dict", "Pair", "Keyword",
})  # fmt: skip
_WORDS = {
    "Pow": "`**`",
    "Mul": "`*`",
    "Mod": "`%`",
    "Call": "calling a function or a method",
    "Macro": "macros",
    "CallBlock": "call blocks",
    "Assign": "`{% set %}`",
    "AssignBlock": "`{% set %}`",
    "With": "`{% with %}`",
    "Include": "`{% include %}`",
    "Import": "`{% import %}`",
    "FromImport": "`{% from ... import %}`",
    "Extends": "`{% extends %}`",
    "Block": "`{% block %}`",
    "FilterBlock": "`{% filter %}`",
    "Slice": "slices",
}


def template_problem(parsed: nodes.Template) -> str | None:
    """What in a parsed template is not allowed (the first thing found), or None."""
    return _problem(parsed, 0)


def _problem(node: nodes.Node, loops: int) -> str | None:
    kind = type(node).__name__
    if kind not in _NODES:
        what = _WORDS.get(kind, f"`{kind}`")
        return f"{what} is not allowed in a message template"
    if kind == "For":
        if getattr(node, "recursive", False):
            return "recursive loops are not allowed in a message template"
        loops += 1
        if loops > MAX_LOOP_DEPTH:
            return f"loops go {MAX_LOOP_DEPTH} deep at most in a message template"
    if kind == "Filter" and getattr(node, "name", None) not in FILTERS:
        return (
            f"the filter {getattr(node, 'name', '?')} is not allowed in a message template; "
            f"allowed: {', '.join(sorted(FILTERS))}"
        )
    child: Any
    for child in node.iter_child_nodes():
        found = _problem(child, loops)
        if found:
            return found
    return None
