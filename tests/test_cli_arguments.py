"""Numeric options are refused at parsing, in one line (new-user trial: ``--batch-size 0`` ended in
tracebacks, ``--threshold 2`` failed only after the whole store was scored)."""

from __future__ import annotations

import argparse
import re

import pytest

from flows.cli import main


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["score", "STORE", "--out", "OUT", "--batch-size", "0"], "argument --batch-size: 0 is not >= 1"),
        (["score", "STORE", "--out", "OUT", "--threshold", "2"], "--threshold: 2.0 is not in [0, 1]"),
        (["run", "SRC", "WORK", "--batch-size", "-4"], "argument --batch-size: -4 is not >= 1"),
        (["run", "SRC", "WORK", "--threshold", "x"], "argument --threshold: 'x' is not a number"),
        (["evaluate", "OUT", "--store", "S", "--threshold", "-0.1"], "--threshold: -0.1 is not in [0, 1]"),
        (["train", "STORE", "OUT", "--batch-size", "0"], "argument --batch-size: 0 is not >= 1"),
        (
            ["score", "S", "--out", "O", "--known-lens-radius", "0"],
            "--known-lens-radius: 0 is not in (0, 3600)",
        ),
        (
            ["run", "SRC", "WORK", "--known-lens-radius", "4e3"],
            "--known-lens-radius: 4000 is not in (0, 3600)",
        ),
        (["simulate", "OUT", "--batch-size", "1.5"], "argument --batch-size: '1.5' is not an integer"),
        (["simulate", "OUT", "--n", "0"], "argument --n: 0 is not >= 1"),
        (["simulate", "OUT", "--n", "5", "--first-id", "-1"], "argument --first-id: -1 is not >= 0"),
        (["simulate", "OUT", "--n", "5", "--seed", "-3"], "argument --seed: -3 is not >= 0"),
        # trial: --workers -1 hung for good and 0 started the default; the others were tracebacks
        (["run", "SRC", "WORK", "--workers", "-1"], "argument --workers: -1 is not >= 1"),
        (["ingest", "SRC", "S", "--workers", "0"], "argument --workers: 0 is not >= 1"),
        (["simulate", "OUT", "--workers", "-1"], "argument --workers: -1 is not >= 1"),
        (["ingest", "SRC", "S", "--chunk-objects", "0"], "argument --chunk-objects: 0 is not >= 1"),
        (["ingest", "SRC", "S", "--chunk-objects", "-5"], "argument --chunk-objects: -5 is not >= 1"),
        # trial: refused only after Prefect had started (a shard holds whole 16-object inner chunks)
        (["ingest", "SRC", "S", "--chunk-objects", "50"], "50 is not a multiple of 16 (e.g. 48 or 64)"),
        (["evaluate", "O", "--store", "S", "--beta", "0"], "argument --beta: 0 is not a finite number > 0"),
        (
            ["evaluate", "O", "--store", "S", "--beta", "nan"],
            "argument --beta: nan is not a finite number > 0",
        ),
        (  # fresh-user trial: an OverflowError traceback after the catalog was read
            ["evaluate", "O", "--store", "S", "--beta", "1e200"],
            "argument --beta: 1e200 is too large for a beta of F-beta (at most 1e+150)",
        ),
        (["evaluate", "O", "--store", "S", "--top-n", "-1"], "argument --top-n: -1 is not >= 0"),
        (["run", "SRC", "WORK", "--top-n", "-5"], "argument --top-n: -5 is not >= 0"),
        (
            ["serve", "SRC", "--workdir", "W", "--interval", "5", "--limit", "0"],
            "argument --limit: 0 is not >= 1",
        ),
    ],
)
def test_out_of_range_numbers_are_one_parsing_error(argv, message, capsys):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    # one line, no usage block before it (trial), and where the options are listed
    command = argv[0]
    assert err.startswith(f"lenshunt {command}: error: argument ") and err.count("\n") == 1, err
    assert err.endswith(f"(`lenshunt {command} --help` lists the options)\n")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--lens-fraction", "2"], "--lens-fraction must lie in [0, 1], got 2.0"),
        (["--theta-e", "-1", "2"], "--theta-e is a positive factor or size; got low = -1.0 <= 0"),
    ],
)
def test_simulation_settings_are_named_by_their_options(tmp_path, extra, message, capsys):
    """Trial: ``lens_fraction must lie in [0, 1]`` named a Python parameter, not the option."""
    assert main(["simulate", str(tmp_path / "out"), "--n", "2", *extra]) != 0
    err = capsys.readouterr().err
    assert message in err and "lens_fraction" not in err and "theta_e_range" not in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("argv", "hint"),
    [
        (
            ["simulate", "--n", "2", "--negative-mix", "1", "1", "1", "1", "DIR"],
            "argument --negative-mix: invalid float value: 'DIR' (--negative-mix takes every word after it: "
            "give OUT before it, or end its list with --) (`lenshunt simulate --help` lists the options)\n",
        ),
        (  # the list option not last (trial)
            ["cutout", "--bands", "VIS", "J", "STORE", "100141", "--out", "X"],
            "the following arguments are required: store, OBJECT_ID (--bands takes every word after it: "
            "give STORE OBJECT_ID before it, or end its list with --) (`lenshunt cutout --help` lists the "
            "options)\n",
        ),
        (
            ["simulate", "--negative-mix", "1", "1", "1", "1", "DIR", "--n", "10"],
            "argument --negative-mix: invalid float value: 'DIR' (--negative-mix takes every word after it: "
            "give OUT before it, or end its list with --) (`lenshunt simulate --help` lists the options)\n",
        ),
        (
            ["train", "--bands", "VIS", "H", "STORE", "OUT"],
            "the following arguments are required: store, out (--bands takes every word after it: give "
            "STORE OUT before it, or end its list with --) (`lenshunt train --help` lists the options)\n",
        ),
    ],
)
def test_a_list_option_given_last_says_it_took_the_positional_arguments(argv, hint, capsys):
    """Trial: ``simulate --negative-mix 0 0 0 0 DIR`` read DIR as a fifth weight, and said only that."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err == f"lenshunt {argv[0]}: error: {hint}", err


@pytest.mark.parametrize(
    "argv",
    [
        ["cutout", "STORE", "100001", "--out", "X", "100002x"],
        ["score", "S", "--out", "O", "--bogus"],
        ["info", "S", "T"],
    ],
)
def test_words_left_over_are_the_commands_error_pointing_at_its_own_help(argv, capsys):
    """Trial: ``lenshunt cutout STORE 100001 100002`` said "lenshunt: error: unrecognized arguments:
    100002 (`lenshunt --help` lists the options)", whose list has no option of the command."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    extra = {"cutout": "100002x", "score": "--bogus", "info": "T"}[argv[0]]
    command = argv[0]
    expected = f"lenshunt {command}: error: unrecognized arguments: {extra} (`lenshunt {command} --help`"
    assert err == f"{expected} lists the options)\n", err


def test_a_list_option_ended_with_a_double_dash_leaves_the_positional_arguments(tmp_path, capsys):
    from flows.cli import build_parser

    out = tmp_path / "set"
    args = build_parser("simulate").parse_args(
        ["simulate", "--n", "2", "--negative-mix", "1", "2", "3", "4", "--", str(out)]
    )
    assert (args.negative_mix, args.out) == ([1.0, 2.0, 3.0, 4.0], out)
    # given first, no hint is needed nor given
    with pytest.raises(SystemExit):
        main(["simulate", str(out), "--n", "2", "--negative-mix", "1", "1"])
    assert "takes every word" not in capsys.readouterr().err


def test_every_option_of_every_command_has_help():
    """Trial: ``lenshunt run --help`` listed --threshold and --batch-size without a word."""
    import argparse

    from flows.cli import build_parser

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    silent = [
        f"{name} {'/'.join(action.option_strings) or action.dest}"
        for name, parser in commands.choices.items()
        for action in parser._actions
        if not isinstance(action, argparse._HelpAction) and not action.help
    ]
    assert len(commands.choices) >= 10 and silent == []


def test_overwrite_says_it_rescores_every_object_with_the_same_model_too():
    """Trial: ``lenshunt run --overwrite`` read "discard the scores of a different earlier run", though
    it discards every earlier score (same model too) and scores every object again."""
    import argparse

    from flows.cli import build_parser

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name in ("run", "score"):
        [action] = [a for a in commands.choices[name]._actions if "--overwrite" in a.option_strings]
        assert "score every object again, with the same model too" in action.help, (name, action.help)


_DEFAULT_CLAUSES = (
    re.compile(r"\s*\(default[^()]*(\([^()]*\)[^()]*)*\)"),  # "(default: the shipped model)"
    re.compile(r"[;,]\s*default\b[^;)]*"),  # "(fixed shape; default 256)"
    re.compile(r"^default\b[^;]*$"),  # the whole help a default (trial: evaluate --threshold)
)
DIFFERENT_MEANINGS = {
    "--seed": {"simulate", "train", "inspect"},  # the set's, the training's, the grading order's
    "--batch-size": {"simulate", "train"},  # objects per Dask task, per training batch (else: per pass)
    "--overwrite": {"simulate", "train", "score", "run", "cutout"},  # what each replaces
    "--bands": {"train", "cutout"},  # bands to train on, to write
    "--out": {"score", "cutout"},  # a run's folder, a folder of FITS cutouts
}
"""Options that two commands share by name for different things: their help may differ."""


def _options() -> dict[str, dict[str, argparse.Action]]:
    """Each option string (its first) -> command -> its action, for every command's options."""
    from flows.cli import build_parser

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    options: dict[str, dict[str, argparse.Action]] = {}
    for name, parser in commands.choices.items():
        for action in parser._actions:
            if action.option_strings and not isinstance(action, argparse._HelpAction):
                options.setdefault(action.option_strings[0], {})[name] = action
    return options


def _description(help_text: str) -> str:
    """A help without its default clauses: what the option is."""
    for clause in _DEFAULT_CLAUSES:
        help_text = clause.sub("", help_text)
    return help_text.strip(" ;,")


def test_every_option_says_what_it_is_and_its_default():
    """Trial: ``score --batch-size`` gave no default (run's said "default 256"), ``evaluate --threshold``
    said only "default: the score run's threshold". Every option's help describes it beyond its default,
    and one with a default value (not None, not a flag's False) states it."""
    undescribed, unstated = [], []
    for option, by_command in _options().items():
        for command, action in by_command.items():
            text = action.help % {"default": action.default} if action.help else ""
            if len(re.findall(r"[A-Za-z]{2,}", _description(text))) < 2:
                undescribed.append(f"{command} {option}: {text!r}")
            flag = action.nargs == 0  # store_true and alike: their default is being off
            given = action.default not in (None, argparse.SUPPRESS) and not flag
            if given and ("default" not in text or str(action.default) not in text):
                unstated.append(f"{command} {option} (default {action.default!r}): {text!r}")
    assert undescribed == [] and unstated == []


def test_an_option_of_several_commands_reads_alike_in_each():
    """Trial: ``--threshold`` was "score threshold recorded for evaluation" (score), "score threshold of a
    candidate" (run, serve) and nothing (evaluate); ``--model`` a "model bundle directory" or a "model
    bundle". An option shared by name means one thing and says it in the same words (each command its own
    default), except where it means different things (DIFFERENT_MEANINGS)."""
    differing = {}
    for option, by_command in _options().items():
        alike = {c: _description(a.help or "") for c, a in by_command.items()}
        alike = {c: text for c, text in alike.items() if c not in DIFFERENT_MEANINGS.get(option, set())}
        if len(set(alike.values())) > 1:
            differing[option] = alike
    assert differing == {}
    assert set(DIFFERENT_MEANINGS) <= set(_options())  # no stale entries
