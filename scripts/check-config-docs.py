#!/usr/bin/env python3
"""Fails when an environment variable the code reads is missing from docs/configuration.md.

The variables are found by pattern over whole directories, not by file name, so code may move
between files and crates without this check noticing anything but the names themselves:

- Rust (every *.rs outside target/): a string literal that looks like a variable name in an
  env-reading position: the first argument of `get`, `lookup`, `var`, `var_os`, `secret`,
  `parse`, `number`, `require`... (`env::var("NAME")`, `env.get("NAME")`, `self.var("NAME")`),
  a settings error's `variable: "NAME"` or `SettingsError::new("NAME", ..)`, or an item of a
  constant list of variables (`VARIABLES`, `ALL_VARS`, `VARS`). A constant
  `const X: &str = "NAME"` counts when `X` itself is used in one of those positions, appears in
  such a list, or is named `*_VAR`; other constants (a stream name, a binding) do not.
- JavaScript/TypeScript (scripts/, edge-worker/, frontend/; not node_modules): `process.env.NAME`.
- wrangler.toml: the keys of `[vars]` and `[env.<name>.vars]`.
- Shell (every *.sh): `${NAME:-...}`, `${NAME-...}`, `${NAME:=...}` reads, unless the script
  assigns NAME itself from something else (then it is the script's own variable).

A name must be ALL_CAPS with an underscore, or one of a few known single words. A variable is
documented when it appears in backticks on a table row (`| ... `NAME` ... |`) of
docs/configuration.md. Exit 1 lists what is missing, with where it is read; `--list` prints
every variable found and where, and checks nothing.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "configuration.md"

# Single-word variables (no underscore) that are real settings when read in an env context.
SINGLE_WORDS = {"HOST", "PORT", "REGION", "GO", "FORCE"}
# Set by the system or the shell, not by this project.
SYSTEM = {"PATH", "HOME", "PWD", "USER", "TMPDIR", "SHELL", "BASH_SOURCE", "EUID", "UID"}

NAME = r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*"
NAME_RE = re.compile(rf"^{NAME}$")

# Functions whose first argument is a variable name when they read settings.
READERS = (
    r"get|lookup|var|var_os|secret|parse|parse_opt|parse_or|number|require|required|optional"
    r"|flag|env_var|read_var|setting|quota|bounded_u64|get_var"
)
RUST_LITERAL_READ = re.compile(rf'(?<![\w])(?:{READERS})\s*\(\s*&?"({NAME})"')
RUST_VARIABLE_FIELD = re.compile(rf'\bvariable\s*:\s*"({NAME})"')
RUST_ERROR_NEW = re.compile(rf'\b(?:SettingsError|ConfigError)::new\s*\(\s*"({NAME})"')
RUST_CONST = re.compile(rf'\bconst\s+([A-Z][A-Z0-9_]*)\s*:\s*&(?:\'static\s+)?str\s*=\s*"({NAME})"\s*;')
# A constant list of variables: `const VARIABLES: &[&str] = &[...]`, `const ALL_VARS: [&str; N] = [...]`.
RUST_LIST = re.compile(
    r"\bconst\s+([A-Z0-9_]*VAR[A-Z0-9_]*)\s*:\s*&?\[\s*&(?:'static\s+)?str\s*(?:;\s*[^\]]+)?\]\s*=\s*&?\[(.*?)\]\s*;",
    re.S,
)
JS_READ = re.compile(rf"process\.env(?:\.({NAME})\b|\[\s*['\"]({NAME})['\"]\s*\])")
SH_READ = re.compile(rf"\$\{{({NAME})(?::-|-|:=|=)")
DOC_ROW_NAME = re.compile(rf"`({NAME})`")


def is_variable_name(name: str) -> bool:
    if name in SYSTEM or not NAME_RE.match(name):
        return False
    return "_" in name or name in SINGLE_WORDS


def source_files() -> list[Path]:
    """Tracked and untracked-but-not-ignored files (git), or a walk without build output."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=ROOT,
            check=True,
            capture_output=True,
        ).stdout.decode()
        files = [ROOT / f for f in out.split("\0") if f]
    except (OSError, subprocess.CalledProcessError):
        skip = {"target", "node_modules", ".git", ".cache", ".run", "dist", "build"}
        files = []
        for dirpath, dirnames, filenames in os.walk(ROOT):
            dirnames[:] = [d for d in dirnames if d not in skip]
            files.extend(Path(dirpath) / f for f in filenames)
    return [
        f
        for f in files
        if f.is_file() and not ({"node_modules", "target"} & set(f.relative_to(ROOT).parts))
    ]


def strip_rust_comments(text: str) -> str:
    """Drops `//` comments (doc comments name variables in prose, which is not a read)."""
    return re.sub(r"//[^\n]*", "", text)


def rust_reads(files: list[Path]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    consts: list[tuple[str, str, str]] = []  # (const ident, value, file)
    texts: dict[str, str] = {}
    for f in files:
        rel = str(f.relative_to(ROOT))
        text = strip_rust_comments(f.read_text(encoding="utf-8", errors="replace"))
        texts[rel] = text
        for rx in (RUST_LITERAL_READ, RUST_VARIABLE_FIELD, RUST_ERROR_NEW):
            for m in rx.finditer(text):
                found.setdefault(m.group(1), set()).add(rel)
        for m in RUST_LIST.finditer(text):
            for item in re.finditer(rf'"({NAME})"', m.group(2)):
                found.setdefault(item.group(1), set()).add(rel)
        for m in RUST_CONST.finditer(text):
            consts.append((m.group(1), m.group(2), rel))
    # Where a constant's identifier is used as a variable name (paths like `env::SECRET_VAR` too).
    all_text = "\n".join(texts.values())
    list_bodies = " ".join(m.group(2) for m in RUST_LIST.finditer(all_text))
    for ident, value, rel in consts:
        ref = rf"(?:\w+::)*{re.escape(ident)}\b"
        used = (
            ident.endswith("_VAR")
            or re.search(rf"(?<![\w])(?:{READERS})\s*\(\s*&?{ref}", all_text)
            or re.search(rf"\bvariable\s*:\s*{ref}", all_text)
            or re.search(rf"\b(?:SettingsError|ConfigError)::new\s*\(\s*{ref}", all_text)
            or re.search(rf"(?<![\w]){ref}", list_bodies)
        )
        if used:
            found.setdefault(value, set()).add(rel)
    return found


def js_reads(files: list[Path]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for f in files:
        rel = str(f.relative_to(ROOT))
        for m in JS_READ.finditer(f.read_text(encoding="utf-8", errors="replace")):
            found.setdefault(m.group(1) or m.group(2), set()).add(rel)
    return found


def wrangler_vars(path: Path) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    if not path.is_file():
        return found
    in_vars = False
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped.startswith("["):
            header = stripped.strip("[]").strip()
            in_vars = header == "vars" or re.fullmatch(r"env\.[\w-]+\.vars", header) is not None
            continue
        if in_vars:
            m = re.match(rf"^({NAME})\s*=", stripped)
            if m:
                found.setdefault(m.group(1), set()).add(path.name)
    return found


def shell_reads(files: list[Path]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for f in files:
        rel = str(f.relative_to(ROOT))
        text = f.read_text(encoding="utf-8", errors="replace")
        code = "\n".join(re.sub(r"(^|\s)#.*$", "", line) for line in text.splitlines())
        for name in {m.group(1) for m in SH_READ.finditer(code)}:
            # The script's own variable: assigned from something other than its own default.
            own = re.compile(
                rf"^\s*(?:export\s+|local\s+|readonly\s+|declare\s+\S+\s+)?{name}=(.*)$", re.M
            )
            if any(f"${{{name}" not in m.group(1) for m in own.finditer(code)):
                continue
            found.setdefault(name, set()).add(rel)
    return found


def documented(doc: Path) -> set[str]:
    names: set[str] = set()
    for line in doc.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("|"):
            names.update(DOC_ROW_NAME.findall(line))
    return names


def main() -> int:
    files = source_files()
    by_ext = lambda *exts: [f for f in files if f.name.endswith(exts)]  # noqa: E731
    reads: dict[str, set[str]] = {}
    for part in (
        rust_reads(by_ext(".rs")),
        js_reads(by_ext(".mjs", ".js", ".ts", ".tsx", ".cjs")),
        wrangler_vars(ROOT / "wrangler.toml"),
        shell_reads(by_ext(".sh")),
    ):
        for name, where in part.items():
            reads.setdefault(name, set()).update(where)
    reads = {n: w for n, w in reads.items() if is_variable_name(n)}
    if "--list" in sys.argv[1:]:
        for name in sorted(reads):
            print(f"{name}\t{', '.join(sorted(reads[name]))}")
        return 0
    if not DOC.is_file():
        print(f"config-docs: {DOC.relative_to(ROOT)} is missing", file=sys.stderr)
        return 1
    missing = sorted(set(reads) - documented(DOC))
    if missing:
        print(
            f"config-docs: {len(missing)} variable(s) the code reads are not in "
            f"{DOC.relative_to(ROOT)} (add a table row with the name in backticks):",
            file=sys.stderr,
        )
        for name in missing:
            print(f"  {name}  (read in {', '.join(sorted(reads[name]))})", file=sys.stderr)
        return 1
    print(f"config-docs: all {len(reads)} variables the code reads are documented")
    return 0


if __name__ == "__main__":
    sys.exit(main())
