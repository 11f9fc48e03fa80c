"""Labels from a set's challenge-style catalog: 1 lens, 0 non-lens, -1 unknown.

The layout's catalog spec names the file glob, the comment character of header lines, the id
column and a pandas ``eval`` expression that is true for lenses, e.g. the second challenge's
``n_source_im > 0 and mag_eff > 1.6 and n_pix_source > 20``.

What a catalog may hold, and what becomes of it:

- a rule that is a column alone (``is_lens``) takes the column as the label: 1, 0 (or boolean text),
  -1 or empty (unknown); any other value is refused naming the line. An expression reads values as
  written, with a warning note where a column it reads as a label holds others
  (:mod:`pipeline.sources.label_eval`);
- the layout's id column, and each column its label rule names, is found in another letter case (``id``
  for ``ID``, ``IS_LENS`` for ``is_lens``) where its name is not there, unless several columns are
  named so (``id`` and ``Id``: refused);
- rows without an id (a spreadsheet's trailing ``,,,,`` rows, blank ids) are skipped and counted;
- a row whose missing values could change its label (a truncated last row, an empty
  ``is_lens``) is labelled -1, unknown, never 0: the rule is evaluated with the missing values
  replaced by probes (-inf, +inf, 0, the rule's numbers, the column's few distinct values) and only a
  label that no probe changes is kept;
- several rows of one id with the same label count once; with different labels the catalog is
  refused (:class:`CatalogFormatError` naming the lines), never resolved by row order;
- an id in scientific notation with fewer significant digits than the id (a spreadsheet's
  ``1.23457E+06`` for 1234567) is refused: the spreadsheet rounded it (``1.00000E+05`` is read);
- an id written with a decimal comma (``100120,00``) is read where the file writes decimals with a
  comma; there an id with thousands points (``100.120``) is refused (:mod:`pipeline.sources.label_ids`);
- an id that is not a non-negative integer, or a non-number in a numeric column the rule reads,
  is a :class:`CatalogFormatError` naming the file, the line and the fix.

What spreadsheets write, and how it is read:

- comment lines are whole lines starting with the comment character (also inside a quote, as a
  spreadsheet saves a comment line holding its delimiter); elsewhere it is data (``"cand #3"``,
  Excel's ``#N/A``). Excel's ``sep=;`` first line declares the delimiter;
- otherwise the field delimiter is taken from the header line: comma, semicolon (a spreadsheet's CSV in
  locales with a decimal comma) or tab (its "text" export), whichever splits the header into
  fields that include the id column (else into the most fields; comma on a tie). A delimiter
  other than the comma is said in the notes;
- boolean text in a column the rule compares with a number or takes alone (``is_lens == 1``,
  ``is_lens and not rejected``; :func:`~pipeline.sources.label_rules.with_truth_tests`): TRUE/FALSE,
  yes/no, Y/N in any case, with surrounding spaces, and the TRUE/FALSE of French, German,
  Spanish, Italian, Portuguese and Dutch spreadsheets (VRAI/FAUX, WAHR/FALSCH, ...), is read as
  1/0, alongside 1 and 0 if the column also holds those. Such a column holding any other text or
  number, or holding text only, is refused naming the column and the first offending line: it
  would otherwise compare unequal to every number and label every row 0. A lone ``Y`` or ``N``
  as the only word in a column of numbers (``1, N, 0``: No, or "n" for a missing value?) is
  refused too. A column the rule compares with text (``grade == 'A'``) stays text;
- decimal commas: a column whose values are all numbers, some written with one decimal comma
  (``1,87``, ``-0,5``, ``1,5E-3``) and none with a decimal point, is read as numbers in a
  semicolon-separated file. In a comma- or tab-separated file (where the value must be quoted, or
  a tab export) the same is done unless every comma value could as well be an English thousands
  separator (``"1,870"``): that column is ambiguous, and refused if the rule reads it (kept as
  text otherwise). A column the rule reads that mixes decimal points and decimal commas is
  refused; other columns with either are kept as text, as any column with text is;
- rows with more fields than the header (unquoted decimal commas), which pandas would read with
  shifted columns, are refused naming the line; a trailing empty field (``1;0;``) is dropped, but
  not in a comma-separated file, where ``1,5,`` may be a decimal comma before an empty column.

Objects absent from the catalog are labelled -1.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.sources.discovery import MAX_OBJECT_ID, glob_ignoring_case
from pipeline.sources.label_eval import describe_lines, rule_labels
from pipeline.sources.label_ids import comma_is_decimal, layout_column, object_ids, refuse_word_ids
from pipeline.sources.label_rules import (
    numerically_compared_columns,
    rule_columns,
    text_compared_columns,
)
from pipeline.sources.spreadsheet import (
    DELIMITERS,
    CatalogFormatError,
    TextColumn,
    boolean_values,
    catalog_text,
    decimal_commas,
    delimiter_of,
    file_lines,
    header_line_below,
    header_names,
    parse_fields,
    refuse_thousands_points,
    without_comment_lines,
)
from schemas.layout import Layout, LayoutArg, as_layout

LABEL_UNKNOWN = -1


@dataclass(frozen=True)
class Labels:
    """Labels aligned with object ids, the catalog they came from and what was noticed in it.

    ``values`` is int8 of shape (n_objects,) with 1 lens, 0 non-lens, -1 unknown; ``notes`` are
    human-readable lines (skipped rows, rows labelled unknown, repeated rows) for the summary.
    """

    values: np.ndarray
    path: Path | None
    notes: tuple[str, ...] = ()
    without_row: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    """Ids of ``object_ids`` that have no row in the catalog (int64; empty without a catalog)."""
    without_file: pd.Series | None = None
    """The catalog's labels (int8) of the ids it names that have no file in the source and are not in the
    store, indexed by id in ascending order; None when ``source_ids`` was not given or there is no catalog."""
    warnings: tuple[str, ...] = ()
    """Lines for the summary's ``warning:`` lines: a catalog none of whose ids has a file or is stored."""

    def without_row_note(self, what: str) -> str | None:
        """A line saying how many of ``what`` have no catalog row and are labelled unknown, or None.

        Trial: a catalog that lacked 80 of 300 objects' rows gave only ``labels: 220 from FILE``.
        """
        n = self.without_row.size
        if self.path is None or not n:
            return None
        shown = ", ".join(str(i) for i in self.without_row[:5]) + (", ..." if n > 5 else "")
        return (
            f"{n} of the {self.values.size} {what} have no row in it (ids {shown}): labelled unknown (-1) "
            "and left out of the metrics; add their rows and ingest again to label them"
        )


def find_label_catalog(layout: LayoutArg, root: str | os.PathLike[str]) -> Path | None:
    """The catalog file under ``root`` matching the layout's pattern in any letter case, or None.

    Raises
    ------
    CatalogFormatError
        If several files match (new-user trial: ``image_catalog_sim - Copy.csv`` was read before
        the corrected ``image_catalog_sim.csv``, by name order): the user chooses (``--catalog``).
    """
    layout = as_layout(layout, "find_label_catalog")
    if layout.catalog is None:
        return None
    matches = glob_ignoring_case(root, layout.catalog.pattern)
    if len(matches) > 1:
        raise CatalogFormatError(
            f"{root} holds {len(matches)} label catalogs matching {layout.catalog.pattern!r} "
            f"({', '.join(repr(path.name) for path in matches[:5])}{', ...' if len(matches) > 5 else ''}): "
            "pass the one that holds the labels with --catalog, or move the others away"
        )
    return matches[0] if matches else None


def read_label_catalog(layout: LayoutArg, path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read and check a challenge catalog (CSV with comment header lines).

    Returns one row per data row that has an id, in file order, indexed by the int64 id (ids
    may repeat), with a ``_line`` column giving each row's line in the file. Numeric columns are
    numbers. ``attrs["notes"]`` lists what was skipped.

    Raises
    ------
    CatalogFormatError
        If the file is unreadable, has no id column, an id that is no non-negative integer, or a
        non-number in a numeric column the label rule uses; the message names file and line.
    """
    layout = as_layout(layout, "read_label_catalog")
    spec = layout.catalog
    if spec is None:
        raise CatalogFormatError(f"layout {layout.name!r} defines no catalog; drop --catalog")
    try:
        text, encoding = catalog_text(Path(path).read_bytes())
        text, declared = without_comment_lines(text, spec.comment)  # '#' inside a field is no comment
        delimiter = declared or delimiter_of(text, "", spec.id_column)
        table = parse_fields(text, "", delimiter)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise CatalogFormatError(
            f"label catalog {path} is unreadable: {exc}. It must be a comma-, semicolon- or tab-separated "
            f"text file with a header line (UTF-8, or the UTF-16 or Windows-1252 of spreadsheets); pass "
            "another file with --catalog or fix this one."
        ) from exc
    header_line, data_lines = file_lines(text, "", len(table), delimiter)
    names = header_names(text, delimiter)
    read = rule_columns(spec.label_rule) | {spec.id_column}  # review: empty or unread ones are harmless
    read_too = {name.lower() for name in read}  # in any letter case (:func:`layout_column`)
    repeated = sorted({name for name in names if names.count(name) > 1 and name.lower() in read_too})
    if repeated:  # new-user trial: pandas renamed the second is_lens 'is_lens.1' and used the first
        raise CatalogFormatError(
            f"label catalog {path} line {header_line}: the header names {repeated} more than once, so "
            "which column the label rule reads is ambiguous. Rename or delete the repeated column."
        )
    table.columns = [str(column).strip() for column in table.columns]
    id_column = layout_column(path, header_line, list(table.columns), spec.id_column, "id column")
    if id_column not in table.columns:
        separator = "|" if len(table.columns) == 1 and "|" in table.columns[0] else None
        hint = f" It seems separated by {separator!r}: save it comma-, semicolon- or tab-separated."
        hint = hint if separator else ""
        if below := header_line_below(text, delimiter, spec.id_column, header_line):
            hint += (
                f" Line {below} names a column {spec.id_column!r}: if the {below - header_line} line(s) "
                "above it are a title, not the header, delete them."
            )
        raise CatalogFormatError(
            f"label catalog {path} line {header_line}: the header has no id column {spec.id_column!r}; "
            f"columns: {list(table.columns)}. Name the id column {spec.id_column!r} in the header, or set "
            "the layout's catalog.id_column (and label_rule) to this catalog's: `lenshunt info --layout-yaml "
            "STORE|MODEL > mine.yaml`, edit, --layout mine.yaml (a new store; docs/layouts.md)." + hint
        )
    cased = {  # trial: a rule's is_lens was refused for the catalog's IS_LENS
        found: wanted
        for wanted in sorted(rule_columns(spec.label_rule) - {spec.id_column, "index"})
        if (found := layout_column(path, header_line, list(table.columns), wanted, "label rule's column"))
        not in (wanted, id_column)
    }
    table = table.rename(columns=cased)
    extra = table.attrs.pop("extra_fields", None)
    if extra:
        cause = (
            "; its extra field is empty: a comma at the end of each row, or a decimal comma before an "
            "empty last column? Remove the trailing commas if that is all"
            if extra == "empty"
            else ""
        )
        raise CatalogFormatError(
            f"label catalog {path} line {data_lines[0] if data_lines else header_line}: the row has more "
            f"fields than the header line {header_line} ({len(table.columns)} columns, "
            f"{DELIMITERS[delimiter]}-separated), so its values would land in the wrong columns{cause}. A "
            "number written with a decimal comma in a comma-separated file does this: quote such values, "
            "write them with a decimal point, or save the catalog semicolon-separated."
        )
    table["_line"] = data_lines
    raw_ids = table[id_column].str.strip()
    no_id = raw_ids.isna() | (raw_ids == "")
    notes = []
    if delimiter != ",":
        notes.append(f"read as {DELIMITERS[delimiter]}-separated ({delimiter!r})")
    notes += [f"column {found!r} read as the label rule's {wanted!r}" for found, wanted in cased.items()]
    if no_id.any():
        lines = table["_line"][no_id]
        notes.append(f"{int(no_id.sum())} row(s) without an id skipped ({describe_lines(lines)})")
    table, raw_ids = table[~no_id], raw_ids[~no_id]
    refuse_word_ids(path, table["_line"], raw_ids, id_column)
    table = table.drop(columns=[id_column])
    needed = rule_columns(spec.label_rule)
    compared = numerically_compared_columns(spec.label_rule)
    as_text = text_compared_columns(spec.label_rule) - compared  # review: grade == '1' labelled all 0
    decimal_columns, boolean_columns = [], []
    text_of = {column: table[column].str.strip() for column in table.columns if column != "_line"}
    for column in table.columns:
        if column == "_line":
            continue
        values = text_of[column]
        present = values.notna() & (values != "")
        numbers = pd.to_numeric(values, errors="coerce")
        not_numbers = present & numbers.isna()
        if column in as_text:
            table[column] = values
            continue
        if not not_numbers.any():
            table[column] = numbers
            continue
        where = TextColumn(path, column, table["_line"], values, spec.label_rule, column in needed)
        decimal = decimal_commas(where, present, numbers, delimiter)
        if decimal is not None:
            table[column] = decimal
            decimal_columns.append(column)
        elif column in compared and (booleans := boolean_values(where, present, numbers)) is not None:
            table[column] = booleans
            boolean_columns.append(column)
        elif column in compared or (column in needed and (present & numbers.notna()).any()):
            # text only, compared with a number, would label every row 0
            where.refuse(not_numbers, "is not a number")
    if decimal_columns:
        notes.append(f"decimal commas read as decimal points in {decimal_columns}")
    for column in sorted((needed & set(text_of)) - set(decimal_columns) - as_text):  # review: 1.500 as 1.5
        where = TextColumn(path, column, table["_line"], text_of[column], spec.label_rule, True)
        refuse_thousands_points(where, decimal_columns, delimiter)
    if boolean_columns:
        notes.append(f"boolean text read as 1 (true) and 0 (false) in {boolean_columns}")
    comma = comma_is_decimal(raw_ids, delimiter, decimal_columns)  # trial: 100120,00 refused
    exact = object_ids(path, table["_line"], raw_ids, id_column, MAX_OBJECT_ID, comma)
    table.index = pd.Index(np.array(exact.tolist(), dtype=np.int64), name=spec.id_column)
    if encoding != "utf-8":  # ids and numbers are ASCII in any of them: only text columns may differ
        notes.append(f"read as {encoding} text (not UTF-8)")
    table.attrs["notes"] = notes
    return table


def labels_from_catalog(
    layout: LayoutArg, table: pd.DataFrame, path: str | os.PathLike[str] = ""
) -> pd.Series:
    """Apply the layout's label rule: int8 labels indexed by unique object id.

    Rows whose missing values could change the label get -1 (see module docstring). Notes about
    them and about repeated ids are appended to ``table.attrs["notes"]``.

    Raises
    ------
    CatalogFormatError
        If the rule fails on the catalog, or one id has rows with different labels.
    """
    layout = as_layout(layout, "labels_from_catalog")
    rule = layout.catalog.label_rule
    columns = [column for column in table.columns if column != "_line"]
    rows = table[columns].reset_index(drop=True)
    id_column = layout.catalog.id_column
    if id_column not in rows.columns:  # new-user trial: a rule naming the id column was refused
        rows.insert(0, id_column, table.index.to_numpy(dtype=np.int64))
    if "index" in rule_columns(rule) and "index" not in rows.columns:
        raise CatalogFormatError(  # new-user trial: pandas read `index` as the rows' positions
            f"label rule {rule!r} of layout {layout.name!r} names `index`, which is no column of the "
            f"catalog {path} (pandas would take the rows' positions); name the id column {id_column!r}"
        )
    labels, notes = rule_labels(rule, rows, layout, path, table["_line"].to_numpy())
    table.attrs.setdefault("notes", []).extend(notes)
    series = pd.Series(labels, index=table.index.to_numpy(dtype=np.int64))
    repeated = series.index.duplicated(keep=False)
    if repeated.any():
        groups = pd.DataFrame({"label": series.to_numpy(), "line": table["_line"].to_numpy()})[repeated]
        groups.index = series.index[repeated]
        conflicts = groups.groupby(level=0)["label"].nunique()
        conflicting = conflicts[conflicts > 1].index
        if len(conflicting):
            examples = "; ".join(
                f"id {object_id}: "
                + ", ".join(
                    f"line {row.line} label {row.label}" for row in groups.loc[[object_id]].itertuples()
                )
                for object_id in conflicting[:5]
            )
            raise CatalogFormatError(
                f"label catalog {path} has rows with different labels for {len(conflicting)} id(s) "
                f"({examples}). "
                "Delete or correct the wrong rows: which one is right cannot be guessed."
            )
        n_extra = int(repeated.sum() - series.index[repeated].nunique())
        table.attrs.setdefault("notes", []).append(
            f"{n_extra} repeated row(s) of an id with the same label ignored"
        )
        series = series[~series.index.duplicated(keep="first")]
    return series.astype(np.int8)


def load_labels(
    layout: Layout,
    object_ids: np.ndarray,
    root: str | os.PathLike[str],
    catalog: str | None = None,
    source_ids: np.ndarray | None = None,
) -> Labels:
    """Labels aligned with ``object_ids``: -1 for objects absent from the catalog or without one.

    With ``source_ids`` (every object id that has a file in the source or is in the store), the
    notes also say how many catalog rows name none of them (a list that names objects not
    delivered), with a few of their ids: they cannot be ingested, and were otherwise dropped
    without a word. Their labels are :attr:`Labels.without_file`.
    """
    path = Path(catalog) if catalog else find_label_catalog(layout, root)
    if path is None:
        return Labels(
            np.full(len(object_ids), LABEL_UNKNOWN, dtype=np.int8), None, _unmatched_tables(layout, root)
        )
    table = read_label_catalog(layout, path)
    labels = labels_from_catalog(layout, table, path)
    ids = np.asarray(object_ids, dtype=np.int64)
    aligned = labels.reindex(ids).fillna(LABEL_UNKNOWN)
    without_row = ids[~np.isin(ids, labels.index.to_numpy(dtype=np.int64))]
    notes = tuple(table.attrs.get("notes", []))
    without_file, warnings = None, ()
    if source_ids is not None:
        source_ids = np.asarray(source_ids, dtype=np.int64)
        fileless = np.setdiff1d(labels.index.to_numpy(dtype=np.int64), source_ids)
        without_file = labels.reindex(fileless).astype(np.int8)  # recorded in the store (its evaluations)
        if fileless.size and fileless.size == labels.size and source_ids.size:  # trial: said as info only
            warnings = (_no_id_matches(path, fileless, source_ids),)
            without_file = None  # another set's rows: not recorded as this one's (its evaluations)
        elif fileless.size:
            shown = ", ".join(str(i) for i in fileless[:5]) + (", ..." if fileless.size > 5 else "")
            notes += (
                f"{fileless.size} row(s) name objects with no file in the source and not in the store "
                f"(ids {shown}): not ingested; their files may not have arrived yet",
            )
    return Labels(aligned.to_numpy(dtype=np.int8), path, notes, without_row, without_file, warnings)


def _no_id_matches(path: Path, catalog_ids: np.ndarray, source_ids: np.ndarray) -> str:
    """The warning for a label catalog none of whose ids (``catalog_ids``) is one of ``source_ids``."""
    theirs = ", ".join(str(i) for i in catalog_ids[:3]) + (", ..." if catalog_ids.size > 3 else "")
    ours = ", ".join(str(i) for i in source_ids[:3]) + (", ..." if source_ids.size > 3 else "")
    return (
        f"no id of label catalog {path} matches a file ({catalog_ids.size} id(s), e.g. {theirs}; the "
        f"files' ids: {ours}): a wrong catalog, or a layout for another set? Every object is labelled "
        "unknown (-1); pass the set's catalog with --catalog FILE"
    )


_TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".dat")


def _unmatched_tables(layout: Layout, root: str | os.PathLike[str]) -> tuple[str, ...]:
    """The note when no file matches the layout's catalog pattern: naming the tables its folder holds
    where it holds some, else saying the objects are unlabelled as in a blind set.

    Trials: a layout whose catalog pattern was ``classifications.csv`` ingested with "labels: 0 from
    no catalog" beside ``lens_keys_final.csv``, every object unknown (-1), without a word; a set whose
    ``*keys*.csv`` was left behind was told the same, and not what had been looked for.
    """
    if layout.catalog is None:
        return ()
    folder = Path(root) / Path(layout.catalog.pattern).parent
    try:
        with os.scandir(folder) as entries:
            tables = sorted(
                entry.name
                for entry in entries
                if entry.name.lower().endswith(_TABLE_SUFFIXES)
                and not entry.name.startswith(("~$", "._"))
                and entry.is_file()
            )
    except OSError:
        tables = []
    if not tables:
        return (
            f"no label catalog: no file in {folder} matches the layout's catalog pattern "
            f"{layout.catalog.pattern!r}, so every object is unknown (-1), as in a blind set; pass a label "
            "catalog with --catalog FILE to label them",
        )
    shown = ", ".join(tables[:3]) + (", ..." if len(tables) > 3 else "")
    return (
        f"no file in {folder} matches the layout's catalog pattern {layout.catalog.pattern!r}, but it "
        f"holds {shown}: every object is labelled unknown (-1); pass the label catalog with --catalog "
        "FILE, or fix the layout's catalog pattern",
    )


def labels_for(
    layout: LayoutArg, object_ids: np.ndarray, root: str | os.PathLike[str], catalog: str | None = None
) -> tuple[np.ndarray, Path | None]:
    """:func:`load_labels` as (labels, catalog file or None)."""
    layout = as_layout(layout, "labels_for")
    result = load_labels(layout, object_ids, root, catalog)
    return result.values, result.path
