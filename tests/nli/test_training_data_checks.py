"""Training data the loop refuses in one line: empty texts, too few pairs, a single label (batches.check_*)."""

from __future__ import annotations

import pandas as pd
import pytest

from adaptlab.errors import AdaptlabError
from adaptlab.nli.batches import MIN_TRAIN_PAIRS, check_pairs, check_training_pairs


def _pairs(n: int, labels=(0, 1, 2)) -> pd.DataFrame:
    return pd.DataFrame({"premise": [f"p {i}" for i in range(n)], "hypothesis": [f"h {i}" for i in range(n)],
                         "label": [labels[i % len(labels)] for i in range(n)]})


def test_enough_pairs_of_several_labels_pass():
    check_training_pairs(_pairs(MIN_TRAIN_PAIRS), 3)


@pytest.mark.parametrize("premise", ["", "   "])
def test_an_empty_text_is_refused_naming_its_row(premise):
    frame = _pairs(12)
    frame.loc[7, "premise"] = premise
    with pytest.raises(AdaptlabError, match=r"1 pair\(s\) have an empty premise or hypothesis \(rows 7, 0-based\)"):
        check_pairs(frame, "eval split 'x'", 3)


def test_too_few_pairs_state_the_minimum():
    with pytest.raises(AdaptlabError, match=f"has 2 pair\\(s\\); training needs at least {MIN_TRAIN_PAIRS}"):
        check_training_pairs(_pairs(2), 3)


def test_a_single_label_is_refused():
    with pytest.raises(AdaptlabError, match="a single label"):
        check_training_pairs(_pairs(20, labels=(1,)), 3)
    check_pairs(_pairs(20, labels=(1,)), "eval split 'x'", 3)  # scoring a one-label file is fine
