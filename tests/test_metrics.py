"""Tests for mmlatch.metrics; expected values are worked out by hand in the comments."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from mmlatch.data.dataset import TaskSpec
from mmlatch.metrics import (
    PRIMARY_METRIC,
    SENTIMENT_METRICS,
    classification_metrics,
    compute_metrics,
    lower_is_better,
    metric_names,
    multilabel_metrics,
    regression_metrics,
    sentiment_metrics,
)

approx = pytest.approx

# --------------------------------------------------------------------------- sentiment
#
#  i    y     p    |p-y|  acc7 (clip[-3,3], round)  acc5 (clip[-2,2], round)  non0 (y>0 / p>0)  has0 (y>=0 / p>=0)
#  0   3.0   4.2   1.2    3 vs 3   eq               2 vs 2   eq               P -> P            P -> P
#  1  -3.0  -3.6   0.6   -3 vs -3  eq              -2 vs -2  eq               N -> N            N -> N
#  2   2.2   2.7   0.5    2 vs 3   ne               2 vs 2   eq (clip)        P -> P            P -> P
#  3   1.0   0.0   1.0    1 vs 0   ne               1 vs 0   ne               P -> N (p=0 neg)  P -> P (p=0 pos)
#  4   0.4   1.5   1.1    0 vs 2   ne (1.5 -> 2)    0 vs 2   ne               P -> P            P -> P
#  5   0.0   0.5   0.5    0 vs 0   eq (0.5 -> 0)    eq                        excluded          P -> P
#  6   0.0  -0.5   0.5    0 vs -0  eq (-0.5 -> -0)  eq                        excluded          P -> N
#  7  -2.5   0.0   2.5   -2 vs 0   ne (-2.5 -> -2)  -2 vs 0  ne               N -> N (p=0 neg)  N -> P (p=0 pos)
#  8   0.0  -1.2   1.2    0 vs -1  ne               0 vs -1  ne               excluded          P -> N
#
#  mae  = (1.2+0.6+0.5+1.0+1.1+0.5+0.5+2.5+1.2) / 9 = 9.1 / 9
#  acc7 = |{0,1,5,6}| / 9 = 4/9;  acc5 = |{0,1,2,5,6}| / 9 = 5/9
#
#  non0 (6 samples): TP=3 {0,2,4}, FN=1 {3}, FP=0, TN=2 {1,7}; acc2 = 5/6
#    F1(pos) = 2TP/(2TP+FP+FN) = 6/7, support 4;  F1(neg) = 2TN/(2TN+FN+FP) = 4/5, support 2
#    weighted F1 = (4*6/7 + 2*4/5) / 6 = (24/7 + 8/5) / 6 = (176/35) / 6 = 88/105  (!= acc2)
#    published (weights = predicted counts: 3 pos, 3 neg) = (3*6/7 + 3*4/5) / 6 = 29/35 = 87/105
#  has0 (9 samples): TP=5 {0,2,3,4,5}, FN=2 {6,8}, FP=1 {7}, TN=1 {1}; acc2_has0 = 6/9
#    F1(pos) = 10/13, support 7;  F1(neg) = 2/5, support 2
#    weighted F1 = (7*10/13 + 2*2/5) / 9 = (70/13 + 4/5) / 9 = (402/65) / 9 = 134/195
#    published (predicted: 6 pos, 3 neg) = (6*10/13 + 3*2/5) / 9 = (378/65) / 9 = 42/65 = 126/195
#  has0_neg (9 samples, y>0 / p>0, zeros negative): TP=3 {0,2,4}, FN=1 {3}, FP=1 {5},
#    TN=4 {1,6,7,8}; acc2_has0_neg = 7/9; F1(pos) = 6/8, F1(neg) = 8/10; FP == FN, so both
#    weightings are (4, 5): (4*3/4 + 5*4/5) / 9 = 7/9
Y_SENT = np.array([3.0, -3.0, 2.2, 1.0, 0.4, 0.0, 0.0, -2.5, 0.0])
P_SENT = np.array([4.2, -3.6, 2.7, 0.0, 1.5, 0.5, -0.5, 0.0, -1.2])


def test_sentiment_metrics_hand_computed() -> None:
    m = sentiment_metrics(P_SENT, Y_SENT)
    assert list(m) == list(SENTIMENT_METRICS)
    assert m["mae"] == approx(9.1 / 9)
    assert m["acc7"] == approx(4 / 9)
    assert m["acc5"] == approx(5 / 9)
    assert m["acc2"] == approx(5 / 6)
    assert m["f1"] == approx(88 / 105)
    assert m["acc2_has0"] == approx(6 / 9)
    assert m["f1_has0"] == approx(134 / 195)
    assert m["f1_published"] == approx(29 / 35)
    assert m["f1_has0_published"] == approx(42 / 65)
    assert m["acc2_has0_neg"] == approx(7 / 9)
    assert m["f1_has0_neg"] == approx(7 / 9)
    assert m["f1_has0_neg_published"] == approx(7 / 9)
    assert m["corr"] == approx(np.corrcoef(P_SENT, Y_SENT)[0, 1])
    assert all(type(v) is float for v in m.values())


def test_zero_prediction_and_zero_label_conventions() -> None:
    # y = [0, 1, -1], p = [-2, 0, 0]
    # non0: y=0 dropped; (y=1, p=0): p=0 is negative -> wrong; (y=-1, p=0): right -> acc2 = 1/2
    # has0: (0 pos, -2 neg) wrong; (1 pos, 0 pos) right; (-1 neg, 0 pos) wrong -> 1/3
    m = sentiment_metrics([-2.0, 0.0, 0.0], [0.0, 1.0, -1.0])
    assert m["acc2"] == approx(1 / 2)
    assert m["acc2_has0"] == approx(1 / 3)
    # non0 F1: pos support 1, F1 0 (TP=0); neg: TP=1, FP=1 -> F1 = 2/3, support 1 -> 1/3
    assert m["f1"] == approx(1 / 3)
    # has0 F1: pos: TP=1, FN=1, FP=1 -> 2/4 = 1/2, support 2; neg: TP=0 -> 0 -> (2*1/2)/3 = 1/3
    assert m["f1_has0"] == approx(1 / 3)
    # published non0: both predictions negative -> weights (pos 0, neg 2): 2/3
    assert m["f1_published"] == approx(2 / 3)
    # published has0: predicted (pos 2, neg 1), the same counts as the labels -> 1/3
    assert m["f1_has0_published"] == approx(1 / 3)
    # has0_neg (> 0, zeros negative): y N,P,N; p N,N,N -> TN, FN, TN: acc 2/3;
    # F1(pos) = 0, F1(neg) = 4/5; label weights (1, 2): 8/15; predicted weights (0, 3): 4/5
    assert m["acc2_has0_neg"] == approx(2 / 3)
    assert m["f1_has0_neg"] == approx(8 / 15)
    assert m["f1_has0_neg_published"] == approx(4 / 5)


def test_all_zero_labels_give_nan_non0() -> None:
    m = sentiment_metrics([0.5, -0.5], [0.0, 0.0])
    assert math.isnan(m["acc2"]) and math.isnan(m["f1"]) and math.isnan(m["f1_published"])
    # has0: both labels positive, p=0.5 pos (right), p=-0.5 neg (wrong)
    assert m["acc2_has0"] == approx(0.5)
    # weighted F1: only the positive class has support: TP=1, FN=1 -> 2/3
    assert m["f1_has0"] == approx(2 / 3)
    # published: predicted 1 pos (F1 2/3), 1 neg (F1 0) -> 1/3
    assert m["f1_has0_published"] == approx(1 / 3)
    # has0_neg: both labels negative; p=0.5 pos (wrong), p=-0.5 neg (right): FP=1, TN=1
    # F1(neg) = 2/3, F1(pos) = 0; label weights (0 pos, 2 neg): 2/3; predicted (1, 1): 1/3
    assert m["acc2_has0_neg"] == approx(0.5)
    assert m["f1_has0_neg"] == approx(2 / 3)
    assert m["f1_has0_neg_published"] == approx(1 / 3)


def test_f1_weighted_by_labels_vs_by_predictions_hand_computed() -> None:
    # Labels +, +, -, - and every prediction negative (2 wrong): TP=0, FN=2, TN=2, FP=0.
    # F1(pos) = 0, F1(neg) = 2*2 / (2*2 + 2) = 2/3.
    # f1 (label counts 2, 2): (2*0 + 2*2/3) / 4 = 1/3
    # f1_published (predicted counts 0, 4): (0*0 + 4*2/3) / 4 = 2/3
    m = sentiment_metrics([-1.0, -0.5, -2.0, -1.0], [2.0, 1.0, -1.0, -3.0])
    assert m["acc2"] == approx(1 / 2)
    assert m["f1"] == approx(1 / 3)
    assert m["f1_published"] == approx(2 / 3)
    # Unbalanced labels (4 +, 1 -), two positives predicted negative: TP=2, FN=2, TN=1, FP=0.
    # F1(pos) = 4/6 = 2/3, F1(neg) = 2/4 = 1/2.
    # f1 (label counts 4, 1): (4*2/3 + 1/2) / 5 = 19/30
    # f1_published (predicted counts 2, 3): (2*2/3 + 3*1/2) / 5 = 17/30
    m = sentiment_metrics([1.0, 2.0, -1.0, -0.5, -2.0], [1.0, 2.0, 3.0, 0.5, -1.0])
    assert m["acc2"] == approx(3 / 5)
    assert m["f1"] == approx(19 / 30)
    assert m["f1_published"] == approx(17 / 30)


def test_f1_conventions_with_zero_labels_hand_computed() -> None:
    # i   y    p     non0 (>0)   has0 (>=0)   has0_neg (>0, zeros kept)
    # 0   2   -1     P -> N      P -> N       P -> N
    # 1   1   -0.5   P -> N      P -> N       P -> N
    # 2  -1   -2     N -> N      N -> N       N -> N
    # 3  -3   -1     N -> N      N -> N       N -> N
    # 4   0    0     dropped     P -> P       N -> N
    # 5   0   -0.5   dropped     P -> N       N -> N
    # non0: the first example of the previous test: acc 1/2, f1 1/3, published 2/3.
    # has0: TP=1, FN=3, TN=2; F1(pos) = 2/5, F1(neg) = 4/7; acc 3/6
    #   label counts (4, 2): (4*2/5 + 2*4/7) / 6 = (96/35) / 6 = 16/35
    #   predicted counts (1, 5): (2/5 + 5*4/7) / 6 = (114/35) / 6 = 19/35
    # has0_neg: TP=0, FN=2, TN=4; F1(pos) = 0, F1(neg) = 8/10; acc 4/6
    #   label counts (2, 4): (4*4/5) / 6 = 8/15;  predicted counts (0, 6): 4/5
    m = sentiment_metrics([-1.0, -0.5, -2.0, -1.0, 0.0, -0.5], [2.0, 1.0, -1.0, -3.0, 0.0, 0.0])
    assert (m["acc2"], m["f1"], m["f1_published"]) == (approx(1 / 2), approx(1 / 3), approx(2 / 3))
    assert m["acc2_has0"] == approx(1 / 2)
    assert m["f1_has0"] == approx(16 / 35)
    assert m["f1_has0_published"] == approx(19 / 35)
    assert m["acc2_has0_neg"] == approx(2 / 3)
    assert m["f1_has0_neg"] == approx(8 / 15)
    assert m["f1_has0_neg_published"] == approx(4 / 5)


def test_binary_metrics_equal_the_sklearn_formulas_on_random_cases() -> None:
    from sklearn.metrics import accuracy_score, f1_score

    rng = np.random.default_rng(16)
    differ = 0
    for case in range(60):
        n = int(rng.integers(3, 40))
        truth = np.round(rng.uniform(-3.4, 3.4, n) * 2) / 2  # multiples of .5: zeros and ties
        truth[rng.random(n) < 0.2] = 0.0
        preds = np.round(rng.normal(0, 1.5, n) * 2) / 2 if case % 2 else rng.normal(0, 1.5, n)
        preds[rng.random(n) < 0.15] = 0.0
        m = sentiment_metrics(preds, truth)
        nz = truth != 0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # undefined precision/recall -> 0, as sklearn warns
            if nz.any():
                assert m["f1_published"] == f1_score(preds[nz] > 0, truth[nz] > 0, average="weighted")
                assert m["f1"] == f1_score(truth[nz] > 0, preds[nz] > 0, average="weighted")
                assert m["acc2"] == accuracy_score(truth[nz] > 0, preds[nz] > 0)
                differ += m["f1"] != m["f1_published"]
            assert m["f1_has0_published"] == f1_score(preds >= 0, truth >= 0, average="weighted")
            assert m["f1_has0"] == f1_score(truth >= 0, preds >= 0, average="weighted")
            assert m["acc2_has0"] == accuracy_score(truth >= 0, preds >= 0)
            assert m["f1_has0_neg_published"] == f1_score(preds > 0, truth > 0, average="weighted")
            assert m["f1_has0_neg"] == f1_score(truth > 0, preds > 0, average="weighted")
            assert m["acc2_has0_neg"] == accuracy_score(truth > 0, preds > 0)
    assert differ > 30  # the cases do tell the two F1 definitions apart


def test_acc7_acc5_clipping() -> None:
    # acc7: 4.2 -> 3 == 3; -3.6 -> -3 == -3; 2.7 -> 3 != round(2.2) = 2
    m = sentiment_metrics([4.2, -3.6, 2.7], [3.0, -3.0, 2.2])
    assert m["acc7"] == approx(2 / 3)
    # acc5: 4.2 -> 2 == min(3, 2); -3.6 -> -2 == -2; 2.7 -> 2 == 2.2 -> 2
    assert m["acc5"] == approx(1.0)
    # acc5 without clipping the label would fail here: y = 3 -> 2, p = 1.6 -> 2
    assert sentiment_metrics([1.6], [3.0])["acc5"] == 1.0
    assert sentiment_metrics([1.6], [3.0])["acc7"] == 0.0


def test_rounding_is_half_to_even() -> None:
    # np.round: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -0.5 -> -0, -1.5 -> -2, -2.5 -> -2
    p = [0.5, 1.5, 2.5, -0.5, -1.5, -2.5]
    assert sentiment_metrics(p, [0, 2, 2, 0, -2, -2])["acc7"] == 1.0
    # with round-half-away-from-zero labels [1, 2, 3, -1, -2, -3] only 1.5 and -1.5 match
    assert sentiment_metrics(p, [1, 2, 3, -1, -2, -3])["acc7"] == approx(2 / 6)


def test_corr_hand_computed() -> None:
    # p = [1,2,3], y = [1,3,2]: deviations [-1,0,1] and [-1,1,0]; sum of products = 1,
    # norms sqrt(2) each -> r = 1/2
    assert sentiment_metrics([1.0, 2.0, 3.0], [1.0, 3.0, 2.0])["corr"] == approx(0.5)
    # perfect negative
    assert sentiment_metrics([1.0, 2.0, 3.0], [3.0, 2.0, 1.0])["corr"] == approx(-1.0)


def test_corr_nan_for_constant_without_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = sentiment_metrics([0.3, 0.3, 0.3], [1.0, -2.0, 0.5])
        assert math.isnan(m["corr"])
        assert math.isnan(sentiment_metrics([1.0, -2.0, 0.5], [2.0, 2.0, 2.0])["corr"])
        assert math.isnan(sentiment_metrics([1.0], [2.0])["corr"])
        # the other metrics are still defined: |0.3-1| + |0.3+2| + |0.3-0.5| = 0.7+2.3+0.2 = 3.2
        assert m["mae"] == approx(3.2 / 3)


def test_sentiment_metrics_shape_errors() -> None:
    with pytest.raises(ValueError, match="same length"):
        sentiment_metrics([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="empty"):
        sentiment_metrics([], [])
    with pytest.raises(ValueError, match="predictions contain NaN/inf"):
        sentiment_metrics([1.0, float("nan")], [1.0, 2.0])


# --------------------------------------------------------------------------- regression
#  column a: y = [0,1,2], p = [0,2,1]: |e| = 0,1,1 -> mae 2/3; deviations p [-1,1,0],
#            y [-1,0,1] -> dot 1, norms sqrt2*sqrt2 -> r = 1/2
#  column b: y = [1,2,3], p = [1,2,6]: |e| = 0,0,3 -> mae 1; p mean 3 -> dev [-2,-1,3],
#            y dev [-1,0,1] -> dot 2+0+3 = 5, norms sqrt14*sqrt2 = sqrt28 -> r = 5/(2 sqrt7)
#  means: mae = (2/3 + 1)/2 = 5/6, corr = (1/2 + 5/(2 sqrt7))/2
Y_REG = np.array([[0.0, 1.0], [1.0, 2.0], [2.0, 3.0]])
P_REG = np.array([[0.0, 1.0], [2.0, 2.0], [1.0, 6.0]])
R_B = 5 / (2 * math.sqrt(7))


def test_regression_metrics_hand_computed() -> None:
    m = regression_metrics(P_REG, Y_REG, ["a", "b"])
    assert list(m) == ["mae", "corr", "mae_a", "corr_a", "mae_b", "corr_b"]
    assert m["mae_a"] == approx(2 / 3)
    assert m["corr_a"] == approx(0.5)
    assert m["mae_b"] == approx(1.0)
    assert m["corr_b"] == approx(R_B)
    assert m["mae"] == approx(5 / 6)
    assert m["corr"] == approx((0.5 + R_B) / 2)


def test_regression_metrics_constant_column_nan_corr_mean() -> None:
    p = P_REG.copy()
    p[:, 1] = 4.0
    m = regression_metrics(p, Y_REG, ["a", "b"])
    assert math.isnan(m["corr_b"]) and math.isnan(m["corr"])
    assert m["corr_a"] == approx(0.5)
    # column b: |4-1| + |4-2| + |4-3| = 6 -> 2; mean mae = (2/3 + 2)/2 = 4/3
    assert m["mae"] == approx(4 / 3)


def test_regression_metrics_errors() -> None:
    with pytest.raises(ValueError, match="names"):
        regression_metrics(P_REG, Y_REG, ["a"])
    with pytest.raises(ValueError, match="same shape"):
        regression_metrics(P_REG, Y_REG[:2], ["a", "b"])


# --------------------------------------------------------------------------- classification
#  y = [0,1,2,2,1], argmax = [0,0,0,2,1]: correct {0,3,4} -> acc 3/5
#  class 0: TP 1, FP 2, FN 0 -> F1 = 2/(2+2) = 1/2, support 1
#  class 1: TP 1, FP 0, FN 1 -> F1 = 2/3, support 2
#  class 2: TP 1, FP 0, FN 1 -> F1 = 2/3, support 2
#  weighted = (1*1/2 + 2*2/3 + 2*2/3)/5 = (1/2 + 8/3)/5 = (19/6)/5 = 19/30
LOGITS_CLS = np.array(
    [
        [2.0, 0.1, -1.0],
        [1.0, 0.5, 0.0],
        [0.3, 0.2, 0.1],
        [-1.0, 0.0, 3.0],
        [0.0, 1.0, 0.5],
    ]
)
Y_CLS = np.array([[0.0], [1.0], [2.0], [2.0], [1.0]])
CLASSES = ("neg", "neu", "pos")


def test_classification_metrics_hand_computed() -> None:
    m = classification_metrics(LOGITS_CLS, Y_CLS, CLASSES)
    assert list(m) == ["acc", "f1"]
    assert m["acc"] == approx(3 / 5)
    assert m["f1"] == approx(19 / 30)
    # 1-D labels are accepted too
    assert classification_metrics(LOGITS_CLS, Y_CLS[:, 0], CLASSES) == m


def test_classification_metrics_bad_labels() -> None:
    with pytest.raises(ValueError, match="class indices"):
        classification_metrics(LOGITS_CLS, Y_CLS + 0.5, CLASSES)
    with pytest.raises(ValueError, match="class indices"):
        classification_metrics(LOGITS_CLS, Y_CLS + 1, CLASSES)  # label 3 with 3 classes
    with pytest.raises(ValueError, match="class names"):
        classification_metrics(LOGITS_CLS, Y_CLS, CLASSES[:2])


# --------------------------------------------------------------------------- multilabel
#  happy: y [1,0,1,0], logits [2, 0, -0.5, -1] -> pred (logit > 0) [1,0,0,0]
#         acc: ok, ok (logit 0 is negative), miss, ok -> 3/4
#         F1(1): TP 1, FP 0, FN 1 -> 2/3, support 2; F1(0): TP 2, FP 1, FN 0 -> 4/5, support 2
#         weighted = (2/3 + 4/5)/2 = 11/15
#  sad:   y [0,0,1,1], logits [-1,-3,1,0.2] -> all right: acc 1, F1 1
#  means: acc = (3/4 + 1)/2 = 7/8, f1 = (11/15 + 1)/2 = 13/15
Y_ML = np.array([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
LOGITS_ML = np.array([[2.0, -1.0], [0.0, -3.0], [-0.5, 1.0], [-1.0, 0.2]])


def test_multilabel_metrics_hand_computed() -> None:
    m = multilabel_metrics(LOGITS_ML, Y_ML, ["happy", "sad"])
    assert list(m) == ["acc", "f1", "acc_happy", "f1_happy", "acc_sad", "f1_sad"]
    assert m["acc_happy"] == approx(3 / 4)
    assert m["f1_happy"] == approx(11 / 15)
    assert m["acc_sad"] == approx(1.0)
    assert m["f1_sad"] == approx(1.0)
    assert m["acc"] == approx(7 / 8)
    assert m["f1"] == approx(13 / 15)


def test_multilabel_metrics_non_binary_labels() -> None:
    with pytest.raises(ValueError, match="0 or 1"):
        multilabel_metrics(LOGITS_ML, Y_ML * 2, ["happy", "sad"])


# --------------------------------------------------------------------------- dispatch

SENT = TaskSpec()
REG1 = TaskSpec(kind="regression", num_outputs=1, label_names=("score",), label_range=(0.0, 1.0))
REG2 = TaskSpec(kind="regression", num_outputs=2, label_names=("a", "b"), label_range=None)
CLS = TaskSpec(kind="classification", num_outputs=3, label_names=CLASSES, label_range=None)
ML = TaskSpec(kind="multilabel", num_outputs=2, label_names=("happy", "sad"), label_range=None)


def _check_keys(task: TaskSpec, m: dict[str, float]) -> None:
    assert list(m) == metric_names(task)
    assert all(type(v) is float for v in m.values())


def test_compute_metrics_sentiment() -> None:
    m = compute_metrics(SENT, P_SENT[:, None], Y_SENT[:, None])
    _check_keys(SENT, m)
    assert m["f1"] == approx(88 / 105)
    assert m["acc7"] == approx(4 / 9)


def test_compute_metrics_single_regression() -> None:
    # p = [1,2,3], y = [1,3,2]: mae (0+1+1)/3 = 2/3, corr 1/2 (see test_corr_hand_computed)
    m = compute_metrics(REG1, np.array([[1.0], [2.0], [3.0]]), np.array([[1.0], [3.0], [2.0]]))
    _check_keys(REG1, m)
    assert metric_names(REG1) == ["mae", "corr"]
    assert m["mae"] == approx(2 / 3)
    assert m["corr"] == approx(0.5)


def test_compute_metrics_multi_regression() -> None:
    m = compute_metrics(REG2, P_REG, Y_REG)
    _check_keys(REG2, m)
    assert m["mae"] == approx(5 / 6)
    assert m["corr_b"] == approx(R_B)


def test_compute_metrics_classification() -> None:
    m = compute_metrics(CLS, LOGITS_CLS, Y_CLS)
    _check_keys(CLS, m)
    assert m == {"acc": approx(3 / 5), "f1": approx(19 / 30)}


def test_compute_metrics_multilabel() -> None:
    m = compute_metrics(ML, LOGITS_ML, Y_ML)
    _check_keys(ML, m)
    assert m["f1"] == approx(13 / 15)


def test_metric_names() -> None:
    assert metric_names(SENT) == [
        "mae", "corr", "acc7", "acc5", "acc2", "f1", "f1_published",
        "acc2_has0", "f1_has0", "f1_has0_published",
        "acc2_has0_neg", "f1_has0_neg", "f1_has0_neg_published",
    ]
    assert metric_names(ML) == ["acc", "f1", "acc_happy", "f1_happy", "acc_sad", "f1_sad"]
    assert metric_names(CLS) == ["acc", "f1"]


def test_compute_metrics_errors() -> None:
    with pytest.raises(ValueError, match="shape"):  # N mismatch
        compute_metrics(SENT, np.zeros((3, 1)), np.zeros((4, 1)))
    with pytest.raises(ValueError, match=r"expected \(N, 1\)"):  # too many outputs
        compute_metrics(SENT, np.zeros((3, 2)), np.zeros((3, 1)))
    with pytest.raises(ValueError, match=r"expected \(N, 2\)"):
        compute_metrics(REG2, np.zeros((3, 1)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="shape"):  # classification labels must be (N, 1)
        compute_metrics(CLS, LOGITS_CLS, np.zeros((5, 3)))
    with pytest.raises(ValueError, match="empty"):
        compute_metrics(SENT, np.zeros((0, 1)), np.zeros((0, 1)))
    for bad in (float("nan"), float("inf"), -float("inf")):
        p = P_SENT[:, None].copy()
        p[2, 0] = bad
        with pytest.raises(ValueError, match="predictions contain NaN/inf"):
            compute_metrics(SENT, p, Y_SENT[:, None])
    p = LOGITS_ML.copy()
    p[0, 1] = float("nan")
    with pytest.raises(ValueError, match="predictions contain NaN/inf"):
        compute_metrics(ML, p, Y_ML)
    with pytest.raises(ValueError, match="predictions contain NaN/inf"):
        compute_metrics(REG1, np.array([[np.nan], [1.0]]), np.array([[0.0], [1.0]]))


def test_primary_metric_and_direction() -> None:
    assert set(PRIMARY_METRIC) == {"regression", "classification", "multilabel"}
    assert PRIMARY_METRIC["regression"] == "mae"
    assert lower_is_better("mae")
    assert lower_is_better("mae_happy")
    for name in ("corr", "acc7", "acc2", "f1", "f1_has0", "f1_published", "acc2_has0_neg", "acc"):
        assert not lower_is_better(name)
