"""The dashboard's circle tree: each circle under its parent, roots first."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from node.tui.data import CircleItem, circle_tree, level_name


class CircleTree(Tree[bytes]):
    """Circles by name, children under their parent (the genesis ``parent``); a circle
    whose parent this node does not hold is a root. Enter opens a circle (the screen
    handles ``NodeSelected``); space folds a branch. Rebuilding keeps the cursor on the
    same circle and folded branches folded."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("Circles", id=id)
        self.show_root = False
        self.auto_expand = False
        self._folded: set[bytes] = set()

    def show_circles(self, items: list[CircleItem], open_counts: dict[bytes, int]) -> None:
        selected = self.cursor_node.data if self.cursor_node is not None else None
        self.clear()
        roots, children = circle_tree(items)
        found: dict[bytes, TreeNode[bytes]] = {}
        stack: list[tuple[TreeNode[bytes], CircleItem]] = [(self.root, r) for r in reversed(roots)]
        while stack:
            parent, item = stack.pop()
            kids = children.get(item.circle, [])
            label = circle_label(item, open_counts.get(item.circle))
            if kids:
                node = parent.add(label, data=item.circle, expand=item.circle not in self._folded)
                stack += [(node, kid) for kid in reversed(kids)]
            else:
                node = parent.add_leaf(label, data=item.circle)
            found[item.circle] = node
        if selected is not None and selected in found:
            self.move_cursor(found[selected])
        elif found:
            self.move_cursor_to_line(0)

    def on_tree_node_collapsed(self, event: Tree.NodeCollapsed[bytes]) -> None:
        if event.node.data is not None:
            self._folded.add(event.node.data)

    def on_tree_node_expanded(self, event: Tree.NodeExpanded[bytes]) -> None:
        if event.node.data is not None:
            self._folded.discard(event.node.data)


def circle_label(item: CircleItem, open_count: int | None) -> Text:
    """``Name  write · 2 open`` (the level dim; the count only when known and not 0)."""
    label = Text(item.name)
    label.append(f"  {level_name(item.my_level)}", style="dim")
    if open_count:
        label.append(f" · {open_count} open", style="bold")
    return label
