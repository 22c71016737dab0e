"""Files as they arrive from editors, wikis and Windows tools: they import as clean text."""

import codecs
import os
from pathlib import Path

import pytest

from checklists.markdown import ParseError, decode, parse_bytes, render

SHARED = Path(os.environ.get("DEPLOYCHECK_SHARED_DIR") or Path(__file__).resolve().parents[2] / "shared")
MOJIBAKE = ["Ã", "â€", "ðŸ", "\uf8ff", "Â", "â”", "âœ", "Å¸"]


def every_text(doc):
    """Everything a user can read from an imported checklist."""
    yield doc.name or ""
    yield doc.description
    for item, _ in doc.iter_items():
        yield item.text
        yield item.body
    for section in doc.iter_sections():
        yield section.title
        yield section.body
        yield section.footer
        yield from section.roles


def test_windows_line_ends_import_like_unix_ones():
    doc = parse_bytes(b"# Launch\r\n\r\n- [ ] one\r\n  - [ ] two\r\n- [ ] three\r\r- [ ] old mac\r")

    assert [(item.text, depth) for item, depth in doc.iter_items()] == [
        ("one", 0),
        ("two", 1),
        ("three", 0),
        ("old mac", 0),
    ]
    assert "\r" not in render(doc)


def test_utf8_bom_is_dropped():
    doc = parse_bytes(codecs.BOM_UTF8 + "# Lançamento\n\n- [ ] Pronto ✅\n".encode())

    assert doc.name == "Lançamento"
    assert doc.items[0].text == "Pronto ✅"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be"])
def test_utf16_files_from_windows_tools(encoding):
    data = "# Déploiement\r\n\r\n- [x] Sauvegarde faite\r\n".encode(encoding)
    if encoding == "utf-16-be":
        data = codecs.BOM_UTF16_BE + data

    doc = parse_bytes(data)

    assert doc.name == "Déploiement"
    assert (doc.items[0].marker, doc.items[0].text) == ("x", "Sauvegarde faite")


def test_windows_1252_quotes_are_decoded():
    doc = parse_bytes(b"# Release\r\n\r\n- [ ] Say \x93quoted\x94 \x96 it\x92s fine\r\n")

    assert doc.items[0].text == "Say “quoted” – it’s fine"


def test_one_windows_1252_line_in_a_utf8_file():
    data = "- [ ] Größe prüfen ✅\n".encode() + b"- [ ] Caf\xe9 \x93open\x94\n"

    doc = parse_bytes(data)

    assert [item.text for item in doc.items] == ["Größe prüfen ✅", "Café “open”"]


def test_seed_rocket_emoji_is_repaired():
    doc = parse_bytes((SHARED / "seeds" / "dreamcatcher-production.md").read_bytes())

    everything = "\n".join(every_text(doc))

    assert "keep your users happy! 🚀" in everything
    assert not [mark for mark in MOJIBAKE if mark in everything]


def test_mojibake_corpus_imports_clean():
    doc = parse_bytes((SHARED / "corpus" / "medical-image-deploy-mojibake.md").read_bytes())

    everything = "\n".join(every_text(doc))

    assert doc.name == "🚀 Medical Image Analysis System - Deployment Checklist"
    assert [s.title for s in doc.sections][:3] == [
        "✅ Pre-Deployment Checklist",
        "🐳 Docker Deployment (Recommended)",
        "🔧 Manual Deployment",
    ]
    assert "├── 🧠 models/" in everything
    assert not [mark for mark in MOJIBAKE if mark in everything]


def test_mac_roman_mojibake_is_repaired():
    doc = parse_bytes("- [ ] \uf8ffüöÄ Launch\n- [ ] ‚úÖ Tests green\n- [ ] ‚öôÔ∏è Config\n".encode())

    assert [item.text for item in doc.items] == ["🚀 Launch", "✅ Tests green", "⚙️ Config"]


def test_correct_text_is_left_alone():
    text = (
        "# “Smart” quotes & entities\n\n"
        "- [ ] Escape `&lt;script&gt;` as &lt;script&gt; — don’t “fix” it\n"
        "- [ ] Read “école” and Ñandú, 5 µs ≥ 3 µs, ½ done, naïve café\n"
        "- [ ] Keep ‚single low‘ and «guillemets»\n"
    )

    doc = parse_bytes(text.encode())

    assert render(doc) == text.replace("\n- [ ] Read", "\n\n- [ ] Read").replace("\n- [ ] Keep", "\n\n- [ ] Keep")
    assert decode(text.encode()) == text


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10",
        b"PK\x03\x04\x14\x00\x00\x00\x08\x00",
        b"- [ ] looks like text\x00 but is not\n",
        bytes(range(1, 9)) * 20,
    ],
)
def test_binary_files_are_not_text(data):
    with pytest.raises(ParseError) as caught:
        parse_bytes(data)

    assert str(caught.value) == "not a text file"


@pytest.mark.parametrize("data", [b"", b"\r\n\r\n", codecs.BOM_UTF8, codecs.BOM_UTF8 + b"  \n\t\n"])
def test_empty_uploads_are_refused(data):
    with pytest.raises(ParseError, match="the file is empty"):
        parse_bytes(data)
