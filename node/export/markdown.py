"""Render a collected export (:mod:`node.export.collect`) as one Markdown document.

Pure: JSON-ready object in, text out. One file for all circles (a heading per circle),
so it prints, diffs and mails as one thing. Table cells are escaped (``|`` and line
breaks); free text from records is quoted, never interpreted as Markdown structure.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


def _esc(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_esc(c) for c in row) + " |" for row in rows]
    return lines + [""]


def _quote(text: str) -> list[str]:
    return ["> " + _esc(line) for line in (text.splitlines() or [""])] + [""]


def _decisions(c: dict[str, Any]) -> list[str]:
    lines = ["### Decisions", ""]
    if not c["decisions"]:
        return lines + ["No decisions.", ""]
    for d in c["decisions"]:
        holds = "holds" if d["holds"] else f"DOES NOT HOLD: {d['problem']}"
        lines += [
            f"#### {_esc(d['title'])}: version {d['version_number']} "
            f"(`{d['version'][:16]}`), decided {d['decided']}",
            "",
            f"Decision `{d['decision']}` recorded by {_esc(d['recorded_by'])}; {holds}; "
            f"review {d['review_date'] or '-'}.",
            "",
            *_quote(d["text"]),
        ]
        rows = [
            (p["name"], p["position"], p["version_number"], p["reason"], p["op"][:16])
            for p in d["positions"]
        ]
        lines += _table(("member", "position", "version", "reason", "op"), rows)
    return lines


def _proposals(c: dict[str, Any]) -> list[str]:
    lines = ["### Proposals and positions", ""]
    if not c["proposals"]:
        return lines + ["No proposals.", ""]
    for p in c["proposals"]:
        lines += [f"#### {_esc(p['title'])} (`{p['proposal']}`): {p['state']}", ""]
        for v in p["versions"]:
            lines.append(f"- version {v['number']} (`{v['hash'][:16]}`): {_esc(v['text'])}")
        lines.append("")
        rows = [
            (
                s["name"],
                s["position"],
                s["version_number"],
                s["reason"],
                "yes" if s["counts"] else "",
            )
            for s in p["positions"]
        ]
        if rows:
            lines += _table(("member", "position", "on version", "reason", "counts"), rows)
    return lines


def _circle(c: dict[str, Any]) -> list[str]:
    lines = [f"## Circle {_esc(c['name'])} (`{c['circle']}`)", ""]
    if c["purpose"]:
        lines += [f"Purpose: {_esc(c['purpose'])}", ""]
    lines += ["### Members", ""]
    lines += _table(
        ("name", "level", "member"), ((m["name"], m["level"], m["member"]) for m in c["members"])
    )
    lines += ["### Logbook", ""]
    lines += [
        f"- {e['date']} {e['kind']}: {_esc(e['title'])} (`{e['op'][:16]}`)"
        + (f" {e['outcome']}" if e.get("outcome") else "")
        for e in c["logbook"]
    ] or ["The logbook is empty."]
    lines += ["", "### Agreements", ""]
    rows = [
        (a["title"], a["state"], a["decided"], a["review_date"], a["version"][:16], a["text"])
        for a in c["agreements"]
    ]
    lines += _table(("title", "state", "decided", "review", "version", "text"), rows)
    lines += _decisions(c) + _proposals(c)
    lines += ["### Roles and elections", ""]
    roles = [(r["role"], r["keeper_name"] or "-", r["term_end"] or "-") for r in c["roles"]]
    lines += _table(("role", "keeper", "term ends"), roles)
    elections = [
        (e["role"], e["phase"], (e["result"] or {}).get("keeper_name", "-"), e["term_end"] or "-")
        for e in c["elections"]
    ]
    lines += _table(("election for", "phase", "keeper", "term ends"), elections)
    return lines


def _funding(data: dict[str, Any]) -> list[str]:
    lines = ["## Pitches and pledges", ""]
    for pitch in data["pitches"]:
        lines += [f"### {_esc(pitch['title'])} (`{pitch['pitch']}`)", ""]
        lines += [f"Costs {pitch['costs']} {pitch['currency']} (minor units); funded: "
                  f"{'yes' if pitch['funded'] else 'no'}.", ""]  # fmt: skip
        rows = [
            (p["name"], p["amount"], p["currency"], p["state"], p["conditions"])
            for p in pitch["pledges"]
        ]
        lines += _table(("pledger", "amount", "currency", "state", "conditions"), rows)
    lines += ["## Projects and measures", ""]
    for project in data["projects"]:
        lines += [f"### {_esc(project['title'])} (`{project['project']}`)", ""]
        for m in project["measures"]:
            latest = "-" if m["latest"] is None else m["latest"]
            lines.append(
                f"- {_esc(m['name'])}: target {m['target']} {_esc(m['unit'])} "
                f"({m['direction']}), latest {latest}, met: {'yes' if m['met'] else 'no'}"
            )
            lines += [
                f"  - {r['on']}: {r['value']} {_esc(r.get('note', ''))}" for r in m["readings"]
            ]
        lines.append("")
    return lines


def markdown(data: dict[str, Any]) -> str:
    """The whole export as Markdown."""
    lines = [f"# circle-node export, {data['exported']}", ""]
    lines += [
        "Every entry below comes from a record signed by its author; ids are op ids "
        "(hex). `circle-node export --format archive` writes the signed ops themselves.",
        "",
    ]
    for c in data["circles"]:
        lines += _circle(c)
    lines += _funding(data)
    return "\n".join(lines).rstrip() + "\n"
