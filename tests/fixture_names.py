"""Names shared by tests/conftest.py and the tests using its fixtures (no conftest shadows this module)."""

SHORT_DCASE = "test-dcase-logmel-0.5s"  # the dcase-logmel recipe on 0.5 s clips (fixture short_dcase_preset)
