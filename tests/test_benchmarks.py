"""benchmarks/*.py: their entry points (timings are never asserted: the scripts print ratios)."""

import ast
from pathlib import Path

BENCHMARKS = sorted((Path(__file__).parents[1] / "benchmarks").glob("[!_]*.py"))


def test_the_main_block_rebinds_no_name_of_the_script():
    # Before: darts_step.py's `from _cli import run` under __main__ replaced its own run(): a TypeError.
    assert len(BENCHMARKS) >= 5
    for path in BENCHMARKS:
        tree = ast.parse(path.read_text())
        defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        mains = [n for n in tree.body if isinstance(n, ast.If) and "__main__" in ast.unparse(n.test)]
        assert len(mains) == 1, path.name
        bound = {alias.asname or alias.name for n in ast.walk(mains[0])
                 if isinstance(n, (ast.Import, ast.ImportFrom)) for alias in n.names}
        bound |= {t.id for n in ast.walk(mains[0]) if isinstance(n, ast.Assign) for t in n.targets
                  if isinstance(t, ast.Name)}
        assert not bound & defined, (path.name, bound & defined)
