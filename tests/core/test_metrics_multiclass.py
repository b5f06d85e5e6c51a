import numpy as np

from adaptlab.core.metrics import best_f1_threshold, multiclass_metrics


def test_multiclass_metrics_hand_made():
    y_true = [0, 0, 1, 1, 2, 2]
    y_pred = [0, 1, 1, 1, 2, 0]
    m = multiclass_metrics(y_true, y_pred, ["e", "n", "c"])
    assert m["accuracy"] == 4 / 6
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    # class "n": predicted 3 times, 2 right; all 2 true found
    assert m["per_class"]["n"] == {"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2}
    assert m["per_class"]["c"]["precision"] == 1.0 and m["per_class"]["c"]["recall"] == 0.5


def test_best_f1_threshold_matches_brute_force():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    scores = np.clip(y * 0.3 + rng.random(300) * 0.8, 0, 1)

    def f1_at(t):
        pred = scores >= t
        tp = np.sum(pred & (y == 1))
        return 2 * tp / (pred.sum() + y.sum())

    brute = max(f1_at(t) for t in np.unique(scores))
    assert np.isclose(f1_at(best_f1_threshold(y, scores)), brute)
    assert best_f1_threshold(np.zeros(5), np.linspace(0, 1, 5)) == 0.5
