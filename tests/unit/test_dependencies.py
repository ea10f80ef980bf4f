import pytest

from domain.dependencies import find_cycle, unknown_dependencies


def test_an_acyclic_graph_has_no_cycle() -> None:
    assert find_cycle({"design": [], "build": ["design"], "launch": ["design", "build"]}) is None


def test_a_diamond_is_not_a_cycle() -> None:
    assert find_cycle({"a": ["b", "c"], "b": ["d"], "c": ["d"], "d": []}) is None


def test_an_empty_graph_has_no_cycle() -> None:
    assert find_cycle({}) is None


def test_a_milestone_depending_on_itself_is_a_cycle() -> None:
    assert find_cycle({"a": ["a"]}) == ["a", "a"]


def test_two_milestones_depending_on_each_other_are_a_cycle() -> None:
    assert find_cycle({"a": ["b"], "b": ["a"]}) == ["a", "b", "a"]


def test_a_three_milestone_loop_is_reported_as_a_closed_path() -> None:
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"]}) == ["a", "b", "c", "a"]


def test_a_cycle_away_from_the_first_key_is_still_found() -> None:
    edges = {"root": ["x"], "x": [], "y": ["z"], "z": ["w"], "w": ["z"]}
    assert find_cycle(edges) == ["z", "w", "z"]


def test_the_reported_cycle_follows_insertion_order() -> None:
    edges = {"a": ["c", "b"], "b": ["a"], "c": ["a"]}
    assert find_cycle(edges) == ["a", "c", "a"]
    assert find_cycle(dict(reversed(edges.items()))) == ["c", "a", "c"]


def test_dependencies_on_unknown_keys_do_not_count_as_cycles() -> None:
    assert find_cycle({"a": ["ghost"], "b": ["a", "ghost"]}) is None


def test_a_very_long_chain_does_not_hit_the_recursion_limit() -> None:
    chain = {f"m{i}": [f"m{i + 1}"] for i in range(5_000)}
    assert find_cycle(chain) is None
    chain["m5000"] = ["m0"]
    cycle = find_cycle(chain)
    assert cycle is not None
    assert cycle[0] == cycle[-1] == "m0"
    assert len(cycle) == 5_002


def test_unknown_dependencies_lists_each_missing_key_with_its_dependent() -> None:
    edges = {"a": ["b", "ghost"], "b": ["phantom", "a"], "c": []}
    assert unknown_dependencies(edges) == [("a", "ghost"), ("b", "phantom")]


def test_a_graph_with_only_known_keys_has_no_unknown_dependencies() -> None:
    assert unknown_dependencies({"a": [], "b": ["a"]}) == []


def test_a_bare_string_of_dependencies_is_rejected_not_split_into_letters() -> None:
    with pytest.raises(TypeError, match="list of keys"):
        find_cycle({"a": "bc"})
    with pytest.raises(TypeError, match="list of keys"):
        unknown_dependencies({"a": "bc"})
