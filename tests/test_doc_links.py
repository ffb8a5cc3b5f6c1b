"""Every relative link and image in the README, docs/ (experiment reports included) and
notebooks/README.md names a file or folder that exists; `#anchors` and `?queries` are ignored."""

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", REPO / "notebooks" / "README.md", *sorted((REPO / "docs").rglob("*.md"))]

FENCE = re.compile(r"^```.*?^```", re.M | re.S)
CODE = re.compile(r"`[^`\n]*`")
# [text](target "title") and ![alt](target); <img src="target"> in raw HTML
INLINE = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.M)
IMG_SRC = re.compile(r"<img\s[^>]*src=\"([^\"]+)\"", re.I)
EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//|#)", re.I)


def targets(text: str) -> list[str]:
    """The link and image targets of a page, outside code."""
    text = CODE.sub("", FENCE.sub("", text))
    return [t for pattern in (INLINE, REFERENCE, IMG_SRC) for t in pattern.findall(text)]


def broken(page: Path) -> list[str]:
    """The relative targets of ``page`` that do not resolve to an existing path."""
    out = []
    for target in targets(page.read_text(encoding="utf-8")):
        if EXTERNAL.match(target):
            continue
        path = re.split(r"[#?]", target)[0]
        if path and not (page.parent / path).exists():
            out.append(target)
    return out


def test_pages_found():
    assert len(PAGES) > 10 and all(page.exists() for page in PAGES[:2])


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(page):
    assert broken(page) == [], f"{page.relative_to(REPO)} links to missing files"


def test_broken_link_is_found(tmp_path):
    page = tmp_path / "page.md"
    (tmp_path / "here.md").write_text("x")
    page.write_text(
        "[ok](here.md#part) [web](https://example.org/x.md) [anchor](#top) `[code](gone.md)`\n"
        "![figure](figures/gone.png) [missing](nothere.md#a)\n[ref]: also-gone.md\n"
        '<img src="img/gone.svg">\n'
    )
    expected = ["figures/gone.png", "nothere.md#a", "also-gone.md", "img/gone.svg"]
    assert sorted(broken(page)) == sorted(expected)


def test_readme_maps_every_page_and_module():
    """The README links every docs page and the notebooks' README, and its Layout table names every
    subpackage and module of src/cnnarch."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    linked = {re.split(r"[#?]", t)[0] for t in targets(readme)}
    pages = {p.relative_to(REPO).as_posix() for p in (REPO / "docs").glob("*.md")} | {"notebooks/README.md"}
    assert pages - linked == set()
    layout = readme.split("## Layout", 1)[1]
    src = REPO / "src" / "cnnarch"
    parts = {p.name for p in src.iterdir() if (p / "__init__.py").exists() or p.suffix == ".py"}
    parts -= {"__init__.py", "__main__.py"}
    assert {p for p in parts if f"`src/cnnarch/{p}`" not in layout} == set()
