"""HTML: the main text under its headings, without menus, scripts and page furniture."""

from __future__ import annotations

import re
from pathlib import Path

from selectolax.lexbor import LexborHTMLParser, LexborNode

from ragline.errors import LoadError
from ragline.ingest.loaders.base import decode_text, read_bytes
from ragline.types import Block, Document

_DROP_TAGS = ("script", "style", "noscript", "nav", "header", "footer", "aside", "form",
              "svg", "iframe", "button", "select", "template", "head")
_DROP_SELECTORS = ('[role="navigation"]', '[role="banner"]', '[role="contentinfo"]',
                   '[aria-hidden="true"]', ".navbar", ".nav", ".menu", ".sidebar", ".footer",
                   ".cookie", ".breadcrumb")
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_BLOCKS = {"p", "div", "li", "ul", "ol", "pre", "blockquote", "td", "th", "tr", "table",
           "dd", "dt", "dl", "section", "article", "main", "br", "hr", "figure",
           "figcaption", "caption", "body", "tbody", "thead"}
_SPACES = re.compile(r"\s+")


class _Walker:
    """Collects blocks in document order while tracking the heading path."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self.stack: list[tuple[int, str]] = []
        self.buf: list[str] = []
        self.title: str | None = None

    def heading(self) -> str | None:
        return " > ".join(t for _, t in self.stack) or None

    def flush(self) -> None:
        text = _SPACES.sub(" ", "".join(self.buf)).strip()
        self.buf.clear()
        if text:
            self.blocks.append(Block(text, heading=self.heading()))

    def walk(self, node: LexborNode) -> None:
        for child in node.iter(include_text=True):
            tag = child.tag
            if tag == "-text":
                self.buf.append(child.text_content or "")
            elif tag in _HEADINGS:
                self.flush()
                text = _SPACES.sub(" ", child.text(separator=" ")).strip()
                if text:
                    level = _HEADINGS[tag]
                    self.stack[:] = [(lv, t) for lv, t in self.stack if lv < level]
                    self.stack.append((level, text))
                    self.title = self.title or (text if level == 1 else None)
            elif tag == "pre":
                self.flush()
                text = (child.text(separator="") or "").strip()
                if text:
                    self.blocks.append(Block(text, heading=self.heading()))
            elif tag in _BLOCKS:
                self.flush()
                self.walk(child)
                self.flush()
            elif tag and not tag.startswith("-"):
                self.walk(child)


def parse_html(html: str) -> tuple[list[Block], str | None]:
    """Return the main-content blocks and the page title."""
    tree = LexborHTMLParser(html)
    title_node = tree.css_first("title")
    page_title = _SPACES.sub(" ", title_node.text()).strip() if title_node else None
    tree.strip_tags(list(_DROP_TAGS))
    for sel in _DROP_SELECTORS:
        for node in tree.css(sel):
            node.decompose()
    root = (tree.css_first("main") or tree.css_first("article")
            or tree.css_first('[role="main"]') or tree.body)
    if root is None:
        return [], page_title
    walker = _Walker()
    walker.walk(root)
    walker.flush()
    return walker.blocks, page_title or walker.title


def load_html(path: Path) -> list[Document]:
    warnings: list[str] = []
    blocks, title = parse_html(decode_text(path, read_bytes(path), warnings))
    if not blocks:
        raise LoadError(str(path), "no readable text in the HTML")
    return [Document(str(path), blocks, title=title, warnings=warnings)]
