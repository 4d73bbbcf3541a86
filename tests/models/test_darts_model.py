"""The DARTS retrain presets name no cell: training one needs an explicit genotype."""

import json
import warnings

import pytest

from audionas.cli import main
from audionas.errors import UserError
from audionas.models import create_model, freeze_model_args


def test_retrain_preset_without_genotype_is_a_one_line_user_error(tmp_path, capsys):
    for preset in ("kws-darts-retrain", "kws-darts-retrain-cpu"):
        assert main(["train", "--preset", preset, "--data", str(tmp_path), "--out", str(tmp_path / "r")]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "--genotype RUN/genotype.json" in err and "'genotype'" in err
    assert not (tmp_path / "r").exists()
    with pytest.raises(UserError, match="model_args.genotype=DARTS_V2"):
        freeze_model_args("darts", {"genotype": None})
    assert freeze_model_args("darts", {"genotype": "DARTS_V2"}) == {"genotype": "DARTS_V2"}  # explicit: fine


def test_darts_model_defaults_are_the_kws_skeleton_with_drop_path_0_2():
    # REFERENCE.md section 2: evaluation network drop path ramped to 0.2; KWS settings 6 cells, C = 16.
    from audionas.models import create_model

    m = create_model("darts")
    assert m.drop_path_max == 0.2 and len(m.cells) == 6 and m.stem[0].out_channels == 3 * 16
    assert m.drop_path_prob == 0.0  # the ramp starts at 0 for a caller who never sets progress
    m.set_progress(1.0)
    assert m.drop_path_prob == 0.2
    m.set_progress(3.0)
    assert m.drop_path_prob == 0.2  # past the end: held at the maximum


def test_a_genotype_from_a_search_retrains_with_that_searchs_layout(tmp_path):
    # The paper scales a found cell by the same stacking rule: a cell searched with layout=nnr (or an explicit
    # N/R string) is retrained with it, unless model_args names a layout; the default layout is not written.
    import json

    from audionas.models import create_model
    from audionas.nas.darts.genotype import get_genotype

    run = tmp_path / "search"
    run.mkdir()
    (run / "genotype.json").write_text(json.dumps(get_genotype("DARTS_V2").to_dict()))
    geno = str(run / "genotype.json")
    for layout, want in (("nnr", "nnr"), ("NRNNRN", "NRNNRN"), ("darts", None)):
        (run / "config.yaml").write_text(f"ops: nas1\nlayout: {layout}\n")
        got = freeze_model_args("darts", {"genotype": geno, "cells": 6})
        assert got.get("layout") == want and got["genotype"]["ops"] == "nas1"
    assert freeze_model_args("darts", {"genotype": geno, "layout": "darts"})["layout"] == "darts"
    (run / "config.yaml").write_text("ops: nas1\nlayout: NRNNRN\n")
    with pytest.warns(UserWarning, match=r"config.yaml: the search's layout 'NRNNRN' is for 6 cells; the 12 "
                                         r"cells retrained here use the default layout .* or 12 N/R letters"):
        assert "layout" not in freeze_model_args("darts", {"genotype": geno, "cells": 12})
    (run / "config.yaml").write_text("ops: nas1\nlayout: nnr\n")
    net = create_model("darts", **freeze_model_args("darts", {"genotype": geno, "cells": 6}))
    assert [c.reduction for c in net.cells] == [False, False, True, False, False, True]


def test_a_searchs_layout_is_checked_against_the_retrainings_cells(tmp_path):
    # A named layout wins over the search's; without `cells` the retraining has the model's default 6; a
    # layout longer than the cell count is not carried, as a shorter one (a small search scaled up); a list
    # op set is kept as the search's label; a cells value that is no integer is refused before the layout is
    # read.
    import json

    from audionas.nas.darts.genotype import get_genotype

    run = tmp_path / "search"
    run.mkdir()
    (run / "genotype.json").write_text(json.dumps(get_genotype("DARTS_V2").to_dict()))
    geno = str(run / "genotype.json")
    (run / "config.yaml").write_text("ops: [sep_conv_3x3, skip_connect]\nlayout: nnr\n")
    got = freeze_model_args("darts", {"genotype": geno, "layout": "darts"})
    assert got["layout"] == "darts" and got["genotype"]["ops"] == ["sep_conv_3x3", "skip_connect"]
    (run / "config.yaml").write_text("layout: NRNNRN\n")
    assert freeze_model_args("darts", {"genotype": geno})["layout"] == "NRNNRN"
    with pytest.warns(UserWarning, match=r"layout 'NRNNRN' is for 6 cells; the 4 cells retrained here"):
        assert "layout" not in freeze_model_args("darts", {"genotype": geno, "cells": 4})
    (run / "config.yaml").write_text("layout: NRNR\n")
    with pytest.warns(UserWarning, match=r"layout 'NRNR' is for 4 cells; the 6 cells retrained here"):
        assert "layout" not in freeze_model_args("darts", {"genotype": geno})
    with pytest.raises(UserError, match=r"argument 'cells': expected a positive integer, got 'four'"):
        freeze_model_args("darts", {"genotype": geno, "cells": "four"})


def test_a_home_relative_genotype_file_is_expanded(tmp_path, monkeypatch):
    # As data.root and the run folder (review): model_args.genotype="~/search/genotype.json" from Python,
    # or from a key=value override the shell leaves alone, was "file not found".
    import json

    from audionas.nas.darts.genotype import get_genotype

    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "search").mkdir()
    (tmp_path / "search" / "genotype.json").write_text(json.dumps(get_genotype("DARTS_V2").to_dict()))
    (tmp_path / "search" / "config.yaml").write_text("ops: nas1\n")
    assert get_genotype("~/search/genotype.json") == get_genotype("DARTS_V2")
    frozen = freeze_model_args("darts", {"genotype": "~/search/genotype.json"})["genotype"]
    assert frozen["source"] == str(tmp_path / "search" / "genotype.json") and frozen["ops"] == "nas1"


def test_a_drop_path_prob_of_1_is_refused():
    # drop_path divides by 1 - drop_prob: 1 would drop every path and divide by zero.
    with pytest.raises(UserError, match=r"argument 'drop_path_prob': expected a number in \[0, 1\), got 1"):
        create_model("darts", drop_path_prob=1.0)
    assert create_model("darts", drop_path_prob=0.0).drop_path_max == 0.0


def test_a_search_of_the_default_layout_freezes_without_a_layout_or_a_warning(tmp_path):
    # The default layout is a rule for any cell count: nothing to carry, nothing to warn about.
    from audionas.nas.darts.genotype import get_genotype

    (tmp_path / "genotype.json").write_text(json.dumps(get_genotype("DARTS_V2").to_dict()))
    (tmp_path / "config.yaml").write_text("ops: nas1\nlayout: darts\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = freeze_model_args("darts", {"genotype": str(tmp_path / "genotype.json"), "cells": 6})
    assert "layout" not in got and got["genotype"]["ops"] == "nas1"


def test_a_layout_for_another_cell_count_is_refused_when_the_config_is_frozen():
    # freeze_model_args runs the factory's checks before a run scans its data: a typo is said at once.
    with pytest.raises(UserError, match="layout"):
        freeze_model_args("darts", {"genotype": "DARTS_V2", "cells": 6, "layout": "NRN"})
    got = freeze_model_args("darts", {"genotype": "DARTS_V2", "cells": 3, "layout": "NRN"})
    assert got["layout"] == "NRN"
