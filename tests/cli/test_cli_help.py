"""The command's own surface: ``--version``, help text, and naming the App to load."""

from __future__ import annotations

from importlib import metadata

from cli_helpers import Cli, one_line_error


def test_version_prints_the_package_version(cli: Cli):
    done = cli("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"durable {metadata.version('durable')}"


def test_help_shows_no_type_for_flags(cli: Cli):
    for args in (["--help"], ["runs", "ls", "--help"], ["worker", "--help"]):
        done = cli(*args, COLUMNS="80")
        assert done.returncode == 0, done.stderr
        assert "<bool>" not in done.stdout, done.stdout
        assert "--help" in done.stdout
    assert "<str>" in cli("runs", "ls", "--help", COLUMNS="80").stdout  # values keep theirs


def test_a_missing_app_attribute_names_the_module_and_its_apps(cli: Cli):
    line = one_line_error(cli("worker", "crash_app:nope"), 1)
    assert line == "durable: module 'crash_app' has no attribute 'nope'; its Apps: app"
    line = one_line_error(cli("worker", "crash_app:durable"), 1)
    assert line == "durable: crash_app:durable is a module, not a durable.App; its Apps: app"
