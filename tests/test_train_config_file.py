"""``lenshunt train --config FILE``: a file saved with a byte-order mark reads; a broken one is one line.

New-user trial: ``--config cfg.json`` holding ``not json``, or JSON saved by Windows Notepad (a UTF-8
byte-order mark first), ended in a ``json.decoder.JSONDecodeError`` traceback.
"""

from __future__ import annotations

import json

from test_train_out import _lenshunt_train as train_process


def _lenshunt_train(*args: str) -> list[str]:
    """The error lines of ``lenshunt train ARGS`` run as a process (exit 1 asserted)."""
    result = train_process(*args)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    return result.stderr.strip().splitlines()


def test_a_config_file_that_is_not_json_is_one_line_naming_file_line_and_column(tmp_path):
    bad = tmp_path / "cfg.json"
    bad.write_text('{\n  "epochs": 3,\n  "seed": oops\n}\n')
    notjson = tmp_path / "not.json"
    notjson.write_text("not json")
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    latin = tmp_path / "latin.json"
    latin.write_bytes(b'{"model_id": "caf\xe9"}')
    store, out = str(tmp_path / "a.zarr"), str(tmp_path / "m")
    for config, said in [
        (notjson, f"--config {notjson} is not valid JSON: Expecting value at line 1 column 1; give a JSON"),
        (bad, f"--config {bad} is not valid JSON: Expecting value at line 3 column 11; "),
        (listed, f"--config {listed} holds a JSON list, not an object; "),
        (latin, f"--config {latin} is not UTF-8 text (byte 18); "),
        (tmp_path / "absent.json", f"cannot read --config {tmp_path / 'absent.json'} (No such file"),
    ]:
        lines = _lenshunt_train(store, out, "--config", str(config))
        assert len(lines) == 1 and lines[0].startswith(f"lenshunt train: error: {said}"), lines
    assert not (tmp_path / "m").exists()


def test_a_config_file_with_a_byte_order_mark_is_read(tmp_path):
    config = tmp_path / "notepad.json"
    config.write_bytes("\ufeff".encode() + json.dumps({"seed": -1, "epochs": 2}).encode())
    # read: its seed is judged (a file that could not be read would have failed before)
    lines = _lenshunt_train(str(tmp_path / "a.zarr"), str(tmp_path / "m"), "--config", str(config))
    assert len(lines) == 1 and f"seed (in --config {config}): -1 is not >= 0" in lines[0], lines
    from pipeline.training import TrainConfig

    config.write_bytes("\ufeff".encode() + TrainConfig(epochs=2).model_dump_json().encode())
    assert TrainConfig.from_saved(config).epochs == 2
