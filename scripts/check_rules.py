"""House rules no linter checks for us (run by .ci/run; exit 1 naming each breach):

- every `type: ignore` names its error code and says why, on the same line;
- a package imports another package's public names only (nothing starting with `_`):
  domains talk through their public functions;
- no two modules under `services/` share a name, so a name says which module it is;
- the API's entry point (`main.py`) never imports the scheduler's jobs (`services.sync`).

Import-linter checks the layering itself (pyproject.toml, `lint-imports`).
"""

import ast
import io
import re
import sys
import tokenize
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [
    "main.py",
    "run_scheduler.py",
    "routers",
    "services",
    "schemas",
    "db",
    "scripts",
    "tests",
]
PROJECT = ("routers", "services", "schemas", "db", "scripts", "tests")
IGNORE = re.compile(r"#\s*type:\s*ignore(?P<code>\[[a-z-, ]+\])?(?P<rest>.*)$")


def python_files() -> list[Path]:
    files: list[Path] = []
    for source in SOURCES:
        path = ROOT / source
        files.extend([path] if path.is_file() else sorted(path.rglob("*.py")))
    return [f for f in files if ".venv" not in f.parts]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_of(module: str) -> str:
    """The domain a module belongs to: `services.users.profile` → `services.users`."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "services" and len(parts) > 2 else parts[0]


def type_ignores(path: Path, source: str) -> list[str]:
    problems = []
    comments = (
        token
        for token in tokenize.generate_tokens(io.StringIO(source).readline)
        if token.type == tokenize.COMMENT
    )
    for token in comments:
        number = token.start[0]
        found = IGNORE.search(token.string)
        if found is None:
            continue
        if not found["code"]:
            problems.append(f"{path}:{number}: type: ignore without an error code")
        elif not found["rest"].strip().startswith("#"):
            problems.append(f"{path}:{number}: type: ignore{found['code']} without a reason")
    return problems


def private_imports(path: Path, tree: ast.Module) -> list[str]:
    importer = module_name(path)
    problems = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom) or not node.module or node.level:
            continue
        if not node.module.startswith(PROJECT):
            continue
        if package_of(node.module) == package_of(importer):
            continue
        for alias in node.names:
            if alias.name.startswith("_"):
                problems.append(
                    f"{path}:{node.lineno}: imports private {alias.name} from {node.module}"
                )
    return problems


def main() -> int:
    problems: list[str] = []
    service_modules: dict[str, list[str]] = defaultdict(list)
    for path in python_files():
        source = path.read_text()
        tree = ast.parse(source, filename=str(path))
        relative = path.relative_to(ROOT)
        problems += type_ignores(relative, source)
        problems += private_imports(path, tree)
        if relative.parts[0] == "services" and path.name != "__init__.py":
            service_modules[path.stem].append(str(relative))
        if relative == Path("main.py"):
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    "services.sync"
                ):
                    problems.append(f"main.py:{node.lineno}: the API imports {node.module}")
    for name, paths in sorted(service_modules.items()):
        if len(paths) > 1:
            problems.append(f"module name {name!r} used more than once: {', '.join(paths)}")
    for problem in problems:
        print(problem)
    print(f"house rules: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
