"""A flow definition drawn as SVG: steps in columns by distance from the entry, edges
between them, each node a link carrying its step's status."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from ...flow._graph import FlowGraph, Node

NODE_W, NODE_H, GAP_X, GAP_Y, PAD = 150, 44, 60, 24, 16


@dataclass(frozen=True, slots=True)
class Box:
    id: str
    name: str
    type: str
    x: int
    y: int
    status: str


@dataclass(frozen=True, slots=True)
class Edge:
    path: str
    label: str


@dataclass(frozen=True, slots=True)
class Drawing:
    width: int
    height: int
    boxes: list[Box]
    edges: list[Edge]


def targets(node: Node) -> list[tuple[str, str]]:
    """Where a step can go next, with a label for conditional edges."""
    found: list[tuple[str, str]] = []
    if node.next:
        found.append((node.next, ""))
    found += [(target, "if") for _, target in node.branches]
    found += [(t.target, f"after {t.duration}") for t in node.timers]
    found += [(target, "") for target in node.parallel]
    if node.join:
        found.append((node.join, ""))
    return [(t, label) for t, label in found if t]


def draw(graph: FlowGraph, statuses: dict[str, str]) -> Drawing:
    """The layout of ``graph``; ``statuses`` maps step ids to their latest status."""
    depth = {graph.entry: 0}
    queue = deque([graph.entry])
    while queue:
        step = queue.popleft()
        node = graph.nodes.get(step)
        for target, _ in targets(node) if node is not None else []:
            if target in graph.nodes and target not in depth:
                depth[target] = depth[step] + 1
                queue.append(target)
    unreachable = max(depth.values(), default=0) + 1
    columns: dict[int, list[str]] = {}
    for step in graph.nodes:
        columns.setdefault(depth.get(step, unreachable), []).append(step)
    places: dict[str, tuple[int, int]] = {}
    for column, steps in columns.items():
        for row, step in enumerate(steps):
            places[step] = (PAD + column * (NODE_W + GAP_X), PAD + row * (NODE_H + GAP_Y))
    boxes = [
        Box(step, node.name, node.type, *places[step], statuses.get(step, "NOT_STARTED"))
        for step, node in graph.nodes.items()
    ]
    edges = [
        _edge(places[step], places[target], label)
        for step, node in graph.nodes.items()
        for target, label in targets(node)
        if target in places
    ]
    width = max((x for x, _ in places.values()), default=0) + NODE_W + PAD
    height = max((y for _, y in places.values()), default=0) + NODE_H + PAD
    return Drawing(width, height, boxes, edges)


def _edge(source: tuple[int, int], target: tuple[int, int], label: str) -> Edge:
    sx, sy = source[0] + NODE_W, source[1] + NODE_H // 2
    tx, ty = target[0], target[1] + NODE_H // 2
    if tx > sx:  # forward: a gentle curve
        mid = (sx + tx) // 2
        return Edge(f"M{sx},{sy} C{mid},{sy} {mid},{ty} {tx},{ty}", label)
    # backward or within a column: loop below the boxes
    low = max(source[1], target[1]) + NODE_H + GAP_Y // 2
    sx2, tx2 = source[0] + NODE_W // 2, target[0] + NODE_W // 2
    return Edge(
        f"M{sx2},{source[1] + NODE_H} C{sx2},{low} {tx2},{low} {tx2},{target[1] + NODE_H}", label
    )
