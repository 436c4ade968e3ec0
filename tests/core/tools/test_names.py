"""Tool names become API-valid wire names, reversibly and deterministically."""

from __future__ import annotations

from core.tools.names import WIRE_NAME, NameMap, clean_name, namespaced


def test_valid_names_stay_as_they_are():
    names = NameMap(["fetch_url", "current-time"])
    assert names.wire("fetch_url") == "fetch_url"
    assert names.original("current-time") == "current-time"


def test_dotted_and_spaced_names_are_cleaned_and_map_back():
    names = NameMap(["github.search issues", "fs/read"])
    wire = names.wire("github.search issues")
    assert wire == "github_search_issues"
    assert names.original(wire) == "github.search issues"
    assert names.original(names.wire("fs/read")) == "fs/read"


def test_long_names_are_shortened_with_a_hash_and_stay_distinct():
    first, second = "x" * 70 + "first", "x" * 70 + "second"
    names = NameMap([first, second])
    assert len(names.wire(first)) == 64 and len(names.wire(second)) == 64
    assert names.wire(first) != names.wire(second)
    assert names.original(names.wire(first)) == first and names.original(names.wire(second)) == second


def test_collisions_resolve_the_same_way_whatever_the_order():
    colliding = ["a.b", "a_b", "a/b", "a b"]
    forward, backward = NameMap(colliding), NameMap(reversed(colliding))
    assert forward.wire("a_b") == "a_b"  # an already valid name keeps itself
    wires = {name: forward.wire(name) for name in colliding}
    assert len(set(wires.values())) == len(colliding)
    assert wires == {name: backward.wire(name) for name in colliding}
    assert all(forward.original(wire) == name for name, wire in wires.items())


def test_every_wire_name_matches_the_api_pattern():
    awkward = ["", "ünïcödé.tool", "a" * 200, "...", "SERVER__tool.with.dots", "-", "名前"]
    names = NameMap(awkward)
    for name in awkward:
        assert WIRE_NAME.match(names.wire(name)), name
    assert all(WIRE_NAME.match(clean_name(name)) for name in awkward)


def test_unknown_wire_names_map_to_nothing():
    assert NameMap(["fetch_url"]).original("fetch_URL") is None


def test_mcp_tools_are_namespaced_by_server():
    names = NameMap([namespaced("github", "issues.search")])
    assert names.wire("github__issues.search") == "github__issues_search"
