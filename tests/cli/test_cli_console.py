"""How ``kartu`` prints, without a stack: rich tables on a terminal, the same answer as plain
aligned text when piped (no colour codes, no ``\\r``), progress on stderr, and shell completion
scripts generated from the parser that complete in bash and in zsh."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import pytest

from starter.cli import build_parser, completion, console
from starter.output import Fields, Table, Text, plain_text

DOC = [
    Fields([("payment", "order_1"), ("status", "PAID"), ("unknown", None)]),
    Table(
        [{"at": "10:00", "to_status": "PAID", "reason": "[red]not markup[/red]"}],
        ["at", "to_status", "reason"],
        title="history:",
    ),
    Text("next: kartu status order_1"),
]


def test_plain_text_is_aligned_and_leaves_out_empty_values() -> None:
    assert plain_text(DOC) == (
        "payment  order_1\n"
        "status   PAID\n"
        "\n"
        "history:\n"
        "AT     TO STATUS  REASON\n"
        "10:00  PAID       [red]not markup[/red]\n"
        "\n"
        "next: kartu status order_1"
    )


def test_piped_output_is_plain(capsys: pytest.CaptureFixture[str]) -> None:
    console.show(False, None, lambda: DOC)
    out = capsys.readouterr().out
    assert out == plain_text(DOC) + "\n"
    console.show(True, {"status": "PAID"}, lambda: DOC)
    assert capsys.readouterr().out == '{\n  "status": "PAID"\n}\n'


def test_a_terminal_gets_rich_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")  # what rich reads as "a terminal"
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("TERM", raising=False)
    stream = io.StringIO()
    assert console.fancy(stream)
    console.print_doc(DOC, stream)
    drawn = stream.getvalue()
    assert "\x1b[" in drawn  # styled
    assert "─" in drawn  # the table's ruled header
    assert "[red]not markup[/red]" in drawn  # a value is printed as it is, never as markup
    assert "order_1" in drawn and "TO STATUS" in drawn and "unknown" not in drawn


def test_progress_when_piped_is_one_line_per_step() -> None:
    stream = io.StringIO()
    with console.progress(2, plain_lines=True, stream=stream) as steps:
        steps.started("direct payment")
        steps.finished("direct payment", "direct payment: PAID (ok, 0.4 s)", True)
        steps.finished("3DS payment", "3DS payment: FAILED (expected PAID, 9 s)", False)
    assert stream.getvalue().splitlines() == [
        "[1/2] direct payment: PAID (ok, 0.4 s)",
        "[2/2] 3DS payment: FAILED (expected PAID, 9 s)",
    ]
    assert "\r" not in stream.getvalue() and "\x1b" not in stream.getvalue()
    quiet = io.StringIO()
    with console.progress(1, plain_lines=False, stream=quiet) as steps:
        steps.finished("x", "x: ok", True)
    assert quiet.getvalue() == ""


def test_progress_on_a_terminal_is_live(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.delenv("TERM", raising=False)
    stream = io.StringIO()
    with console.progress(1, plain_lines=True, stream=stream) as steps:
        steps.started("direct payment")
        steps.finished("direct payment", "direct payment: PAID (ok, 0.4 s)", True)
    assert "✓" in stream.getvalue() and "direct payment: PAID" in stream.getvalue()


# --- shell completion -------------------------------------------------------------------------

CASES = [
    (["kartu", "pa"], {"pay", "payments"}),
    (["kartu", "pay", "--c"], {"--customer", "--card-token"}),
    (["kartu", "authorize", "o_1", "--capture-policy", ""], {"none", "auto_capture", "auto_void"}),
    (["kartu", "--json", "payments", "--flow", ""], {"DIRECT", "AUTH_CAPTURE"}),
    (["kartu", "payments", "--status", "NEEDS"], {"NEEDS_ATTENTION"}),
    (["kartu", "sandbox", ""], {"card", "3ds", "advance", "clock", "ledger"}),
    (["kartu", "sandbox", "card", "--o"], {"--otp"}),
    (["kartu", "resolve", "p_1", ""], {"retry", "close"}),
    (["kartu", "status", "--wait", "30", "p_1", "--pro"], {"--provider"}),
    (["kartu", "completion", ""], {"bash", "zsh"}),
]

HARNESS = """
complete_words() {
    COMP_WORDS=("$@"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); COMPREPLY=()
    _kartu
    printf '%s\\n' "${COMPREPLY[@]}"
    echo "--"
}
"""


def _run(
    shell: list[str], script: str, cases: list[list[str]], harness: str = HARNESS
) -> list[set[str]]:
    calls = "\n".join(
        "complete_words " + " ".join(f"'{word}'" for word in words) for words in cases
    )
    done = subprocess.run(  # noqa: S603 - a shell running the generated script
        shell,
        input=script + harness + calls + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    answers = done.stdout.split("--\n")[: len(cases)]
    return [set(filter(None, a.splitlines())) for a in answers]


def test_bash_completion_from_the_parser() -> None:
    script = completion.script("bash", build_parser())
    answers = _run(["bash", "--norc", "--noprofile"], script, [c for c, _ in CASES])
    for (words, expected), got in zip(CASES, answers, strict=True):
        assert got == expected, (words, got)


def test_zsh_runs_the_same_completion(tmp_path: Path) -> None:
    """Through zsh's bashcompinit; zsh filters by the typed prefix itself (its compgen does not),
    so the answers hold the expected words among the candidates of the right position."""
    script = completion.script("zsh", build_parser())
    prelude = "autoload -U compinit && compinit -u -d " + str(tmp_path / "zcompdump") + "\n"
    harness = HARNESS.replace("COMP_WORDS=", "emulate -L sh; COMP_WORDS=")
    cases = [c for c, _ in CASES]
    done = _run(["zsh", "-f"], prelude + script, cases, harness)
    for (words, expected), got in zip(CASES, done, strict=True):
        assert expected <= got, (words, got)
        if words[-1] == "":
            assert got == expected, (words, got)
