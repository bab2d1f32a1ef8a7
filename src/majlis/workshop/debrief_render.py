"""The debrief's two faces, Markdown and HTML, drawn from the same blocks.

Every piece of run text is escaped in both: model messages may hold anything, and a
Markdown file is often previewed as HTML, so it gets no raw markup, links or headings.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any

from .viewer import static_page

# ("p", text) ("h3", text) ("ul", [text]) ("table", head, rows) ("quote", seq, cite, text)
# ("chart", id, svg, head, rows): SVG in the HTML, the same figures as a table in Markdown
Block = tuple[Any, ...]


@dataclass
class Section:
    id: str
    title: str
    intro: str
    blocks: list[Block] = field(default_factory=list)


_MD = str.maketrans({c: "\\" + c for c in "\\`*_[]|"} | {"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_MD_LINE = re.compile(r"^(\s*\d*)([#+=.)-])", re.MULTILINE)  # "# x", "- x", "1. x", "1) x"


def md(text: object, block: bool = True) -> str:
    """Text that Markdown shows as itself; `block`: also no list, heading or rule at a line start."""
    out = str(text).translate(_MD)
    return _MD_LINE.sub(r"\1\\\2", out) if block else out


def to_markdown(title: str, meta: str, sections: list[Section]) -> str:
    out = [f"# {md(title)}", "", md(meta), ""]
    for s in sections:
        out += [f"## {md(s.title)}", ""] + ([md(s.intro), ""] if s.intro else [])
        for b in s.blocks:
            if b[0] in ("table", "chart"):  # a chart reads as its figures
                head, rows = b[1:] if b[0] == "table" else b[3:]
                out.append("| " + " | ".join(md(h, False) for h in head) + " |")
                out.append("|" + " --- |" * len(head))
                out += ["| " + " | ".join(md(c, False) for c in row) + " |" for row in rows]
            elif b[0] == "ul":
                out += ["- " + md(item).replace("\n", " ") for item in b[1]]
            elif b[0] == "quote":
                out += [f"**{md(b[2], False)}**", ""]
                out += [f"> {line}".rstrip() for line in md(b[3]).splitlines()]
            else:
                out.append(("### " if b[0] == "h3" else "") + md(b[1]))
            out.append("")
    return "\n".join(out)


def to_html(title: str, meta: str, sections: list[Section]) -> str:
    e = html.escape
    out = [f'<article class="debrief"><header class="top"><h1>{e(title)}</h1>']
    out.append(f'<p class="meta">{e(meta)}</p></header>')
    for s in sections:
        out.append(f'<section class="panel" id="{e(s.id)}"><h2>{e(s.title)}</h2>')
        out += [f'<p class="muted">{e(s.intro)}</p>'] if s.intro else []
        for b in s.blocks:
            if b[0] == "table":
                head = "".join(f"<th>{e(str(h))}</th>" for h in b[1])
                cells = ("".join(f"<td>{e(str(c))}</td>" for c in row) for row in b[2])
                rows = "".join(f"<tr>{c}</tr>" for c in cells)
                out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
            elif b[0] == "chart":  # markup drawn by charts.py, its text escaped there
                out.append(f'<figure class="chart" id="figure-{e(b[1])}">{b[2]}</figure>')
            elif b[0] == "ul":
                out.append("<ul>" + "".join(f"<li>{e(i)}</li>" for i in b[1]) + "</ul>")
            elif b[0] == "quote":
                out.append(f'<p class="seqref">{e(b[2])}</p>')
                out.append(f'<blockquote data-seq="{int(b[1])}">{e(b[3])}</blockquote>')
            else:
                out.append(f"<{b[0]}>{e(str(b[1]))}</{b[0]}>")
        out.append("</section>")
    return static_page(title, "\n".join(out) + "</article>\n")
