"""Build ``index.html`` and ``report.md`` from every ``*/results.json`` under a folder."""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Any

from ..errors import ReprlabError


def collect(folder: Path) -> list[dict[str, Any]]:
    if not folder.is_dir():
        raise ReprlabError(f"{folder} does not exist; run 'reprlab study all --preset quick --out {folder}' first")
    out = []
    for p in sorted(folder.glob("*/results.json")):
        try:
            out.append(json.loads(p.read_text()))
        except json.JSONDecodeError as e:
            raise ReprlabError(f"{p} is not valid JSON ({e}); re-run that study") from None
    from ..studies.base import study_names

    order = {n: i for i, n in enumerate(study_names())}
    return sorted(out, key=lambda s: order.get(s.get("study"), 999))


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
        for n in s.get("notes", []):
            lines.append(f"- {n}")
        lines.append("")
    return "\n".join(lines)


def build_report(folder: Path) -> tuple[Path, Path]:
    from jinja2 import Environment, PackageLoader, select_autoescape

    from ..train.checkpoint import atomic_write_text

    studies = collect(Path(folder))
    env = Environment(loader=PackageLoader("reprlab", "report/templates"), autoescape=select_autoescape(["html", "j2"]))
    html = env.get_template("index.html.j2").render(
        studies=studies, generated=_dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    )
    hp, mp = Path(folder) / "index.html", Path(folder) / "report.md"
    atomic_write_text(hp, html)
    atomic_write_text(mp, markdown(studies))
    return hp, mp
