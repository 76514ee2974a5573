"""Committed versions of a schema file, read from real git repositories."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from connector.governance.history import GitError, GitHistory
from tests.git_repo import GitRepo, git_env


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    return GitRepo(tmp_path / "repo")


def test_versions_are_every_commit_of_the_file_oldest_first(repo: GitRepo) -> None:
    path = repo.write("schemas/a/X.avsc", "v1")
    first = repo.commit("one")
    repo.write("other.txt", "unrelated")
    repo.commit("unrelated")
    repo.write("schemas/a/X.avsc", "v2")
    second = repo.commit("two")
    versions = GitHistory(path.parent).versions(path)
    assert [(v.commit, v.text) for v in versions] == [(first, "v1"), (second, "v2")]
    assert versions[0].label == f"commit {first[:12]}"


def test_history_follows_renames(repo: GitRepo) -> None:
    repo.write("schemas/a/X.avsc", '{"v": 1}\n' * 5)
    repo.commit("one")
    (repo.path / "schemas" / "b").mkdir()
    repo.git("mv", "schemas/a/X.avsc", "schemas/b/Y.avsc")
    repo.commit("move")
    path = repo.write("schemas/b/Y.avsc", '{"v": 1}\n' * 5 + '{"v": 2}\n')
    repo.commit("two")
    texts = [v.text for v in GitHistory(path.parent).versions(path)]
    assert texts == ['{"v": 1}\n' * 5, '{"v": 1}\n' * 5, '{"v": 1}\n' * 5 + '{"v": 2}\n']


def test_a_deleted_and_restored_file_keeps_its_versions(repo: GitRepo) -> None:
    path = repo.write("s/X.avsc", "v1")
    repo.commit("one")
    path.unlink()
    repo.commit("delete")
    repo.write("s/X.avsc", "v2")
    repo.commit("restore")
    assert [v.text for v in GitHistory(path.parent).versions(path)] == ["v1", "v2"]


def test_an_older_revision_sees_only_its_own_past(repo: GitRepo) -> None:
    path = repo.write("s/X.avsc", "v1")
    first = repo.commit("one")
    repo.write("s/X.avsc", "v2")
    repo.commit("two")
    history = GitHistory(path.parent, first)
    assert [v.text for v in history.versions(path)] == ["v1"]
    assert history.rev == first


def test_an_uncommitted_file_has_no_versions(repo: GitRepo) -> None:
    repo.write("README", "x")
    repo.commit("one")
    path = repo.write("s/New.avsc", "v1")
    assert GitHistory(path.parent).versions(path) == []


def test_a_repository_without_commits_has_no_history(repo: GitRepo) -> None:
    path = repo.write("s/X.avsc", "v1")
    history = GitHistory(path.parent)
    assert history.commit is None
    assert history.versions(path) == []


def test_a_shallow_clone_sees_one_version(repo: GitRepo, tmp_path: Path) -> None:
    repo.write("s/X.avsc", "v1")
    repo.commit("one")
    repo.write("s/X.avsc", "v2")
    repo.commit("two")
    clone = tmp_path / "clone"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", repo.path.as_uri(), str(clone)],
        env=git_env(),
        check=True,
    )
    path = clone / "s" / "X.avsc"
    assert [v.text for v in GitHistory(path.parent).versions(path)] == ["v2"]


def test_an_unknown_revision_is_an_error(repo: GitRepo) -> None:
    repo.write("s/X.avsc", "v1")
    repo.commit("one")
    with pytest.raises(GitError, match="unknown git revision 'no-such-branch'"):
        GitHistory(repo.path / "s", "no-such-branch")


def test_a_folder_outside_a_work_tree_is_an_error(tmp_path: Path) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    with pytest.raises(GitError, match="not inside a git work tree"):
        GitHistory(folder)
