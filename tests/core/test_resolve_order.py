from pathlib import Path

import pytest

from adaptlab.core.sources import Source, resolve
from adaptlab.errors import AdaptlabError


def _fail(reason):
    def fetch():
        raise AdaptlabError(reason)

    return fetch


def test_resolve_reports_each_failure_then_returns_the_first_working_source(tmp_path):
    heard = []
    sources = [Source("cache", _fail("not cached yet")), Source("official", _fail("timed out")),
               Source("mirror", lambda: tmp_path), Source("never", _fail("must not be tried"))]
    assert resolve(sources, "x", "", on_failure=heard.append) == (Path(tmp_path), "mirror")
    # a first run reads as what happens next, not as an error
    assert heard == ["cache: not cached yet, fetching from official", "official: timed out, fetching from mirror"]


def test_the_last_failure_names_no_next_source():
    heard = []
    with pytest.raises(AdaptlabError):
        resolve([Source("cache", _fail("not cached yet")), Source("mirror", _fail("offline"))], "x", "",
                on_failure=heard.append)
    assert heard == ["cache: not cached yet, fetching from mirror", "mirror: offline"]


def test_resolve_names_every_source_when_all_fail():
    with pytest.raises(AdaptlabError) as info:
        resolve([Source("a", _fail("no")), Source("b", _fail("nope\nsecond line"))], "the data", "Pass --data.")
    assert str(info.value) == "could not obtain the data. Tried a: no; b: second line. Pass --data."
