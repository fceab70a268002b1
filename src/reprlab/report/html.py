"""Build ``index.html`` and ``report.md`` from every ``*/results.json`` under a folder."""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Any

from ..errors import ReprlabError


# what the report reads of a results.json (StudyResult.to_json): key -> type, and the keys of list items
_FIELDS = {
    "study": str,
    "title": str,
    "claim": str,
    "preset": str,
    "command": str,
    "verdict": str,
    "seconds": (int, float),
    "findings": list,
    "tables": list,
    "figures": list,
    "notes": list,
}
_ITEMS = {
    "findings": ("claim", "verdict", "evidence"),
    "tables": ("title", "columns", "rows"),
    "figures": ("path", "caption"),
    "choices": ("what", "chosen", "split", "by"),  # optional: results.json files written before it lack it
}


def check_result(obj: Any, path: Path) -> dict[str, Any]:
    """``obj`` (a parsed results.json) if it has what the report needs; else one line naming the file."""
    redo = "re-run that study or remove the file"
    if not isinstance(obj, dict):
        raise ReprlabError(f"{path} holds a JSON {type(obj).__name__}, not a study's results; {redo}")
    for key, tp in _FIELDS.items():
        if key not in obj:
            raise ReprlabError(f"{path} is not a study's results: it has no {key!r}; {redo}")
        if not isinstance(obj[key], tp) or isinstance(obj[key], bool):
            raise ReprlabError(f"{path} is not a study's results: {key!r} has the wrong type; {redo}")
    if not isinstance(obj.setdefault("choices", []), list):
        raise ReprlabError(f"{path} is not a study's results: 'choices' has the wrong type; {redo}")
    for key, needed in _ITEMS.items():
        for item in obj[key]:
            if not isinstance(item, dict) or any(k not in item for k in needed):
                raise ReprlabError(f"{path} is not a study's results: an entry of {key!r} lacks {needed}; {redo}")
    if "order" in obj and (not isinstance(obj["order"], int) or isinstance(obj["order"], bool)):
        raise ReprlabError(f"{path} is not a study's results: 'order' has the wrong type; {redo}")
    for t in obj["tables"]:
        if not isinstance(t["columns"], list) or not all(isinstance(r, list) for r in t["rows"]):
            raise ReprlabError(f"{path} is not a study's results: table {t['title']!r} is malformed; {redo}")
    return obj


def collect(folder: Path) -> list[dict[str, Any]]:
    """Every study's results under ``folder`` (one ``NAME/results.json`` each), in the studies' order (their
    ``order`` field; the report reads results.json files only and imports no study).

    A folder with none, and a results.json that is not a study's results, are refused with one line."""
    if not folder.exists():
        raise ReprlabError(f"{folder} does not exist; run 'reprlab study all --preset quick --out {folder}' first")
    if not folder.is_dir():
        raise ReprlabError(f"{folder} is a file; give the folder the studies wrote (reprlab report --in FOLDER)")
    out = []
    for p in sorted(folder.glob("*/results.json")):
        try:
            obj = json.loads(p.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ReprlabError(f"{p} is not valid JSON ({str(e)[:80]}); re-run that study") from None
        out.append(check_result(obj, p))
    if not out:
        raise ReprlabError(
            f"{folder} holds no study results (no {folder}/NAME/results.json); "
            f"run 'reprlab study all --preset quick --out {folder}' first"
        )
    # each results.json carries its study's place (``order``, from its registration); one without comes last
    return sorted(out, key=lambda s: (s.get("order", 999), s["study"]))


CHOICES_TITLE = "How choices were made (never on the test split)"


def candidates(scores: dict[str, float]) -> str:
    """'a 0.812, b 0.799': each candidate with its score on the choosing split."""
    return ", ".join(f"{k} {v:.4g}" for k, v in scores.items())


def markdown(studies: list[dict[str, Any]]) -> str:
    lines = ["# reprlab report", ""]
    for s in studies:
        lines += [
            f"## {s['title']}",
            "",
            f"**Claim.** {s['claim']}",
            "",
            f"**Verdict: {s['verdict']}** (`{s['command']}`, {s['seconds']:.0f} s)",
            "",
        ]
        for f in s["findings"]:
            lines.append(f"- *{f['verdict']}*: {f['claim']} ({f['evidence']})")
        lines.append("")
        for t in s["tables"]:
            lines += [f"**{t['title']}**", "", "| " + " | ".join(t["columns"]) + " |", "|" + "---|" * len(t["columns"])]
            lines += ["| " + " | ".join(str(v) for v in r) + " |" for r in t["rows"]]
            if t.get("note"):
                lines += ["", t["note"]]
            lines.append("")
        if s["choices"]:
            lines += [f"**{CHOICES_TITLE}**", "", "| choice | chosen | on | by | candidates |", "|---|---|---|---|---|"]
            lines += [
                f"| {c['what']} | {c['chosen']} | {c['split']} | {c['by']} | {candidates(c.get('scores', {}))} |"
                for c in s["choices"]
            ]
            lines.append("")
        for n in s.get("notes", []):
            lines.append(f"- {n}")
        lines.append("")
    return "\n".join(lines)


def build_report(folder: Path) -> tuple[Path, Path]:
    from jinja2 import Environment, PackageLoader, select_autoescape

    from ..io import atomic_write_text

    studies = collect(Path(folder))
    env = Environment(loader=PackageLoader("reprlab", "report/templates"), autoescape=select_autoescape(["html", "j2"]))
    env.filters["candidates"] = candidates
    html = env.get_template("index.html.j2").render(
        studies=studies, choices_title=CHOICES_TITLE, generated=_dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    )
    hp, mp = Path(folder) / "index.html", Path(folder) / "report.md"
    atomic_write_text(hp, html)
    atomic_write_text(mp, markdown(studies))
    return hp, mp
