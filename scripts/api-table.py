#!/usr/bin/env python3
"""Write the README's API table from resources/api/firecracker-api.tsv, the
walk through Firecracker's swagger file (one row per method, path and field
with ember's status).

  scripts/api-table.py            print the table
  scripts/api-table.py --write    replace the table in README.md
  scripts/api-table.py --check    exit 1 when README.md's table differs

The table sits between the two marker lines below in README.md.
"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIST = ROOT / "resources/api/firecracker-api.tsv"
README = ROOT / "README.md"
BEGIN = "<!-- api-table: written by scripts/api-table.py from resources/api/firecracker-api.tsv -->"
END = "<!-- api-table end -->"
STATUSES = ("supported", "refused", "not yet")


def read_list(path=LIST):
    """The list's rows as dicts; comment lines and the header skipped."""
    rows = []
    lines = [l for l in path.read_text().splitlines() if l and not l.startswith("#")]
    names = lines[0].split("\t")
    for n, line in enumerate(lines[1:], 2):
        cells = line.split("\t")
        if len(cells) != len(names):
            raise ValueError(f"{path}: row {n} has {len(cells)} cells, not {len(names)}")
        row = dict(zip(names, cells))
        if row["status"] not in STATUSES:
            raise ValueError(f"{path}: row {n}: unknown status {row['status']!r}")
        rows.append(row)
    return rows


def top(field):
    """The top-level key a field sits under: rate_limiter.ops.size -> rate_limiter."""
    for sep in ".[=":
        field = field.split(sep)[0]
    return field


def describe(rows, endpoint):
    """The fields cell of one endpoint: its fields, then what differs from
    the endpoint's own status, grouped by status and reason."""
    own = endpoint["status"]
    plain = []
    odd = {}  # (status, note, key) -> [values]
    for r in rows:
        f = r["field"]
        if r["status"] == own:
            if f == top(f):
                plain.append(f"`{f}`" + (f" ({r['note']})" if r["note"] and own == "supported" else ""))
            continue
        key, _, value = f.partition("=")
        odd.setdefault((r["status"], r["note"], key), []).append(value)
    parts = [", ".join(plain)] if plain else []
    for status in STATUSES:
        items = [f"`{key}`" + (" " + ", ".join(v for v in values if v) if any(values) else "")
                 + (f" ({note})" if note else "")
                 for (s, note, key), values in odd.items() if s == status]
        if items:
            parts.append(f"{status}: " + "; ".join(items))
    return "; ".join(parts)


def table(rows):
    out = ["| endpoint | ember | when, notes | fields |", "|---|---|---|---|"]
    order = []
    groups = {}
    for r in rows:
        k = (r["method"], r["path"])
        if k not in groups:
            order.append(k)
            groups[k] = []
        groups[k].append(r)
    for k in order:
        head = [r for r in groups[k] if r["field"] == "-"]
        if len(head) != 1:
            raise ValueError(f"{k[0]} {k[1]}: needs exactly one row with field -")
        endpoint = head[0]
        fields = [r for r in groups[k] if r["field"] != "-"]
        cell = describe(fields, endpoint).replace("|", "\\|")
        note = endpoint["note"].replace("|", "\\|")
        out.append(f"| `{k[0]} {k[1]}` | {endpoint['status']} | {note} | {cell} |")
    return "\n".join(out) + "\n"


def readme_table(text):
    """The table now in README.md, or None without the markers."""
    if BEGIN not in text or END not in text:
        return None
    return text.split(BEGIN + "\n", 1)[1].split(END, 1)[0]


def main(argv):
    want = table(read_list())
    if len(argv) < 2:
        sys.stdout.write(want)
        return 0
    text = README.read_text()
    have = readme_table(text)
    if argv[1] == "--check":
        if have != want:
            print("README.md's API table is not what scripts/api-table.py writes: "
                  "run scripts/api-table.py --write", file=sys.stderr)
            return 1
        return 0
    if argv[1] == "--write":
        if have is None:
            print(f"README.md has no {BEGIN} ... {END} markers", file=sys.stderr)
            return 1
        README.write_text(text.replace(BEGIN + "\n" + have + END, BEGIN + "\n" + want + END))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
