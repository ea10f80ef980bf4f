"""Milestone dependency checks: cycles and references to unknown milestones.

Stdlib only: this module is imported inside the Temporal workflow sandbox.
"""

from collections.abc import Mapping, Sequence


def find_cycle(edges: Mapping[str, Sequence[str]]) -> list[str] | None:
    """A dependency cycle as a closed path (["a", "b", "a"]), or None if there is none.

    `edges` maps each milestone key to the keys it depends on. The search follows
    insertion order, so the same input always reports the same cycle. Dependencies
    on unknown keys are ignored here; see `unknown_dependencies`.
    """
    _reject_bare_strings(edges)
    done: set[str] = set()
    for root in edges:
        if root in done:
            continue
        # Iterative depth-first search; `path` is the chain of keys being explored.
        path: list[str] = [root]
        on_path: set[str] = {root}
        pending = [iter(edges[root])]
        while pending:
            dep = next(pending[-1], None)  # keys are str, so None means "no deps left"
            if dep is None:
                finished = path.pop()
                on_path.discard(finished)
                done.add(finished)
                pending.pop()
            elif dep in on_path:
                return [*path[path.index(dep) :], dep]
            elif dep in edges and dep not in done:
                path.append(dep)
                on_path.add(dep)
                pending.append(iter(edges[dep]))
    return None


def unknown_dependencies(edges: Mapping[str, Sequence[str]]) -> list[tuple[str, str]]:
    """(key, dependency) pairs whose dependency is not itself a key, in input order."""
    _reject_bare_strings(edges)
    return [(key, dep) for key, deps in edges.items() for dep in deps if dep not in edges]


def _reject_bare_strings(edges: Mapping[str, Sequence[str]]) -> None:
    # A str is a Sequence[str]: {"a": "bc"} would silently mean deps "b" and "c".
    for key, deps in edges.items():
        if isinstance(deps, str):
            raise TypeError(f"dependencies of {key!r} must be a list of keys, got {deps!r}")
