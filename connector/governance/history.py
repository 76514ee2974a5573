"""Earlier committed versions of a schema file, read from git without any network.

Schema changes are reviewed as commits long before a registry sees them, so the
history of each ``.avsc`` file is the registry's version list as the repository
knows it. Renames are followed. A fresh or shallow clone simply has a shorter
history, and a file that was never committed has none.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

_RENAME_OR_COPY = ("R", "C")


class GitError(Exception):
    """git is missing, the folder is not in a work tree, or the revision is unknown."""


@dataclass(frozen=True)
class CommittedVersion:
    """A schema file's text as one commit left it."""

    commit: str
    text: str

    @property
    def label(self) -> str:
        return f"commit {self.commit[:12]}"


class GitHistory:
    """Reads the history reachable from ``rev`` of files inside one git work tree."""

    def __init__(self, folder: Path, rev: str = "HEAD") -> None:
        self._folder = folder
        self.rev = rev
        inside = self._git("rev-parse", "--is-inside-work-tree", check=False)
        if inside.returncode != 0 or inside.stdout.strip() != b"true":
            raise GitError(f"{folder} is not inside a git work tree")
        self._top = Path(self._text("rev-parse", "--show-toplevel").strip())
        self._folder = self._top  # pathspecs and "rev:path" below are relative to the top
        resolved = self._git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False)
        if resolved.returncode == 0:
            self.commit: str | None = resolved.stdout.decode().strip()
        elif rev == "HEAD" and not self._has_commits():
            self.commit = None  # a repository without commits: no history yet
        else:
            raise GitError(f"unknown git revision {rev!r}")

    def versions(self, path: Path) -> list[CommittedVersion]:
        """Every committed text of ``path`` reachable from the revision, oldest first.

        Commits that deleted the file are skipped; merges that only combine histories
        add no version of their own.
        """
        if self.commit is None:
            return []
        try:
            relative = path.resolve().relative_to(self._top.resolve()).as_posix()
        except ValueError:
            raise GitError(f"{path} is outside the git work tree {self._top}") from None
        out = self._git(
            "log", "--follow", "--format=%x00C%x00%H", "--name-status", "-z",
            self.commit, "--", relative,
        ).stdout.decode("utf-8", errors="surrogateescape")  # fmt: skip
        changes: list[tuple[str, str]] = []
        tokens = [t.strip("\n") for t in out.split("\0")]
        tokens = [t for t in tokens if t]
        commit = ""
        index = 0
        while index < len(tokens):
            token = tokens[index]
            if token == "C":
                commit = tokens[index + 1]
                index += 2
                continue
            status = token
            paths = 2 if status.startswith(_RENAME_OR_COPY) else 1
            names = tokens[index + 1 : index + 1 + paths]
            index += 1 + paths
            if status != "D" and names:
                changes.append((commit, names[-1]))
        versions = []
        for commit, name in reversed(changes):
            blob = self._git("show", f"{commit}:{name}").stdout
            versions.append(CommittedVersion(commit, blob.decode("utf-8", errors="replace")))
        return versions

    def _has_commits(self) -> bool:
        return self._git("rev-list", "-n", "1", "--all", check=False).stdout.strip() != b""

    def _text(self, *args: str) -> str:
        return self._git(*args).stdout.decode()

    def _git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        command = ["git", "-C", str(self._folder), *args]
        try:
            result = subprocess.run(command, capture_output=True, check=False)
        except OSError as exc:
            raise GitError(f"cannot run git: {exc.strerror}") from None
        if check and result.returncode != 0:
            message = result.stderr.decode(errors="replace").strip() or f"exit {result.returncode}"
            raise GitError(f"git {args[0]} failed: {message}")
        return result
