"""``connector sandbox`` with a documents folder that holds a file it can't read: that file is reported
with its reason and the others are in the host product (one bad file never stops the rest)."""

from __future__ import annotations

import shutil

from connector.sandboxes import start_sandboxes
from tests.e2e.test_demo_sync import SAMPLES


def test_an_unreadable_file_is_reported_and_the_others_are_loaded(tmp_path):
    good = sorted(SAMPLES.glob("*.xml"))[0]
    shutil.copy(good, tmp_path / good.name)
    (tmp_path / "broken.xml").write_text("this is not XML")
    with start_sandboxes(["exact"], 0, tmp_path) as sandboxes:
        assert [d.source for d in sandboxes.documents] == [good.name]
        assert [(r.source, r.status) for r in sandboxes.unreadable] == [("broken.xml", "skipped")]
        assert "not well-formed XML" in sandboxes.unreadable[0].reason
