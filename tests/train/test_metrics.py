"""Scores against scikit-learn on hand-made predictions: paper_f1, official_f1, tables, confusion PNG."""

import numpy as np
import pytest
from sklearn.metrics import f1_score

from audionas.train import metrics as M
from audionas.train.evaluate import format_report

# 3 classes, 4 segments x 4 channels; channel ids 0..3, segment ids 10..13
LABELS = np.repeat([0, 1, 2, 2], 4)
SEGMENTS = np.repeat([10, 11, 12, 13], 4)
CHANNELS = np.tile([0, 1, 2, 3], 4)
PREDS = np.array([0, 0, 1, 0,   1, 1, 2, 1,   2, 0, 2, 2,   1, 1, 2, 1])


def onehot(preds, n=3, hot=0.7):
    p = np.full((len(preds), n), (1 - hot) / (n - 1))
    p[np.arange(len(preds)), preds] = hot
    return p


def test_paper_f1_is_mean_of_per_channel_macro_f1():
    want = np.mean([f1_score(LABELS[CHANNELS == c], PREDS[CHANNELS == c], average="macro", labels=[0, 1, 2],
                             zero_division=0) for c in range(4)])
    assert M.paper_f1(PREDS, LABELS, CHANNELS) == pytest.approx(want)
    assert M.paper_f1(onehot(PREDS), LABELS, CHANNELS) == pytest.approx(want)
    # differs from the pooled macro-F1 on this example, so the per-channel grouping matters
    assert want != pytest.approx(f1_score(LABELS, PREDS, average="macro"))


def test_official_f1_averages_channel_posteriors_per_segment():
    probs = onehot(PREDS)
    # segment 13 (label 2): three channels weakly vote class 1, one is sure of class 2;
    # a majority vote says 1, the averaged posterior says 2
    probs[[12, 13, 15]] = [0.3, 0.4, 0.3]
    probs[14] = [0.0, 0.0, 1.0]
    seg_pred = np.stack([probs[SEGMENTS == s].mean(0) for s in (10, 11, 12, 13)]).argmax(1)
    assert seg_pred.tolist() == [0, 1, 2, 2]
    want = f1_score([0, 1, 2, 2], seg_pred, average="macro", labels=[0, 1, 2], zero_division=0)
    assert want == 1.0
    assert M.official_f1(probs, LABELS, SEGMENTS) == pytest.approx(want)
    vote = f1_score([0, 1, 2, 2], [0, 1, 2, 1], average="macro", labels=[0, 1, 2], zero_division=0)
    assert M.official_f1(probs, LABELS, SEGMENTS) != pytest.approx(vote)
    # shuffled item order gives the same score
    perm = np.random.default_rng(0).permutation(len(LABELS))
    assert M.official_f1(probs[perm], LABELS[perm], SEGMENTS[perm]) == pytest.approx(want)


def test_official_f1_rejects_inconsistent_segments_and_hard_labels():
    bad = LABELS.copy()
    bad[1] = 2
    with pytest.raises(ValueError, match="different labels"):
        M.official_f1(onehot(PREDS), bad, SEGMENTS)
    with pytest.raises(ValueError, match="posteriors"):
        M.official_f1(PREDS, LABELS, SEGMENTS)


def test_accuracy_macro_and_per_class_f1_match_sklearn():
    y = np.array([0, 1, 2, 3, 3, 1])
    p = np.array([0, 2, 2, 3, 1, 1])
    assert M.accuracy(p, y) == pytest.approx(4 / 6)
    want = f1_score(y, p, average=None, labels=range(5), zero_division=0)
    assert M.per_class_f1(p, y, 5) == pytest.approx(want)
    # class 4 has no clips and is never predicted: no F1, so it is left out of the macro average
    assert M.macro_f1(p, y) == pytest.approx(want[:4].mean())
    rep = M.classification_report(onehot(p, 5), y, list("abcde"))
    assert rep["per_class_f1"]["c"] == pytest.approx(want[2]) and np.array(rep["confusion"]).sum() == 6
    assert rep["per_class_f1"]["e"] is None and rep["macro_f1"] == pytest.approx(want[:4].mean())
    assert rep["confusion"][3] == [0, 1, 0, 1, 0]
    # hard predictions without a class count: classes 0..max(labels, predictions)
    assert M.confusion(p, y).shape == (4, 4) and M.per_class_f1(p, y) == pytest.approx(want[:4])
    assert "e  F1 -  (no clips" in format_report({**rep, "split": "test", "confusion_png": "x.png"})
    # paths and class names escaped: one line each, printable under any stdout encoding
    odd = {**rep, "per_class_f1": {"a\tb": 0.5}, "split": "test", "confusion_png": "r\udcff/x.png",
           "members": [{"run": "r\udcff\n", "accuracy": 1.0, "macro_f1": 1.0}]}
    text = format_report(odd)
    assert "  member r\\udcff\\n: accuracy" in text and text.endswith("confusion matrix: r\\udcff/x.png")
    assert "  a\\tb  F1  50.00%" in text
    text.encode("utf-8")


def test_macro_f1_of_a_perfect_split_missing_a_class_is_one():
    y = np.array([0, 0, 1, 2])
    assert M.macro_f1(y, y) == 1.0 and M.accuracy(y, y) == 1.0
    # a class predicted but absent from the split counts: its F1 is 0
    assert M.macro_f1(np.array([0, 0, 1, 3]), y) == pytest.approx(np.mean([1, 1, 0, 0]))
    assert M.macro_f1(np.array([], dtype=int), np.array([], dtype=int)) == 0.0
    gap = np.array([0, 0, 2, 2])  # the missing class lies below the highest one: still left out
    assert M.macro_f1(gap, gap) == 1.0
    assert M.accuracy(np.array([], dtype=int), np.array([], dtype=int)) == 0.0


def test_an_ensemble_averages_its_members_posteriors():
    # the plain mean picks class 0 here; a geometric mean (near a mean of logits) would pick class 2
    members = np.array([[[0.7, 0.01, 0.29]], [[0.02, 0.69, 0.29]]], dtype=np.float32)
    probs = M.ensemble_probs(members)
    np.testing.assert_allclose(probs, [[0.36, 0.35, 0.29]], rtol=1e-6)
    assert M.accuracy(probs, np.array([0])) == 1.0


def test_class_table_layout():
    md, csv_text = M.class_f1_table({"B-s": {"x": 0.935, "y": 0.5}, "N-s": {"x": 0.931, "y": 0.25}},
                                    ["x", "y"], {"B-s": 0.7175, "N-s": 0.59})
    rows = csv_text.strip().splitlines()
    assert rows == ["Class,B-s,N-s", "x,93.5,93.1", "y,50.0,25.0", "F1 score,71.8,59.0"]
    assert md.splitlines()[0] == "| Class | B-s | N-s |" and md.splitlines()[-1].startswith("| F1 score |")


def test_classwise_f1_official_is_per_segment_and_paper_is_the_channel_mean():
    rng = np.random.default_rng(4)
    seg, ch = np.repeat(np.arange(12), 4), np.tile(np.arange(4), 12)
    labels = np.repeat(rng.integers(0, 3, 12), 4)
    probs = rng.dirichlet(np.ones(3), size=48)
    official, paper = M.classwise_f1(probs, labels, seg, ch, 3)
    seg_pred = probs.reshape(12, 4, 3).mean(1).argmax(1)
    np.testing.assert_allclose(official, f1_score(labels[::4], seg_pred, average=None, labels=[0, 1, 2],
                                                  zero_division=0))
    want = np.mean([f1_score(labels[ch == c], probs[ch == c].argmax(1), average=None, labels=[0, 1, 2],
                             zero_division=0) for c in range(4)], axis=0)
    np.testing.assert_allclose(paper, want)
    pooled = f1_score(labels, probs.argmax(1), average=None, labels=[0, 1, 2], zero_division=0)
    assert not np.allclose(want, pooled)  # the grouping by channel matters on this example



def test_a_class_absent_and_never_predicted_has_no_class_wise_f1_as_in_the_json():
    # Before (QA): its row showed 0.0 beside an "F1 score" row of 100.0 (which leaves it out), and the
    # cross-validation table averaged that 0 in; the JSON's per_class_f1 says None.
    seg, ch = np.repeat(np.arange(4), 2), np.tile(np.arange(2), 4)
    labels = np.repeat([0, 1, 0, 1], 2)
    probs = np.eye(3)[labels] * 0.9 + 0.05  # every clip right; class 2 has no clips and is never predicted
    official, paper = M.classwise_f1(probs, labels, seg, ch, 3)
    assert official[:2].tolist() == paper[:2].tolist() == [1.0, 1.0] and np.isnan(official[2])
    assert np.isnan(paper[2])
    systems = {"s": dict(zip("xyz", official))}
    rows = M.class_f1_table(systems, list("xyz"), {"s": M.official_f1(probs, labels, seg)})[1].splitlines()
    assert rows[1:] == ["x,100.0", "y,100.0", "z,-", "F1 score,100.0"]
    # averaged over folds that score the class only; a class no fold scores stays without F1
    mean = M.mean_scored([[0.5, np.nan, np.nan], [0.7, 0.4, np.nan]])
    assert mean[:2].tolist() == pytest.approx([0.6, 0.4]) and np.isnan(mean[2])

def test_official_f1_below_one_is_the_hand_computed_macro_f1():
    # plain one-hot channel votes: segments 10..13 average to classes 0, 1, 2, 1 (labels 0, 1, 2, 2).
    # class 0 = 1; class 1: 1 hit, 1 false alarm = 2/3; class 2: 1 hit, 1 miss = 2/3 -> 7/9
    assert M.official_f1(onehot(PREDS), LABELS, SEGMENTS) == pytest.approx(7 / 9)


def test_segment_posteriors_are_the_mean_over_the_segments_channels():
    probs = np.array([[0.2, 0.8], [0.6, 0.4], [0.9, 0.1], [0.5, 0.5], [0.1, 0.9], [0.3, 0.7]])
    seg, post, lab = M.segment_posteriors(probs, [1, 1, 0, 0, 0, 0], [7, 7, 3, 3, 3, 3])
    assert seg.tolist() == [3, 7] and lab.tolist() == [0, 1]
    np.testing.assert_allclose(post, [[0.45, 0.55], [0.4, 0.6]])


def test_hard_predictions_beyond_the_labels_widen_the_confusion_matrix():
    assert M.confusion(np.array([0, 2]), np.array([0, 1])).tolist() == [[1, 0, 0], [0, 0, 1], [0, 0, 0]]
    assert M.per_class_f1(np.array([0, 2]), np.array([0, 1])).tolist() == [1.0, 0.0, 0.0]


@pytest.mark.parametrize("cut", ["preds", "labels", "channels"])
def test_paper_f1_refuses_inputs_of_different_lengths(cut):
    # Catches (the length check dropped: a mismatch became numpy's IndexError, or a silently wrong score)
    args = {"preds": PREDS, "labels": LABELS, "channels": CHANNELS}
    args[cut] = args[cut][:-1]
    with pytest.raises(ValueError, match=r"^paper_f1: predictions, labels and channel_ids must have the"):
        M.paper_f1(args["preds"], args["labels"], args["channels"])
