"""`audionas predict` and the inference path: files in, the evaluation path's probabilities out."""

import json

import numpy as np
import pytest
import soundfile as sf

from audionas.cli import main
from audionas.data import build_data
from audionas.train.evaluate import load_model, predict


@pytest.mark.slow
def test_predict_files_and_folders_match_evaluation(kws_run, speech_commands_root, capsys):
    lm = load_model(kws_run)
    bundle = build_data(lm.config.data, lm.config.seed)
    probs, _, _ = predict(lm.model, bundle.frontend, bundle.test, "cpu", 64)
    # test items that are files of the dataset (not `_silence_` crops of background noise)
    items = [(i, p) for i, (p, _) in enumerate(bundle.test.items) if p is not None][:20]
    files = [str(speech_commands_root / p) for _, p in items]
    assert main(["predict", str(kws_run), *files, "--json", "--top", "12", "--batch-size", "7"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["file"] for x in lines] == files
    for (i, _), line in zip(items, lines):
        got = dict(line["top"])
        assert sorted(got) == sorted(lm.classes) and line["class"] == lm.classes[int(np.argmax(probs[i]))]
        np.testing.assert_allclose([got[c] for c in lm.classes], probs[i], atol=1e-5)
    word = files[0].split("/")[-2]
    assert main(["predict", str(kws_run), str(speech_commands_root / word)]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert len(rows) == len(list((speech_commands_root / word).glob("*.wav")))
    assert len(rows[0].split("\t")) == 4  # file, then the top 3 classes


@pytest.mark.slow
def test_predict_bad_inputs_exit_2(kws_run, tmp_path, capsys):
    assert main(["predict", str(kws_run), str(tmp_path / "missing.wav")]) == 2
    assert "missing.wav: no such audio file or folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["predict", str(kws_run), str(tmp_path / "empty")]) == 2
    stereo = tmp_path / "stereo.wav"
    sf.write(stereo, np.zeros((16000, 2), np.float32), 16000, subtype="PCM_16")
    assert main(["predict", str(kws_run), str(stereo)]) == 2
    assert "stereo.wav" in capsys.readouterr().err
    assert main(["predict", str(kws_run), str(stereo), "--channel", "1"]) == 0
    assert main(["predict", str(kws_run), str(stereo), "--top", "0"]) == 2
    (tmp_path / "empty" / "._resource_fork.wav").write_bytes(b"junk")  # hidden: skipped like in the datasets
    assert main(["predict", str(kws_run), str(tmp_path / "empty")]) == 2
