"""What a label rule reads: the columns of a pandas ``query`` expression and how it compares them.

:mod:`pipeline.sources.labels` decides from this which catalog columns to read as numbers (those
the rule compares with a number), which to keep as text (those it compares only with text) and
which must be present.
"""

from __future__ import annotations

import ast
import re


def rule_columns(rule: str) -> set[str]:
    """Column names a pandas ``query`` expression refers to (plain names and backticked ones)."""
    names = set(re.findall(r"`([^`]+)`", rule))
    try:
        tree = ast.parse(re.sub(r"`[^`]+`", "0", rule), mode="eval")
    except SyntaxError:
        return names
    return names | {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}


def numerically_compared_columns(rule: str) -> set[str]:
    """Column names a pandas ``query`` expression compares with a number.

    Parameters
    ----------
    rule : str
        A pandas ``query`` expression, e.g. ``"is_lens == 1"`` or ```my col` > -0.5``.

    Returns
    -------
    set of str
        The columns that are an operand of a comparison (``==``, ``<``, ``in``, ...) whose other
        operands include a number or a boolean (``1``, ``-0.5``, ``True``, ``[0, 1]``), directly
        or in arithmetic (``a + 1 > 2``). A column compared with text (``grade == 'A'``), used
        through a method (``name.str.len() > 3``) or compared with another column only is not one.
    """
    return _compared_columns(rule, _is_number)


def text_compared_columns(rule: str) -> set[str]:
    """Column names a pandas ``query`` expression compares with text (``grade == 'A'``,
    ``kind in ['ring', 'arc']``): as :func:`numerically_compared_columns` for string literals.

    A column of digits compared only with text stays text (``grade == '1'``): read as numbers, it
    would equal no string and label every row 0.
    """
    return _compared_columns(rule, _is_text)


def _compared_columns(rule: str, is_literal) -> set[str]:  # type: ignore[no-untyped-def]
    """Columns that are operands of a comparison whose other operands include an ``is_literal`` node."""
    quoted = {
        f"_backticked_{i}": name for i, name in enumerate(dict.fromkeys(re.findall(r"`([^`]+)`", rule)))
    }
    expression = rule
    for placeholder, name in quoted.items():
        expression = expression.replace(f"`{name}`", placeholder)
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError:
        return set()
    columns = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        if any(is_literal(operand) for operand in operands):
            for operand in operands:
                columns |= _arithmetic_names(operand)
    return {quoted.get(name, name) for name in columns}


def _is_number(node: ast.AST) -> bool:
    """A number or boolean literal (signed), or a list, tuple or set of them."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        return _is_number(node.operand)
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        return bool(node.elts) and all(_is_number(element) for element in node.elts)
    return isinstance(node, ast.Constant) and isinstance(node.value, int | float)


def _is_text(node: ast.AST) -> bool:
    """A string literal, or a list, tuple or set of them."""
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        return bool(node.elts) and all(_is_text(element) for element in node.elts)
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _arithmetic_names(node: ast.AST) -> set[str]:
    """Names in ``node`` reached through arithmetic only (not through calls, attributes, ...)."""
    if isinstance(node, ast.Name):
        return {node.id}
    if isinstance(node, ast.UnaryOp):
        return _arithmetic_names(node.operand)
    if isinstance(node, ast.BinOp):
        return _arithmetic_names(node.left) | _arithmetic_names(node.right)
    return set()


def readable_error(reason: str, rule: str) -> str:
    """pandas' error ``reason`` on one line, with the rule's backticked names as written (pandas says
    ``BACKTICK_QUOTED_STRING_my_grade`` for `my grade`; new-user trial)."""
    reason = reason.replace("\n", " ")
    try:
        from pandas.core.computation.parsing import create_valid_python_identifier
    except ImportError:  # a private helper: another pandas may move it
        return reason
    for name in re.findall(r"`([^`]+)`", rule):
        reason = reason.replace(create_valid_python_identifier(name), f"`{name}`")
    return reason
