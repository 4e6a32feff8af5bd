"""The one rule for what a test needs from outside the package: skip locally, fail under CI."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from tests.conftest import need, require_module, require_program

LOCAL_AND_CI = [
    pytest.param("", pytest.skip.Exception, id="local-skips"),
    pytest.param("true", pytest.fail.Exception, id="ci-fails"),
]


def test_what_is_there_is_used_in_both_modes(monkeypatch: pytest.MonkeyPatch) -> None:
    for ci in ("", "true"):
        monkeypatch.setenv("CI", ci)
        need(True, "never shown")
        assert require_module("json", "never shown") is json
        assert Path(require_program("sh", "dash")).name == "sh"


@pytest.mark.parametrize(("ci", "outcome"), LOCAL_AND_CI)
def test_a_missing_thing_skips_locally_and_fails_under_ci(
    monkeypatch: pytest.MonkeyPatch, ci: str, outcome: type[BaseException]
) -> None:
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="the frobnicator is absent"):
        need(False, "the frobnicator is absent")


@pytest.mark.parametrize(("ci", "outcome"), LOCAL_AND_CI)
def test_a_module_that_cannot_be_imported(
    monkeypatch: pytest.MonkeyPatch, ci: str, outcome: type[BaseException]
) -> None:
    monkeypatch.setenv("CI", ci)
    monkeypatch.setitem(sys.modules, "qala_absent_peer", None)  # import fails
    with pytest.raises(outcome, match=r"the `peers` extra .* \(import qala_absent_peer"):
        require_module("qala_absent_peer", "the `peers` extra (absent peer) is not installed")


@pytest.mark.parametrize(("ci", "outcome"), LOCAL_AND_CI)
def test_a_program_missing_from_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ci: str, outcome: type[BaseException]
) -> None:
    monkeypatch.setenv("CI", ci)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(
        outcome, match=r"pdftoppm is not on PATH \(apt-get install -y poppler-utils\)"
    ):
        require_program("pdftoppm", "poppler-utils")


def test_under_ci_the_message_says_why_it_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="under CI every test must run"):
        need(False, "Mosquitto is not listening")
