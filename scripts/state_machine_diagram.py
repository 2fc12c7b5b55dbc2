"""The state machine's diagram, generated from its ASL as a Mermaid flowchart (GitHub draws it as a
picture in the README). The README holds the generated block between two markers; a test keeps it
identical to what this module generates, so the picture never drifts from the definition.

    python -m scripts.state_machine_diagram            print the Markdown block
    python -m scripts.state_machine_diagram --write    put it into README.md (make docs)
    python -m scripts.state_machine_diagram --check    exit 1 if README.md's block is not current
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
ASL_PATH = REPO_ROOT / "statemachine" / "migration.asl.json"
README_PATH = REPO_ROOT / "README.md"
BEGIN = "<!-- state-machine-diagram:begin (generated from statemachine/migration.asl.json by make docs) -->"
END = "<!-- state-machine-diagram:end -->"

# How a Choice rule's comparison reads on an edge.
_OPERATORS = {
    "Equals": "=",
    "GreaterThan": ">",
    "GreaterThanEquals": ">=",
    "LessThan": "<",
    "LessThanEquals": "<=",
    "Matches": "matches",
}
_SHAPES = {
    "Task": '["{}"]',
    "Pass": '("{}")',
    "Choice": '{{"{}"}}',
    "Wait": '{{{{"{}"}}}}',
    "Succeed": '(["{}"])',
    "Fail": '(["{}"])',
}
_CONTAINERS = frozenset({"Parallel", "Map"})


def _text(value: str) -> str:
    """Text inside a Mermaid label's quotes."""
    return value.replace('"', "#quot;").replace("\n", " ")


def _path(value: Any) -> str:
    text = str(value)
    return text[2:] if text.startswith("$.") else text


def rule_label(rule: Mapping[str, Any]) -> str:
    """A Choice rule as a short condition: `plan.dryRun = true`, `a >= b and not c present`."""
    if "Condition" in rule:
        return str(rule["Condition"])
    for combinator in ("And", "Or"):
        if combinator in rule:
            return f" {combinator.lower()} ".join(rule_label(part) for part in rule[combinator])
    if "Not" in rule:
        return f"not {rule_label(rule['Not'])}"
    variable = _path(rule.get("Variable", ""))
    for key, value in rule.items():
        if key in {"Variable", "Next"}:
            continue
        operator = key.removesuffix("Path")
        shown = _path(value) if key.endswith("Path") else json.dumps(value)
        if operator in {"IsPresent", "IsNull", "IsString", "IsNumeric", "IsBoolean", "IsTimestamp"}:
            kind = operator.removeprefix("Is").lower()
            return f"{variable} {kind}" if value else f"{variable} not {kind}"
        # Longest first: GreaterThanEquals before Equals.
        for suffix, symbol in sorted(_OPERATORS.items(), key=lambda item: -len(item[0])):
            if operator.endswith(suffix):
                return f"{variable} {symbol} {shown}"
        return f"{variable} {operator} {shown}"
    return variable


@dataclass
class _Diagram:
    lines: list[str] = field(default_factory=list)
    ids: dict[str, str] = field(default_factory=dict)
    edges: list[str] = field(default_factory=list)
    terminals: dict[str, list[str]] = field(default_factory=lambda: {"succeed": [], "fail": []})

    def node_id(self, name: str) -> str:
        if name not in self.ids:
            base = "s_" + re.sub(r"[^A-Za-z0-9_]", "_", name)
            candidate, number = base, 2
            while candidate in self.ids.values():
                candidate, number = f"{base}_{number}", number + 1
            self.ids[name] = candidate
        return self.ids[name]


def _states(machine: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    yield from (machine.get("States") or {}).items()


def _declare(diagram: _Diagram, machine: Mapping[str, Any], indent: str) -> None:
    """Nodes (and subgraphs for Parallel and Map states), in the definition's order."""
    for name, state in _states(machine):
        kind = state["Type"]
        node = diagram.node_id(name)
        if kind == "Parallel":
            diagram.lines.append(f'{indent}subgraph {node} ["{_text(name)} (parallel)"]')
            for number, branch in enumerate(state.get("Branches") or [], start=1):
                diagram.lines.append(f'{indent}  subgraph {node}_branch{number} ["branch {number}"]')
                diagram.lines.append(f"{indent}    direction TB")
                _declare(diagram, branch, indent + "    ")
                diagram.lines.append(f"{indent}  end")
            diagram.lines.append(f"{indent}end")
        elif kind == "Map":
            processor = state.get("ItemProcessor") or state.get("Iterator") or {}
            mode = (processor.get("ProcessorConfig") or {}).get("Mode", "INLINE")
            label = "distributed map" if mode == "DISTRIBUTED" else "map"
            diagram.lines.append(f'{indent}subgraph {node} ["{_text(name)} ({label}, for each item)"]')
            diagram.lines.append(f"{indent}  direction TB")
            _declare(diagram, processor, indent + "  ")
            diagram.lines.append(f"{indent}end")
        else:
            shape = _SHAPES.get(kind, '["{}"]')
            diagram.lines.append(f"{indent}{node}{shape.format(_text(name))}")
            if kind == "Succeed":
                diagram.terminals["succeed"].append(node)
            elif kind == "Fail":
                diagram.terminals["fail"].append(node)


def _connect(diagram: _Diagram, machine: Mapping[str, Any]) -> None:
    """Edges: Next, each Choice rule and its Default, and every Catch (dashed)."""
    for name, state in _states(machine):
        node = diagram.node_id(name)
        # Inside a Parallel branch or a Map, the first state is the one no edge leads to.
        for branch in state.get("Branches") or []:
            _connect(diagram, branch)
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            _connect(diagram, processor)
        if "Next" in state:
            diagram.edges.append(f"  {node} --> {diagram.node_id(state['Next'])}")
        for rule in state.get("Choices") or []:
            label = _text(rule_label(rule))
            diagram.edges.append(f'  {node} -->|"{label}"| {diagram.node_id(rule["Next"])}')
        if "Default" in state:
            diagram.edges.append(f'  {node} -->|"otherwise"| {diagram.node_id(state["Default"])}')
        for catcher in state.get("Catch") or []:
            errors = catcher.get("ErrorEquals") or []
            target = diagram.node_id(catcher["Next"])
            if errors == ["States.ALL"]:
                diagram.edges.append(f"  {node} -.-> {target}")
            else:
                diagram.edges.append(f'  {node} -.->|"{_text(", ".join(errors))}"| {target}')


def mermaid(definition: Mapping[str, Any]) -> str:
    """The flowchart of an ASL definition."""
    diagram = _Diagram()
    diagram.lines.append("flowchart TD")
    diagram.lines.append('  start(("start"))')
    _declare(diagram, definition, "  ")
    diagram.edges.append(f"  start --> {diagram.node_id(definition['StartAt'])}")
    _connect(diagram, definition)
    styles = ["  classDef succeed fill:#d9f2d9,stroke:#2d7d2d", "  classDef fail fill:#f8d7d7,stroke:#b02a2a"]
    for kind, nodes in diagram.terminals.items():
        if nodes:
            styles.append(f"  class {','.join(nodes)} {kind}")
    return "\n".join([*diagram.lines, *diagram.edges, *styles]) + "\n"


def markdown_block(asl_path: Path = ASL_PATH) -> str:
    """The README's block: the markers around a mermaid code block."""
    definition = json.loads(asl_path.read_text())
    return f"{BEGIN}\n```mermaid\n{mermaid(definition)}```\n{END}"


def readme_block(readme_text: str) -> str | None:
    """The block as it is in the README, markers included (None if there is none)."""
    start = readme_text.find(BEGIN)
    end = readme_text.find(END, start)
    if start < 0 or end < 0:
        return None
    return readme_text[start : end + len(END)]


def write(readme_path: Path = README_PATH, asl_path: Path = ASL_PATH) -> bool:
    """Put the current block into the README, in place of the old one; True if it changed."""
    text = readme_path.read_text()
    current = readme_block(text)
    if current is None:
        raise SystemExit(f"{readme_path} has no {BEGIN} ... {END} block to fill")
    fresh = markdown_block(asl_path)
    if current == fresh:
        return False
    readme_path.write_text(text.replace(current, fresh))
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", action="store_true", help="update README.md's diagram")
    action.add_argument("--check", action="store_true", help="exit 1 if README.md's diagram is not current")
    args = parser.parse_args(argv)
    if args.write:
        print("README.md: diagram updated" if write() else "README.md: diagram already current")
        return 0
    if args.check:
        if readme_block(README_PATH.read_text()) != markdown_block():
            print("README.md's state machine diagram is not current: run make docs", file=sys.stderr)
            return 1
        return 0
    print(markdown_block())
    return 0


if __name__ == "__main__":
    sys.exit(main())
