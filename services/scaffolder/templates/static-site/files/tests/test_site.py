"""Checks of the site under site/: what the container publishes as it is.

Run from the project's root: python3 -m unittest discover -s tests -v
(Python's standard library only.)
"""

import html.parser
import pathlib
import re
import unittest
import urllib.parse

ROOT = pathlib.Path(__file__).resolve().parent.parent
SITE = ROOT / "site"

# Elements that have no end tag.
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
        "source", "track", "wbr"}


class Page(html.parser.HTMLParser):
    """Collects an HTML page's references, title and structure problems."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.doctype = None
        self.references = []  # (tag, attribute, value)
        self.problems = []
        self.open = []
        self.text = {}  # tag -> text of its first occurrence
        self._capturing = None

    def handle_decl(self, decl):
        self.doctype = decl

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("href", "src") and value is not None:
                self.references.append((tag, name, value))
        if tag not in VOID:
            self.open.append(tag)
        if tag in ("title", "h1") and tag not in self.text:
            self._capturing = tag
            self.text[tag] = ""

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.open.pop()

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.open or self.open[-1] != tag:
            self.problems.append(f"</{tag}> at line {self.getpos()[0]} closes "
                                 f"{'<' + self.open[-1] + '>' if self.open else 'nothing'}")
            if tag in self.open:
                while self.open.pop() != tag:
                    pass
            return
        self.open.pop()
        if self._capturing == tag:
            self._capturing = None

    def handle_data(self, data):
        if self._capturing:
            self.text[self._capturing] += data


def parse(path):
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    return page


def local_target(reference):
    """The file under site/ a reference names, or None for an outside one."""
    url = urllib.parse.urlsplit(reference)
    if url.scheme or url.netloc or not url.path:
        return None  # https://…, mailto:, data:, //host/…, #fragment
    path = urllib.parse.unquote(url.path)
    target = (SITE / path.lstrip("/")).resolve()
    if path.endswith("/") or target.is_dir():
        target = target / "index.html"
    return target


class SiteTest(unittest.TestCase):
    def pages(self):
        found = sorted(SITE.rglob("*.html"))
        self.assertIn(SITE / "index.html", found)
        return found

    def test_health_check_file(self):
        # The run contract's health path, /healthz, is this file.
        self.assertEqual((SITE / "healthz").read_text(encoding="utf-8").strip(), "ok")

    def test_pages_are_well_formed(self):
        for path in self.pages():
            with self.subTest(page=str(path.relative_to(ROOT))):
                page = parse(path)
                self.assertEqual((page.doctype or "").lower(), "doctype html")
                self.assertEqual(page.problems, [])
                self.assertEqual(page.open, [], "elements left open")
                self.assertTrue(page.text.get("title", "").strip(), "no <title>")

    def test_index_title_is_its_heading(self):
        page = parse(SITE / "index.html")
        self.assertEqual(page.text["title"].strip(), page.text.get("h1", "").strip())

    def test_local_references_exist(self):
        for path in self.pages():
            for tag, attribute, value in parse(path).references:
                target = local_target(value)
                if target is None:
                    continue
                with self.subTest(page=str(path.relative_to(ROOT)), reference=value):
                    self.assertTrue(target.is_relative_to(SITE), f"<{tag} {attribute}> leaves site/")
                    self.assertTrue(target.is_file(), f"<{tag} {attribute}={value!r}>: no such file")

    def test_stylesheets_balance_and_use_hex_colors(self):
        for path in sorted(SITE.rglob("*.css")):
            with self.subTest(stylesheet=str(path.relative_to(ROOT))):
                css = re.sub(r"/\*.*?\*/", "", path.read_text(encoding="utf-8"), flags=re.S)
                self.assertEqual(css.count("{"), css.count("}"), "unbalanced braces")
                for color in re.findall(r"#[0-9A-Za-z]+\b", css):
                    self.assertRegex(color, r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")


if __name__ == "__main__":
    unittest.main()
