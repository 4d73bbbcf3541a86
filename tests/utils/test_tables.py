from audionas.utils.tables import csv_table, markdown_table, write_table


def test_one_table_as_markdown_and_csv(tmp_path):
    header, rows = ["Class", "B, s"], [["absence", 93.5], ["F1 score", "-"]]
    md = markdown_table(header, rows)
    assert md == "| Class | B, s |\n|---|---|\n| absence | 93.5 |\n| F1 score | - |\n"
    assert csv_table(header, rows) == 'Class,"B, s"\nabsence,93.5\nF1 score,-\n'
    paths = write_table(md, csv_table(header, rows), tmp_path / "out", "t")
    assert [p.name for p in paths] == ["t.md", "t.csv"] and paths[0].read_text() == md


def test_a_pipe_in_a_cell_is_escaped_in_markdown_only():
    # Before (QA): a run folder named runs/x|y split its cell, a row of more cells than the header.
    rows = [["runs/x|y", 1]]
    assert markdown_table(["Run", "n"], rows) == "| Run | n |\n|---|---|\n| runs/x\\|y | 1 |\n"
    assert csv_table(["Run", "n"], rows) == "Run,n\nruns/x|y,1\n"
