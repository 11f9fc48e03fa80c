"""What a label rule reads: the columns of a pandas ``eval`` expression and how it compares them.

The rule is parsed as pandas parses it: ``&`` and ``|`` are ``and`` and ``or`` (so ``n > 0 & m > 5``
is ``(n > 0) and (m > 5)``, where Python would read ``n > (0 & m) > 5``; review).

:mod:`pipeline.sources.labels` decides from this which catalog columns to read as numbers (those
the rule compares with a number), which to keep as text (those it compares only with text) and
which must be present.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize


def rule_columns(rule: str) -> set[str]:
    """Column names a pandas ``eval`` expression refers to (plain names and backticked ones)."""
    names = set(re.findall(r"`([^`]+)`", rule))
    try:
        tree = ast.parse(re.sub(r"`[^`]+`", "0", rule), mode="eval")
    except SyntaxError:
        return names
    return names | {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}


def numerically_compared_columns(rule: str) -> set[str]:
    """Column names a pandas ``eval`` expression compares with a number.

    Parameters
    ----------
    rule : str
        A pandas ``eval`` expression, e.g. ``"is_lens == 1"`` or ```my col` > -0.5``.

    Returns
    -------
    set of str
        The columns that are an operand of a comparison (``==``, ``<``, ``in``, ...) whose other
        operands include a number or a boolean (``1``, ``-0.5``, ``True``, ``[0, 1]``), directly
        or in arithmetic (``a + 1 > 2``), and the columns the rule takes alone as a truth value
        (``is_lens``, ``confirmed and grade == 'A'``, ``not rejected``: true where non-zero). A column
        compared with text (``grade == 'A'``), used through a method (``name.str.len() > 3``) or
        compared with another column only is not one.
    """
    return _compared_columns(rule, _is_number) | _truth_tested_columns(rule)


def text_compared_columns(rule: str) -> set[str]:
    """Column names a pandas ``eval`` expression compares with text (``grade == 'A'``,
    ``kind in ['ring', 'arc']``): as :func:`numerically_compared_columns` for string literals.

    A column of digits compared only with text stays text (``grade == '1'``): read as numbers, it
    would equal no string and label every row 0.
    """
    return _compared_columns(rule, _is_text)


def _parse(rule: str) -> tuple[ast.Expression | None, dict[str, str]]:
    """The rule's syntax tree with backticked names as placeholders, and the placeholders' names."""
    quoted = {
        f"_backticked_{i}": name for i, name in enumerate(dict.fromkeys(re.findall(r"`([^`]+)`", rule)))
    }
    expression = rule
    for placeholder, name in quoted.items():
        expression = expression.replace(f"`{name}`", placeholder)
    try:
        return ast.parse(_boolean_operators(expression), mode="eval"), quoted
    except SyntaxError:
        return None, quoted


def _boolean_operators(expression: str) -> str:
    """``expression`` with the operators ``&`` and ``|`` written ``and`` and ``or``, token by token
    (not inside strings), as pandas' ``eval`` rewrites them before parsing (``_replace_booleans``)."""
    words = {"&": "and", "|": "or"}
    try:
        tokens = [
            (tokenize.NAME, words[token.string])
            if token.type == tokenize.OP and token.string in words
            else (token.type, token.string)
            for token in tokenize.generate_tokens(io.StringIO(expression).readline)
        ]
    except (tokenize.TokenError, SyntaxError):  # unbalanced brackets, stray indentation: not a rule
        return expression
    return tokenize.untokenize(tokens)


def _truth_tested_columns(rule: str) -> set[str]:
    """Columns that are the rule, an operand of ``and``/``or``/``&``/``|``, or of ``not``/``~``."""
    tree, quoted = _parse(rule)
    if tree is None:
        return set()
    tested = [tree.body, *_tested_nodes(tree)]
    return {quoted.get(node.id, node.id) for node in tested if isinstance(node, ast.Name)}


def _tested_nodes(tree: ast.Expression) -> list[ast.AST]:
    """Operands of ``and``/``or``/``&``/``|`` and of ``not``/``~`` in ``tree``."""
    tested: list[ast.AST] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.BoolOp):
            tested += node.values
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitAnd | ast.BitOr):
            tested += [node.left, node.right]
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not | ast.Invert):
            tested.append(node.operand)
    return tested


def bare_column(rule: str) -> str | None:
    """The column a rule that is a column alone names (``is_lens``, ```is lens```), else None.

    Such a rule takes the column as the label itself (:func:`~pipeline.sources.label_eval.rule_labels`).

    >>> [bare_column(rule) for rule in ["is_lens", " (`is lens`) ", "is_lens == 1", "not is_lens"]]
    ['is_lens', 'is lens', None, None]
    """
    tree, quoted = _parse(rule)
    if tree is None or not isinstance(tree.body, ast.Name):
        return None
    return quoted.get(tree.body.id, tree.body.id)


def label_columns(rule: str) -> set[str]:
    """Columns an expression rule reads as labels: taken as a truth value (``is_lens and not rejected``)
    or compared for (in)equality with 0, 1, True or False only (``is_lens == 1``, ``flag in [0, 1]``).

    A row holding a negative or fractional value in such a column (-1, 0.5) is unknown, and a whole
    number above 1 is read as the rule says with a warning
    (:func:`~pipeline.sources.label_eval.rule_labels`): read as the rule says, -1 is no lens under
    ``== 1``, which is not what the catalog meant. Order comparisons (``n_img > 0``) are counts or
    measures, not labels.

    >>> sorted(label_columns("is_lens == 1 and n_img > 0 and not `bad fit` and grade != 'C'"))
    ['bad fit', 'is_lens']
    """
    tree, quoted = _parse(rule)
    if tree is None:
        return set()
    names = {node.id for node in [tree.body, *_tested_nodes(tree)] if isinstance(node, ast.Name)}
    equality = ast.Eq | ast.NotEq | ast.In | ast.NotIn
    for node in ast.walk(tree):
        operands = [node.left, *node.comparators] if isinstance(node, ast.Compare) else []
        if operands and all(isinstance(op, equality) for op in node.ops):
            literals = [operand for operand in operands if _is_number(operand)]
            if literals and all(_zero_or_one(literal) for literal in literals):
                names |= {operand.id for operand in operands if isinstance(operand, ast.Name)}
    return {quoted.get(name, name) for name in names}


def _zero_or_one(node: ast.AST) -> bool:
    """A literal 0, 1, True or False, or a list, tuple or set of them."""
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        return all(_zero_or_one(element) for element in node.elts)
    return isinstance(node, ast.Constant) and node.value in (0, 1)


def with_truth_tests(rule: str) -> str:
    """``rule`` with each column it takes alone inside ``and``/``or``/``not`` written ``(column != 0)``.

    pandas' ``eval`` cannot negate or combine a column of numbers with booleans (``not rejected``,
    ``confirmed and grade == 'A'``: a new-user trial). A rule that is a column alone, or that pandas'
    syntax beyond Python's (``@variable``) keeps from parsing, is returned unchanged.
    """
    tree, quoted = _parse(rule)
    if tree is None or isinstance(tree.body, ast.Name):
        return rule
    tested = {id(node) for node in _tested_nodes(tree) if isinstance(node, ast.Name)}
    if not tested:
        return rule

    class _Rewrite(ast.NodeTransformer):
        def visit_Name(self, node: ast.Name) -> ast.AST:
            if id(node) not in tested:
                return node
            return ast.Compare(left=node, ops=[ast.NotEq()], comparators=[ast.Constant(0)])

    text = ast.unparse(_Rewrite().visit(tree))
    for placeholder, name in quoted.items():  # review: a function, as a name may hold a backslash
        text = re.sub(rf"\b{placeholder}\b", lambda _, name=name: f"`{name}`", text)
    return text


def _compared_columns(rule: str, is_literal) -> set[str]:  # type: ignore[no-untyped-def]
    """Columns that are operands of a comparison whose other operands include an ``is_literal`` node."""
    tree, quoted = _parse(rule)
    if tree is None:
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
