"""The user guide's links: every relative link in the READMEs and docs names a file that is
in the repository (a moved file or a link written from the wrong folder breaks silently)."""

from __future__ import annotations

import re

from tests.conftest import REPO

LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_every_relative_link_in_the_guides_points_at_a_file_that_exists():
    pages = [*REPO.glob("*.md"), *(REPO / "docs").rglob("*.md"), *(REPO / "recipes").rglob("*.md"),
             *(REPO / "checkpoints" / "pretrained").glob("*.md")]
    assert len(pages) > 10
    broken = [(page.relative_to(REPO), target) for page in pages
              for target in LINK.findall(page.read_text())
              if "://" not in target and not target.startswith("mailto:")
              and not (page.parent / target).exists()]
    assert not broken, broken
