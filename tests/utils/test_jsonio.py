"""read_json / read_json_lines: a hand-edited or corrupt metadata file is a UserError naming it."""

import numpy as np
import pytest

from audionas.errors import UserError
from audionas.utils.jsonio import (
    accuracy_field,
    finite_float,
    is_fraction,
    is_integer,
    is_json_int,
    read_json,
    read_json_lines,
)


def test_read_json_refuses_missing_invalid_binary_and_wrong_type(tmp_path):
    p = tmp_path / "m.json"
    with pytest.raises(UserError, match=r"m.json: file not found \(expected a manifest\)"):
        read_json(p, "a manifest")
    p.write_text("{bad")
    with pytest.raises(UserError, match="m.json: invalid JSON at line 1"):
        read_json(p, "a manifest")
    p.write_bytes(b"\xff\xfe\x00garbage\x80")
    with pytest.raises(UserError, match="m.json: not UTF-8 text"):
        read_json(p, "a manifest")
    p.write_text("[1]")
    with pytest.raises(UserError, match="m.json: expected a manifest \\(a JSON object\\), got a JSON array"):
        read_json(p, "a manifest")
    with pytest.raises(UserError, match="got a JSON object"):
        p.write_text("{}")
        read_json(p, "a list", kind=list)
    assert read_json(p, "anything", kind=None) == {}
    with pytest.raises(UserError, match="is a folder"):
        read_json(tmp_path, "a manifest")


@pytest.mark.parametrize("text, msg", [
    # before: a RecursionError or ValueError traceback (QA); a key given twice kept its last value silently
    ("[" * 100000 + "]" * 100000, "invalid JSON: nested too deeply"),
    ('{"n": 1%s}' % ("0" * 5000), "invalid JSON: an integer of more than 4300 digits"),
    ('{"normal": [], "reduce": [], "normal": [1]}', "key 'normal' given twice in one object"),
    ('{"a": {"b\\n": 1, "b\\n": 2}}', r"key 'b\\n' given twice"),  # a control character, escaped
], ids=["deep", "long-integer", "key-twice", "control-key-twice"])
def test_read_json_refuses_deep_nesting_long_integers_and_repeated_keys(tmp_path, text, msg):
    p = tmp_path / "g.json"
    p.write_text(text)
    with pytest.raises(UserError, match=f"^{p}: {msg}.* \\(expected a genotype\\)$"):
        read_json(p, "a genotype")
    p.write_text('{"a": 1}\n' + text + "\n")
    with pytest.raises(UserError, match=f"^{p} line 2: not a JSON line \\({msg}.*; expected records\\)$"):
        read_json_lines(p, "records")


def test_read_json_lines_names_the_line_and_drops_only_a_cut_last_line(tmp_path):
    p = tmp_path / "h.jsonl"
    p.write_text('{"a": 1}\n\n{"a": 2}\n{"a": 3, "b"')
    with pytest.raises(UserError, match="h.jsonl line 4: not a JSON line"):
        read_json_lines(p, "records")
    assert read_json_lines(p, "records", drop_partial_last=True) == [{"a": 1}, {"a": 2}]
    p.write_text('{"a": 1}\n{bad\n{"a": 2}\n')
    with pytest.raises(UserError, match="h.jsonl line 2: not a JSON line"):
        read_json_lines(p, "records", drop_partial_last=True)
    p.write_text('{"a": 1}\n[1]\n')
    with pytest.raises(UserError, match="h.jsonl line 2: expected a JSON object"):
        read_json_lines(p, "records")


def test_an_accuracy_field_is_a_finite_number_in_0_to_1():
    from audionas.utils.jsonio import accuracy_field

    assert accuracy_field("f", "acc", 1) == 1.0 and accuracy_field("f", "acc", 0.25) == 0.25
    for bad in (1.0000001, -0.1, float("nan"), True, "0.5", 10**400):
        with pytest.raises(UserError, match=r"^f: field 'acc': expected an accuracy in \[0, 1\], got "):
            accuracy_field("f", "acc", bad)


def test_finite_float_takes_finite_numbers_and_text_holding_one():
    assert finite_float(3) == 3.0 and finite_float("3e-4") == 3e-4 and finite_float(" 2.5 ") == 2.5
    for bad in (True, "nan", "inf", float("nan"), 10**400, "1" + "0" * 400, "fast", None, [1.0]):
        assert finite_float(bad) is None, bad


def test_json_object_or_none_is_none_for_anything_but_an_object(tmp_path):
    from audionas.utils.jsonio import json_object_or_none

    p = tmp_path / "m.json"
    assert json_object_or_none(p) is None  # missing
    for text in ("[1]", "{bad", "\xff", "[" * 100000):
        p.write_text(text, encoding="latin-1")
        assert json_object_or_none(p) is None
    assert json_object_or_none(tmp_path) is None  # a folder
    p.write_text('{"a": 1}')
    assert json_object_or_none(p) == {"a": 1}


def test_json_integers_are_ints_but_not_booleans():
    assert is_json_int(3) and is_json_int(0) and is_json_int(-2)
    for bad in (True, False, 3.0, "3", None, np.int64(3)):
        assert not is_json_int(bad), bad
    assert is_integer(np.int64(3)) and not is_integer(True)


def test_an_accuracy_of_zero_is_a_fraction():
    # A network that gets every clip wrong scores 0: a valid accuracy, not an edited file.
    assert is_fraction(0) and is_fraction(0.0) and accuracy_field("f", "acc", 0) == 0.0


def test_a_bad_last_line_ending_in_a_newline_is_not_taken_for_a_cut_one(tmp_path):
    # Only a last line without its newline can be a kill mid-write; one with its newline was written whole.
    p = tmp_path / "h.jsonl"
    p.write_text('{"a": 1}\n{bad\n')
    with pytest.raises(UserError, match="h.jsonl line 2: not a JSON line"):
        read_json_lines(p, "records", drop_partial_last=True)
