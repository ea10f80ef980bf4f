"""The repository stands on its own: no file points a reader at the files that came with the
brief outside it (the original contract and design notes); docs/api.md is the reference."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# A relative path up into the brief's shared folder, or the outside files by name (docs/api.md
# is lower case, and in the repository).
OUTSIDE = re.compile(r"\.\./shared\b|\bAPI\.md\b|\bARCHITECTURE\.md\b")


def repository_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [ROOT / name for name in listed.split("\0") if name and (ROOT / name).is_file()]


def test_no_file_in_the_repository_points_outside_it():
    files = repository_files()
    assert any(path.name == "README.md" for path in files)
    pointers = []
    for path in files:
        if path == Path(__file__).resolve():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary: PDFs, images, fonts
        pointers += [
            f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
            for number, line in enumerate(text.splitlines(), 1)
            if OUTSIDE.search(line)
        ]
    assert pointers == [], "\n".join(pointers)
