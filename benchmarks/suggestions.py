"""How well the check suggester reads real checklists, against hand-written labels.

    .venv/bin/python benchmarks/suggestions.py [-v] [LABEL-FILE-STEM ...]

(-v lists every miss and every suggestion of a kind that does not fit.)

tests/data/suggest_labels/*.json holds, per checklist, the items a person would automate and
which check kinds fit each one (keyed by the item's text as parsed; `by_line`, keyed by the
item's line, for a text that occurs more than once). For each file:

  * recall    = labelled items that got at least one suggestion of a fitting kind / labelled items
  * precision = suggestions of a fitting kind on a labelled item / all suggestions on the file
                (a suggestion on an unlabelled item is a wrong one)

Files labelled before the suggester was ever run on them ("blind": true) are reported apart,
with the figures of that first run ("first_run" in the label file) under today's.
Pure: the project's parser and suggester, no database, no Django settings needed.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from checklists.markdown import parse  # noqa: E402
from checklists.markdown.repair import decode  # noqa: E402
from checklists.verifications.suggest import suggest_checks  # noqa: E402

LABELS = ROOT / "tests" / "data" / "suggest_labels"
SHARED = Path("/work/shared")


@dataclass
class Score:
    name: str
    blind: bool
    labelled: int = 0
    hit: int = 0
    suggestions: int = 0
    fitting: int = 0
    first_run: dict = field(default_factory=dict)
    misses: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.hit / self.labelled if self.labelled else 1.0

    @property
    def precision(self) -> float:
        return self.fitting / self.suggestions if self.suggestions else 1.0


def label_files() -> list[Path]:
    return sorted(LABELS.glob("*.json"))


def score(label_path: Path, shared: Path = SHARED) -> Score:
    spec = json.loads(label_path.read_text(encoding="utf-8"))
    labels: dict[str, list[str]] = spec["labels"]
    by_line: dict[str, list[str]] = spec.get("by_line", {})
    source = shared / spec["file"]
    doc = parse(decode(source.read_bytes()))
    result = Score(label_path.stem, bool(spec.get("blind")), first_run=spec.get("first_run", {}))
    seen_labels = set()
    for item, _depth in doc.iter_items():
        fits = by_line.get(str(item.line), labels.get(item.text))
        found = suggest_checks(item.text, item.body)
        result.suggestions += len(found)
        if fits is not None:
            seen_labels.add(str(item.line) if str(item.line) in by_line else item.text)
            result.labelled += 1
            good = [s for s in found if s.kind in fits]
            result.fitting += len(good)
            if good:
                result.hit += 1
            else:
                result.misses.append(f"{item.line}: {item.text} (want {'/'.join(fits)})")
            result.wrong.extend(f"{item.line}: {item.text} -> {s.kind} {s.params}" for s in found if s.kind not in fits)
        else:
            result.wrong.extend(f"{item.line}: {item.text} -> {s.kind} {s.params}" for s in found)
    missing = (set(labels) | set(by_line)) - seen_labels
    if missing:
        raise SystemExit(f"{label_path.name}: labels for items not in {spec['file']}: {sorted(missing)}")
    return result


def main(argv: list[str]) -> int:
    verbose = "-v" in argv
    only = [arg for arg in argv if not arg.startswith("-")]
    scores = [score(path) for path in label_files() if not only or path.stem in only]
    for title, group in (("labelled after seeing the suggester", [s for s in scores if not s.blind]),
                         ("BLIND (labelled before the suggester ran on them)", [s for s in scores if s.blind])):
        print(f"\n{title}")
        print(f"  {'file':40} {'items':>5} {'recall':>7} {'sugg':>5} {'precision':>9}")
        for s in group:
            print(f"  {s.name:40} {s.labelled:5d} {s.recall:7.2f} {s.suggestions:5d} {s.precision:9.2f}")
            if s.first_run:
                print(f"  {'  first run (truly blind)':40} {'':5} {s.first_run['recall']:7.2f} {'':5} "
                      f"{s.first_run['precision']:9.2f}")
            if verbose:
                for line in s.misses:
                    print(f"      miss  {line}")
                for line in s.wrong:
                    print(f"      wrong {line}")
        labelled = sum(s.labelled for s in group)
        hit = sum(s.hit for s in group)
        suggestions = sum(s.suggestions for s in group)
        fitting = sum(s.fitting for s in group)
        print(f"  {'(all)':40} {labelled:5d} {hit / max(labelled, 1):7.2f} {suggestions:5d} "
              f"{fitting / max(suggestions, 1):9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
