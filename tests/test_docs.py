"""The docs keep up with the code: every setting, every command, every linked page."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from champion.deployment_settings import DEPLOYMENT_SETTINGS
from champion.main import main
from champion.settings import SETTINGS

DOCS = Path(__file__).resolve().parent.parent / "docs"
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
COMMANDS = sorted(main.commands)


def read(page: str) -> str:
    return (DOCS / page).read_text(encoding="utf-8")


def local_links(text: str) -> list[str]:
    return [t for t in LINK.findall(text) if not re.match(r"^[a-z]+:", t)]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    return {slug(m) for m in re.findall(r"^#+ (.+)$", text, flags=re.MULTILINE)}


def cli_section(name: str) -> str:
    """The part of docs/cli.md under '## champion NAME'."""
    text = read("cli.md")
    match = re.search(rf"^## champion {re.escape(name)}\n(.*?)(?=^## |\Z)", text,
                      flags=re.MULTILINE | re.DOTALL)
    return match.group(1) if match else ""


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_every_setting_is_in_configuration_md(setting):
    text = read("configuration.md")
    assert f"`{setting.flag}`" in text, f"{setting.flag} is not in docs/configuration.md"
    assert f"`{setting.env_var}`" in text, f"{setting.env_var} is not in docs/configuration.md"


@pytest.mark.parametrize("setting", DEPLOYMENT_SETTINGS, ids=lambda s: s.name)
def test_every_deployment_setting_is_in_configuration_md_with_its_bounds(setting):
    section = read("configuration.md").split("## Per-deployment settings", 1)[1]
    rows = [line for line in section.split("\n## ", 1)[0].splitlines()
            if line.startswith(f"| `{setting.name}` |")]
    assert rows, f"deployment setting {setting.name} is not in docs/configuration.md"
    assert f"| {setting.bounds} |" in rows[0], (setting.bounds, rows[0])
    assert setting.help in rows[0]
    assert f"`{setting.flag}`" in cli_section("configure") or setting.flag in cli_section(
        "configure"), f"{setting.flag} is not in docs/cli.md's configure section"


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_a_section_in_cli_md(name):
    assert cli_section(name), f"docs/cli.md has no '## champion {name}' section"


@pytest.mark.parametrize("name", COMMANDS)
def test_every_option_is_in_its_commands_section(name):
    section = cli_section(name)
    for param in main.commands[name].params:
        if isinstance(param, click.Option):
            longest = max(param.opts, key=len)
            assert longest in section, f"champion {name} {longest} is not in docs/cli.md"


def test_every_page_linked_from_the_index_exists():
    pages = [t.split("#")[0] for t in local_links(read("index.md"))]
    assert pages, "docs/index.md links to no page"
    missing = [p for p in pages if p and not (DOCS / p).is_file()]
    assert not missing, f"docs/index.md links to missing pages: {missing}"


def test_every_docs_page_is_linked_from_the_index():
    linked = {t.split("#")[0] for t in local_links(read("index.md"))}
    ignored = {"index.md", "benchmarks.md"}  # benchmarks.md is written with the benchmarks
    unlinked = sorted(p.name for p in DOCS.glob("*.md") if p.name not in linked | ignored)
    assert not unlinked, f"pages missing from docs/index.md: {unlinked}"


@pytest.mark.parametrize("page", sorted(p.name for p in DOCS.glob("*.md")))
def test_links_between_pages_resolve(page):
    for target in local_links(read(page)):
        path, _, anchor = target.partition("#")
        if path and not path.endswith(".md"):
            continue
        dest = path or page
        assert (DOCS / dest).is_file(), f"{page} links to missing {dest}"
        if anchor:
            assert anchor in anchors(read(dest)), f"{page} links to missing {dest}#{anchor}"


def test_main_help_runs():
    result = CliRunner().invoke(main, ["--help"], prog_name="champion")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_help_runs(name):
    result = CliRunner().invoke(main, [name, "--help"], prog_name="champion")
    assert result.exit_code == 0, result.output
    assert f"Usage: champion {name}" in result.output


def test_the_module_level_functions_listed_are_exactly_champion_all():
    import champion

    text = read("python-client.md").split("## Module-level functions", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `(\w+)\(", text, flags=re.MULTILINE))
    assert listed == set(champion.__all__) - {"Client"}, (
        f"docs/python-client.md lists {sorted(listed ^ (set(champion.__all__) - {'Client'}))} "
        "differently from champion.__all__")


def test_each_help_text_in_cli_md_is_the_commands_real_help():
    """docs/cli.md shows each command's --help (at 80 columns): it must be the real one."""
    text = read("cli.md")
    shown = re.findall(r"```text\n(Usage: champion ([a-z -]+?) \[OPTIONS\].*?)```", text,
                       flags=re.DOTALL)
    assert shown, "docs/cli.md shows no --help output"
    stale = []
    for block, command in shown:
        real = CliRunner().invoke(main, [*command.split(), "--help"], prog_name="champion",
                                  terminal_width=80).output
        if real.strip() != block.strip():
            stale.append(command)
    assert not stale, f"docs/cli.md shows an old --help for: {stale}"
