"""Reading the text of a label catalog as spreadsheets write it (see :mod:`pipeline.sources.labels`).

Encodings (UTF-8, UTF-16, Windows-1252), the field delimiter (comma, semicolon, tab), rows with
more fields than the header, boolean text and decimal commas: the conversions the label module's
docstring lists, each refusing what it cannot read unambiguously with a :class:`CatalogFormatError`.
"""

from __future__ import annotations

import csv
import io
import re
import warnings
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import pandas as pd

from pipeline.errors import LenshuntError

DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab"}
"""The field delimiters a catalog may use, with their names."""
_TRUE_WORDS = frozenset({"true", "yes", "y", "vrai", "wahr", "verdadero", "vero", "verdadeiro", "waar"})
_FALSE_WORDS = frozenset({"false", "no", "n", "faux", "falsch", "falso", "onwaar"})
_BOOLEAN_HINT = "TRUE/FALSE, yes/no, Y/N or 1/0 (-1 or empty where unknown)"
_DECIMAL_COMMA = r"[+-]?\d*,\d+(?:[eE][+-]?\d+)?"
_THOUSANDS = r"[+-]?\d{1,3},\d{3}"


class CatalogFormatError(LenshuntError, ValueError):
    """A label catalog exists but cannot be read, has bad values, or lacks the rule's columns."""


def catalog_text(raw: bytes) -> tuple[str, str]:
    """The text of a catalog file and its encoding: what spreadsheets save.

    UTF-8 (with or without a byte-order mark); UTF-16 with a byte-order mark (Excel's "Unicode
    text"); else, where the bytes have no control characters and are no UTF-8, Windows-1252 (Excel's "CSV" on
    Windows, e.g. an accented name ``0xe9``). Raises :class:`UnicodeDecodeError` for anything else.
    """
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16"), "UTF-16"
    try:
        return raw.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        if set(raw) & CONTROL_BYTES:  # binary, or UTF-16 without a byte-order mark: no guess
            raise
        return raw.decode("cp1252", errors="strict"), "Windows-1252"


CONTROL_BYTES = frozenset(range(32)) - {9, 10, 13}
"""Bytes no text file has (C0 controls but tab, line feed, carriage return)."""


def without_comment_lines(text: str, comment: str) -> tuple[str, str | None]:
    r"""``text`` with its comment lines blanked (kept as empty lines, so line numbers hold), and the
    delimiter an Excel ``sep=;`` first line declares (that line blanked too), or None.

    A comment line is one that starts with ``comment`` (after spaces), or with it inside a quote (a
    spreadsheet quotes a comment line holding its delimiter). ``comment`` elsewhere is data
    (new-user trial: ``"candidate #3"`` and Excel's ``#N/A`` cut rows, losing their labels).

    >>> without_comment_lines('sep=;\n# id; label\n"# quoted; comment"\nID;x\n1;"a #3"', "#")
    ('\n\n\nID;x\n1;"a #3"', ';')
    """
    lines = physical_lines(text)
    declared = None
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    match = re.fullmatch(r"\s*\"?sep=(.)\"?\s*", lines[first]) if first is not None else None
    if match and match.group(1) in DELIMITERS:
        declared, lines[first] = match.group(1), ""
    if comment:
        lines = ["" if is_comment_line(line, comment) else line for line in lines]
    return "\n".join(lines), declared


_EXCEL_ERRORS = r"#(?:N/A|REF!|DIV/0!|VALUE!|NAME\?|NUM!|NULL!|SPILL!|CALC!|FIELD!|BLOCKED!|BUSY!|UNKNOWN!)"
"""Excel's error values, which a formula column (a VLOOKUP of names) writes as data."""


def is_excel_error(value: str) -> bool:
    """Whether ``value`` is one of Excel's error values (``#N/A``, ``#REF!``, ...), an empty cell's stand-in.

    >>> [is_excel_error(value) for value in ["#N/A", "#DIV/0!", "#44", "150.2"]]
    [True, True, False, False]
    """
    return re.fullmatch(_EXCEL_ERRORS, value.strip()) is not None


def is_comment_line(line: str, comment: str) -> bool:
    """Whether ``line`` is a comment line: it starts with ``comment`` (after spaces, or inside a quote).

    Not when it is a data row that only starts so (new-user trial: such rows were dropped and
    their labels lost): a first field that is one of Excel's error values (``#N/A,100000,1``), or a
    quoted first field followed by other non-empty fields (``"# note",5,1``; a quoted comment line
    followed by empty fields only, ``"# a, b",,,``, is a comment).

    >>> [is_comment_line(line, "#") for line in ["# ID,x", '"# a, b",,', "#N/A,3,1", '"# n",5,1', "1,#N/A"]]
    [True, True, False, False, False]
    """
    stripped = line.lstrip()
    if not stripped.lstrip('"').startswith(comment):
        return False
    if comment == "#" and re.match(_EXCEL_ERRORS + r"\s*(?:[,;\t]|$)", stripped.lstrip('"')):
        return False
    quoted = re.fullmatch(r'"[^"]*"\s*[,;\t](.*)', stripped)
    return not (quoted and re.search(r'[^\s,;\t"]', quoted.group(1)))


def header_names(text: str, delimiter: str) -> list[str]:
    """The column names of the first non-empty line of ``text`` (comment lines blanked), stripped."""
    header = next((line for line in physical_lines(text) if line.strip()), "")
    return [field.strip() for field in next(csv.reader([header], delimiter=delimiter), [])]


def header_line_below(text: str, delimiter: str, id_column: str, header_line: int) -> int | None:
    r"""The first of the 20 lines after ``header_line`` (1-based) with a field ``id_column`` (any case), or
    None: a spreadsheet's title rows above the real header (fresh-user trial: the error named the
    title as the header, and said to rename the id column).

    >>> header_line_below('"Lens keys, May";;\nID;is_lens\n1;0', ";", "ID", 1)
    2
    """
    lines = physical_lines(text)[header_line : header_line + 20]
    for number, line in enumerate(lines, start=header_line + 1):
        row = next(csv.reader([line], delimiter=delimiter), [])
        if id_column.lower() in (field.strip().lower() for field in row):
            return number
    return None


def delimiter_of(text: str, comment: str, id_column: str) -> str:
    """The field delimiter of the header line: the one whose fields include the id column (in any letter
    case), else most."""
    header = next((line for line in contents(text, comment) if line.strip()), "")

    def fields(delimiter: str) -> list[str]:
        row = next(csv.reader([header], delimiter=delimiter, skipinitialspace=True), [])
        return [field.strip().lower() for field in row]

    wanted = id_column.lower()
    return max(DELIMITERS, key=lambda delimiter: (wanted in fields(delimiter), len(fields(delimiter))))


def parse_fields(text: str, comment: str, delimiter: str) -> pd.DataFrame:
    """All fields as text; ``attrs["extra_fields"]`` when rows have more fields than the header.

    pandas takes the first column of such rows as the index and shifts the others. Where the extra
    field is only a trailing empty one, a semicolon- or tab-separated file is re-read without it; a
    comma-separated one is flagged too (``attrs["extra_fields"] == "empty"``): a trailing comma
    there cannot be told from a decimal comma before an empty last column (new-user trial:
    ``100000,20,6586,1,`` under ``ID,mag_lens,is_lens,comment`` stored every lens as a non-lens).
    """
    options = {"sep": delimiter, "comment": comment or None, "skipinitialspace": True, "dtype": str}
    table = pd.read_csv(io.StringIO(text), skip_blank_lines=True, **options)
    if isinstance(table.index, pd.RangeIndex):
        return table
    last = table.iloc[:, -1]
    trailing_empty = bool((last.isna() | (last.str.strip() == "")).all())
    if trailing_empty and delimiter != ",":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", pd.errors.ParserWarning)
            return pd.read_csv(io.StringIO(text), skip_blank_lines=True, index_col=False, **options)
    table = table.reset_index(drop=True)
    table.attrs["extra_fields"] = "empty" if trailing_empty else "values"
    return table


@dataclass(frozen=True)
class TextColumn:
    """A text column being converted, with what its errors name."""

    path: object
    name: str
    lines: pd.Series
    values: pd.Series
    rule: str
    needed: bool

    def refuse(self, offending: pd.Series, problem: str, fix: str = "Fix or delete the row.") -> None:
        first = offending.to_numpy().nonzero()[0][0]
        raise CatalogFormatError(
            f"label catalog {self.path} line {self.lines.iloc[first]}: value {self.values.iloc[first]!r} in "
            f"column {self.name!r} {problem}, and the label rule {self.rule!r} reads that column as "
            f"numbers. {fix}"
        )


def decimal_commas(
    column: TextColumn, present: pd.Series, numbers: pd.Series, delimiter: str
) -> pd.Series | None:
    """The column as numbers if it is written with decimal commas (module docstring), else None.

    Raises :class:`CatalogFormatError` for a column the rule reads that mixes decimal points and
    commas, or whose commas may be thousands separators.
    """
    values = column.values
    commas = present & values.str.fullmatch(_DECIMAL_COMMA).fillna(False).astype(bool)
    if not commas.any() or (present & numbers.isna() & ~commas).any():
        return None
    points = present & numbers.notna() & values.str.contains(".", regex=False).fillna(False).astype(bool)
    if points.any():
        if column.needed:
            point_line = column.lines.iloc[points.to_numpy().nonzero()[0][0]]
            column.refuse(
                commas,
                f"has a decimal comma while line {point_line} of the column has a decimal point",
                "Write every number of the column with the same decimal separator.",
            )
        return None
    thousands = commas & values.str.fullmatch(_THOUSANDS).fillna(False).astype(bool)
    if delimiter != ";" and (thousands == commas).all():
        if column.needed:
            column.refuse(
                commas,
                f"may hold a decimal comma or a thousands separator in this {DELIMITERS[delimiter]}-"
                "separated file",
                "Write the numbers with a decimal point and no thousands separator, or save the catalog "
                "semicolon-separated with decimal commas.",
            )
        return None
    return pd.to_numeric(values.where(~commas, values.str.replace(",", ".", regex=False)), errors="coerce")


def refuse_thousands_points(column: TextColumn, decimal_columns: list[str], delimiter: str) -> None:
    """Refuse a rule column whose ``1.500`` may mean 1500: where the file writes decimals with a
    comma (``decimal_columns``), or in a semicolon- or tab-separated file (a decimal-comma locale's
    spreadsheet) where the column's other values are integers (new-user trial: read as 1.5).

    Raises :class:`CatalogFormatError` naming the first such value.
    """
    values = column.values
    dotted = values.str.fullmatch(r"[+-]?\d{1,3}(?:\.\d{3})+").fillna(False).astype(bool)
    if not dotted.any():
        return
    others = values[~dotted].dropna()
    others = others[others != ""]
    if decimal_columns:
        why = f"as the file writes decimals with a comma (in {decimal_columns})"
    elif delimiter != "," and len(others) and others.str.fullmatch(r"[+-]?\d+").all():
        why = f"as the column's other values are integers and the file is {DELIMITERS[delimiter]}-separated"
    else:
        return
    fix = "Write the column without thousands separators."
    column.refuse(dotted, f"may be a number with a thousands point, {why}", fix)


_SCIENTIFIC = r"[+-]?(\d*)\.?(\d*)[eE][+-]?\d+"


def exact_ids(raw: pd.Series, largest: int) -> pd.Series:
    """Object ids written in ``raw`` as exact Python ints (object dtype), None where a text is no
    whole number from 0 to ``largest``: read as decimals, so an id past 2**53 is not rounded to a
    neighbour's by float64 as ``pandas.to_numeric`` rounds every id of a column holding one
    non-integer text (trial: a 23-digit id was stored as -9223372036854775808).

    >>> texts = ["12345678901234567", "100007.0", "1e3", "-5", "1.5", "x", "1_0", "9" * 23]
    >>> exact_ids(pd.Series(texts), 2**63 - 1).tolist()
    [12345678901234567, 100007, 1000, None, None, None, None, None]
    """

    def parse(text: object) -> int | None:
        if not isinstance(text, str) or "_" in text:  # Decimal reads 1_0 as 10; a spreadsheet does not
            return None
        try:
            value = Decimal(text)
        except InvalidOperation:
            return None
        whole = value.is_finite() and value == value.to_integral_value() and 0 <= value <= largest
        return int(value) if whole else None

    return pd.Series([parse(text) for text in raw], index=raw.index, dtype=object)  # map made floats


def rounded_scientific(raw: pd.Series, numbers: pd.Series) -> pd.Series:
    """Where an integer written in E notation has fewer significant digits than its value's integer
    digits: a spreadsheet's display rounding (Excel writes 1234567 as ``1.23457E+06``), not the number.

    >>> raw = pd.Series(["1.23457E+06", "1.00000E+05", "1E+05", "1.234567e6", "1234567"])
    >>> rounded_scientific(raw, pd.to_numeric(raw)).tolist()
    [True, False, True, False, False]
    """
    parts = raw.str.strip().str.fullmatch(_SCIENTIFIC).fillna(False).astype(bool)
    mantissa = raw.str.strip().str.extract(_SCIENTIFIC, expand=True).fillna("")
    digits = (mantissa[0] + mantissa[1]).str.lstrip("0").str.len()
    magnitude = numbers.abs().where(parts, 0).astype("float64").fillna(0)
    integer_digits = magnitude.map(lambda value: len(str(int(value))) if value >= 1 else 0)
    return parts & (digits < integer_digits)


def boolean_values(column: TextColumn, present: pd.Series, numbers: pd.Series) -> pd.Series | None:
    """A column the rule compares with numbers, written as boolean text, as 1/0 (-1, lenshunt's
    unknown, kept); None if it has none.

    Raises :class:`CatalogFormatError` naming the first value that is no boolean, nor 1, 0 or -1, in a
    column that holds booleans.
    """
    words = column.values.str.lower().str.strip()
    true, false = words.isin(_TRUE_WORDS), words.isin(_FALSE_WORDS)
    if not (true | false).any():
        return None
    letters = present & words.isin(["y", "n"])
    if letters.any() and words[true | false].nunique() == 1 and (present & numbers.notna()).any():
        column.refuse(  # a lone N among numbers: No, or the common "n" for a missing value?
            letters,
            "is the only word in a column of numbers: it may be No or mark a missing value",
            "Leave missing values empty, or write the column with Y/N (or TRUE/FALSE) throughout.",
        )
    other = present & ~(true | false | numbers.isin([0, 1, -1]))  # -1: unknown (trial: refused beside TRUE)
    if other.any():
        example = (true | false).to_numpy().nonzero()[0][0]
        column.refuse(
            other,
            f"is not a boolean, while line {column.lines.iloc[example]} of the column holds the boolean "
            f"{column.values.iloc[example]!r}",
            f"Write the column with {_BOOLEAN_HINT} throughout.",
        )
    return pd.to_numeric(numbers.where(~true, 1).where(~false, 0), errors="coerce")


def file_lines(text: str, comment: str, n_rows: int, delimiter: str = ",") -> tuple[int, list[int]]:
    r"""File line (1-based) of the header and of each data row as pandas reads them.

    A row's line is the physical line of ``text`` where its record starts, the line a text editor or
    spreadsheet shows: a quoted field holding line breaks spans several lines, which
    :mod:`csv` counts (trial: the record number was given, "line 11" for a row on line 20).

    Parameters
    ----------
    text : str
        The file's text.
    comment : str
        Comment character (``""``: none); text after it on a line is no field.
    n_rows : int
        Data rows pandas read from ``text``.
    delimiter : str
        Field delimiter: a quote opens a quoted field only at a field's start.

    Returns
    -------
    tuple of (int, list of int)
        The header's line and ``n_rows`` data rows' lines; counted on from the header (a row a line)
        where the records found are not ``n_rows`` (a file :mod:`csv` reads otherwise than pandas).

    Examples
    --------
    >>> file_lines('id,note\n1,"two\nlines"\n\n2,x', "", 2)
    (1, [2, 5])
    """
    starts, end, lines = [], 0, contents(text, comment)
    reader = csv.reader(lines, delimiter=delimiter, skipinitialspace=True)
    try:
        for _ in reader:  # pandas skips blank lines: not '""', an empty quoted field (review)
            start, end = end + 1, reader.line_num
            if any(line.strip() for line in lines[start - 1 : end]):
                starts.append(start)
    except csv.Error:  # e.g. a field over csv's size limit: count a row a line
        starts = []
    header = starts[0] if starts else 0
    lines = starts[1:]
    if len(lines) != n_rows:
        lines = list(range(header + 1, header + 1 + n_rows))
    return header, lines


def physical_lines(text: str) -> list[str]:
    r"""The lines of ``text`` as pandas and :mod:`csv` split them: at ``\r\n``, ``\r`` and ``\n`` alone.

    :meth:`str.splitlines` splits at U+2028, U+0085, form feeds and ``\x1c``-``\x1e`` too (review: a
    note holding U+2028, pasted from a web page, became a row of its own and the catalog was refused).

    >>> physical_lines("a\u2028b\r\nc\rd\n"), physical_lines("")
    (['a\u2028b', 'c', 'd'], [])
    """
    lines = re.split(r"\r\n|\r|\n", text)
    return lines[:-1] if lines[-1] == "" else lines


def contents(text: str, comment: str) -> list[str]:
    """Each line of ``text`` without its comment."""
    return [line.split(comment, 1)[0] if comment else line for line in physical_lines(text)]
