"""Lines of user code in the own-model examples: code lines before the ``__main__`` block, without
blank lines, comments, docstrings and print calls; and how many of them call interpretgan.

    python experiments/2026-12-04-own-model/count_lines.py
"""

from __future__ import annotations

import ast
import io
import json
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SKIP = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER}


def count(path: Path) -> dict[str, int]:
    src = path.read_text()
    tree = ast.parse(src)
    excluded: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and ast.get_docstring(node):
            excluded.update(range(node.body[0].lineno, node.body[0].end_lineno + 1))
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) and getattr(node.value.func, "id", "") == "print":
            excluded.update(range(node.lineno, node.end_lineno + 1))
        if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
            excluded.update(range(node.lineno, node.end_lineno + 1))
    code = {n for tok in tokenize.generate_tokens(io.StringIO(src).readline) if tok.type not in SKIP
            for n in range(tok.start[0], tok.end[0] + 1)} - excluded
    imported = {a.asname or a.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                and (node.module or "").startswith("interpretgan") for a in node.names}
    calls = {node.lineno for node in ast.walk(tree) if isinstance(node, ast.Call)
             and getattr(node.func, "id", None) in imported and node.lineno in code}
    return {"code_lines": len(code), "lines_calling_interpretgan": len(calls), "interpretgan_imports": len(imported)}


if __name__ == "__main__":
    print(json.dumps({p: count(ROOT / "examples" / p) for p in ("own_model.py", "own_resnet.py")}))
