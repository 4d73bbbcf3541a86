from audionas.utils.text import escape_controls, nfc


def test_escape_controls_writes_control_characters_and_bytes_of_other_encodings_printably():
    # Before (review): the surrogate-escaped byte of a Latin-1 name reached print() as it was, and a UTF-8
    # stdout with strict errors (PYTHONIOENCODING=utf-8, an en_US.UTF-8 locale) raised UnicodeEncodeError.
    shown = escape_controls("caf\udce9\tb\u00e9d\n.wav")
    assert shown == "caf\\udce9\\tb\u00e9d\\n.wav" and shown.encode("utf-8")


def test_nfc_makes_a_mac_name_equal_to_a_linux_one():
    assert nfc("cafe\u0301") == "caf\u00e9" != "cafe\u0301"


def test_shown_keeps_short_values_and_cuts_long_ones():
    from audionas.utils.text import MAX_SHOWN, shown

    assert shown([1, 2]) == "[1, 2]" and shown("abc") == "'abc'" and shown(3.5) == "3.5"
    long = shown([list(range(50))] * 50)
    assert len(long) == MAX_SHOWN and long.startswith("[[0, 1, 2,") and long.endswith("...")
    assert len(shown("x" * 10_000)) < MAX_SHOWN
