"""The debrief: right figures, real quotes, questions for every team, and inert run text."""

from __future__ import annotations

import html
import json
import re
import shutil
import struct
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest
import pytest_asyncio
from conftest import events_of, majlis_process

from majlis.errors import ScenarioError
from majlis.model import ModelConfig
from majlis.run import RunOptions, run_session
from majlis.workshop import add_annotation, load_texts, render_debrief, write_debrief

REPO = Path(__file__).resolve().parents[1]
PAYLOAD = '<script>window.__pwned=1</script><img src=x onerror="alert(1)">'
NOTE = "Washington blinks & the room moves <b>now</b>"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def made(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """Scripted runs made in process: six rounds end in a deal, two in a partial deal."""
    root = tmp_path_factory.mktemp("made")
    out = {}
    for rounds in (6, 2):
        opts = RunOptions(
            model=ModelConfig(model="scripted"), home=REPO, runs_root=root, rounds=rounds
        )
        out[rounds] = (await run_session(opts)).run_dir.path
    return out


@pytest.fixture(params=[6, 2], ids=["deal", "no-deal"])
def run(request: pytest.FixtureRequest, made: dict[int, Path], tmp_path: Path) -> Path:
    """A copy of a run whose last message by Tehran carries PAYLOAD and whose first message
    by Washington has a facilitator's tag."""
    path = tmp_path / "run"
    shutil.copytree(made[request.param], path)
    events = events_of(path)
    last = max(e["seq"] for e in events if e["type"] == "message" and e["speaker"] == "tehran")
    events[last]["content"]["text"] = PAYLOAD
    (path / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    first = next(e for e in events if e["type"] == "message" and e["speaker"] == "washington")
    add_annotation(path, first["seq"], "turning_point", NOTE)
    return path


class Doc(HTMLParser):
    """Tags, text by section, table rows and quotes of the debrief page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.section = ""
        self.text: dict[str, str] = {}
        self.rows: dict[str, list[list[str]]] = {}
        self.quotes: list[tuple[int, str]] = []
        self.h3: list[str] = []
        self._cell: list[str] | None = None
        self._row: list[str] = []
        self._quote: int | None = None
        self._tag = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append(tag)
        self._tag = tag
        if tag == "section":
            self.section = a.get("id") or ""
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "blockquote":
            self._quote = int(a["data-seq"] or -1)
            self.quotes.append((self._quote, ""))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        elif tag == "tr":
            self.rows.setdefault(self.section, []).append(self._row)
        elif tag == "blockquote":
            self._quote = None

    def handle_data(self, data: str) -> None:
        self.text[self.section] = self.text.get(self.section, "") + data
        if self._cell is not None:
            self._cell.append(data)
        if self._quote is not None:
            seq, text = self.quotes[-1]
            self.quotes[-1] = (seq, text + data)
        if self._tag == "h3" and self.section == "questions":
            self.h3.append(data)
            self._tag = ""


def parse(page: str) -> Doc:
    d = Doc()
    d.feed(page)
    return d


def test_debrief_holds_the_outcome_the_record_and_questions(run: Path) -> None:
    md_path, html_path = write_debrief(run)
    assert (md_path, html_path) == (run / "debrief.md", run / "debrief.html")
    md, page = md_path.read_text(encoding="utf-8"), html_path.read_text(encoding="utf-8")
    outcome = json.loads((run / "outcome.json").read_text())
    snapshot = json.loads((run / "scenario.json").read_text())
    cards, agenda = snapshot["cards"], snapshot["scenario"]["agenda"]
    events = {e["seq"]: e for e in events_of(run)}
    doc = parse(page)

    # what was agreed: every issue with its option's label (or no agreement)
    labels = {i["id"]: {o["id"]: o["label"] for o in i["options"]} for i in agenda}
    titles = {i["id"]: i["title"] for i in agenda}
    agreed = {r[0]: r[1] for r in doc.rows["agreed"][1:]}
    for issue, option in outcome["package"].items():
        want = labels[issue][option] if option else "no agreement"
        assert agreed[titles[issue]] == want
        assert f"| {want} |" in md
    assert ("passed in round" in doc.text["agreed"]) == (outcome["kind"] == "deal")

    # each party's margin, score, threshold and vote equal outcome.json's
    names = {c["name"]: pid for pid, c in cards.items()}
    head, *rows = doc.rows["results"]
    assert len(rows) == 6 == len(outcome["parties"])
    for row in rows:
        r = dict(zip(head, row, strict=True))
        want = outcome["parties"][names[r["Party"]]]
        assert int(r["Margin"]) == want["margin"]
        assert (int(r["Score"]), int(r["Walk-away point"])) == (want["score"], want["threshold"])
        assert r["Last vote"] == (want["vote"] or "no vote")

    # quotes: real events, their own words, with the seq shown beside them
    assert doc.quotes
    for seq, text in doc.quotes:
        words = events[seq]["content"]["text"].strip()
        assert text == words or (text.endswith("…") and words.startswith(text[:-1]))
        assert f"#{seq} · round {events[seq]['round']}" in page
        assert f"**#{seq} · round {events[seq]['round']}" in md
    payload_seq = next(s for s, e in events.items() if e["content"].get("text") == PAYLOAD)
    assert (payload_seq, PAYLOAD) in doc.quotes

    # the facilitator's tag leads the turning points, and its event is quoted
    tagged = next(
        e for e in events.values() if e["type"] == "message" and e["speaker"] == "washington"
    )
    points = doc.text["turning_points"]
    assert "turning point" in points and NOTE in points and f"#{tagged['seq']}" in points
    assert tagged["seq"] in {s for s, _ in doc.quotes}
    if outcome["kind"] == "deal":
        assert f"passed in round {outcome['deal_round']}" in points
    for inject in (e for e in events.values() if e["type"] == "inject"):
        assert inject["content"]["title"] in points

    # questions for all six teams, each with its own figures and red lines
    assert sorted(doc.h3) == sorted(c["name"] for c in cards.values())
    questions = doc.text["questions"]
    for pid, card in cards.items():
        block = questions.split(card["name"], 1)[1]
        assert card["public_stance"].strip()[:40] in block
        assert str(outcome["parties"][pid]["threshold"]) in block
    assert "$" not in questions

    # nothing from the run is markup: the page has no script at all, and the markdown no HTML
    assert "script" not in doc.tags and "img" not in doc.tags and "b" not in doc.tags
    assert "<script>window" not in page and "&lt;script&gt;" in page
    assert "<script" not in md and "<img" not in md and "&lt;script&gt;" in md
    csp = re.search(r'Content-Security-Policy" content="([^"]+)"', page)
    assert (
        csp and "default-src &#x27;none&#x27;" in csp.group(1) and "script-src" not in csp.group(1)
    )


def test_render_writes_nothing_and_matches_the_files(run: Path) -> None:
    md, page = render_debrief(run)
    assert not (run / "debrief.md").exists()
    write_debrief(run)
    assert (run / "debrief.md").read_text(encoding="utf-8") == md
    assert (run / "debrief.html").read_text(encoding="utf-8") == page


def test_the_texts_file_is_checked(tmp_path: Path) -> None:
    good = (REPO / "evals" / "debrief.yaml").read_text(encoding="utf-8")
    assert len(load_texts().questions) >= 10
    bad = tmp_path / "debrief.yaml"
    bad.write_text(good.replace("$first_offer to you", "$first_ofer to you"), encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"debrief\.yaml.*first_ofer"):
        load_texts(bad)
    bad.write_text(good.replace("when: veto", "when: sometimes"), encoding="utf-8")
    with pytest.raises(ScenarioError, match="when"):
        load_texts(bad)
    bad.write_text(good + "\nextra: 1\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match="extra"):
        load_texts(bad)


def test_an_unescaped_quote_cannot_hide_in_the_markdown() -> None:
    from majlis.workshop.debrief_render import md

    assert md("# not a heading") == "\\# not a heading"
    assert md("- no list\n1. none") == "\\- no list\n1\\. none"
    assert md("[x](javascript:alert(1)) <b>") == "\\[x\\](javascript:alert(1)) &lt;b&gt;"
    assert html.unescape(md("a & b")) == "a & b"


# ---------------------------------------------------------------------------------------
# For slides: the debrief printed to PDF and its charts as PNG, by Debian's Chromium


def png_pixels(data: bytes) -> tuple[int, int, set[bytes]]:
    """Width, height and the distinct pixels of an 8-bit RGB(A) PNG, decoded with the
    standard library: the filters are undone row by row, as the PNG specification says."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks, header = 8, [], b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        header = body if kind == b"IHDR" else header
        chunks += [body] if kind == b"IDAT" else []
        pos += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and colour in (2, 6), "Chromium writes 8-bit RGB or RGBA"
    bpp = 3 if colour == 2 else 4
    raw, stride, prev = zlib.decompress(b"".join(chunks)), width * bpp, bytearray(width * bpp)
    pixels: set[bytes] = set()
    for row in range(height):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + pred) & 255
        pixels.update(bytes(line[i : i + bpp]) for i in range(0, stride, bpp * 7))
        prev = line
    return width, height, pixels


def test_png_pixels_reads_a_blank_image_as_one_colour() -> None:
    """The check below can fail: a one-colour PNG decodes to one pixel, whichever filter
    each row was written with (None, Up, Sub, Average, Paeth)."""
    width, colour = 9, b"\x10\x20\x30"
    zeros = b"\0" * 3 * width
    first = bytes((c - c // 2) for c in colour)  # Average: the pixel above, halved
    raw = b"\0" + colour * width + b"\2" + zeros + b"\1" + colour + zeros[3:]
    raw += b"\3" + first + zeros[3:] + b"\4" + zeros
    ihdr = struct.pack(">IIBBBBB", width, 5, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw))
    assert png_pixels(png + chunk(b"IEND", b"")) == (width, 5, {colour})
    bad = raw[:22] + b"\x99" + raw[23:]  # one byte of a pixel sampled (the 7th) off
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bad))
    assert len(png_pixels(png + chunk(b"IEND", b""))[2]) > 1


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def test_debrief_prints_to_pdf_and_its_charts_to_png(made: dict[int, Path], tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(made[6], run)
    done = majlis_process("debrief", str(run), "--pdf", "--png")
    assert done.returncode == 0, done.stderr
    said = "".join(done.stdout.split())  # rich wraps long paths
    for name in ("md", "html", "pdf", "scores.png", "timeline.png"):
        assert f"wrote{run}/debrief{'-' if name.endswith('png') else '.'}{name}" in said

    pdf = (run / "debrief.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-") and b"%%EOF" in pdf[-64:]
    assert len(re.findall(rb"/Type\s*/Page(?!s)", pdf)) >= 2  # a six-round debrief is long

    page = (run / "debrief.html").read_text(encoding="utf-8")
    charts = re.findall(r'<svg [^>]*id="chart-(\w+)"[^>]*width="(\d+)" height="(\d+)"', page)
    assert sorted(c[0] for c in charts) == ["scores", "timeline"]
    for name, width, height in charts:
        data = (run / f"debrief-{name}.png").read_bytes()
        w, h, pixels = png_pixels(data)
        assert (w, h) == (2 * int(width), 2 * int(height)), name  # the chart alone, sharp
        assert len(pixels) >= 8, f"{name}: {len(pixels)} colours: a blank image"
    party_colours = {bytes.fromhex(c["color"][1:]) for c in load_cards(run).values()}
    _, _, pixels = png_pixels((run / "debrief-scores.png").read_bytes())
    assert len({p[:3] for p in pixels} & party_colours) >= 4  # the parties' lines are drawn


def load_cards(run: Path) -> dict[str, dict[str, str]]:
    return json.loads((run / "scenario.json").read_text())["cards"]


def test_debrief_without_chromium_says_so_in_one_line(
    made: dict[int, Path], tmp_path: Path
) -> None:
    run = tmp_path / "run"
    shutil.copytree(made[2], run)
    missing = tmp_path / "no-chromium"
    done = majlis_process("debrief", str(run), "--pdf", env={"MAJLIS_CHROMIUM": str(missing)})
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Chromium" in lines[0] and "apt-get install chromium" in lines[0]
    assert not (run / "debrief.md").exists() and not (run / "debrief.pdf").exists()
    done = majlis_process("debrief", str(run), env={"MAJLIS_CHROMIUM": str(missing)})
    assert done.returncode == 0 and (run / "debrief.md").exists()  # no browser needed for it
