"""Draw the backward graph behind one or more tensors, torchviz style.

Duck-typed over PyTorch's autograd node API, so it works for tapegrad nodes
and real ``torch`` nodes alike:

* a tensor has ``.grad_fn`` (``None`` for leaves) and ``.shape``;
* a node has ``.name()`` and ``.next_functions``, a tuple of
  ``(node_or_None, input_nr)`` pairs;
* an AccumulateGrad node (a leaf) has ``.variable``, the leaf tensor.

Edges follow torchviz: ``u -> v`` when ``u`` is in ``v.next_functions``, so
arrows point from the leaves towards the outputs.

``to_dot`` returns Graphviz DOT text.  ``draw`` renders a picture, with the
Graphviz ``dot`` executable when it is on PATH, else with a small pure-Python
layered layout drawn by matplotlib (an optional dependency, imported lazily).
"""

import io
import shutil
import subprocess

__all__ = ["to_dot", "draw", "Picture"]

_LEAF_COLOR = "lightblue"
_OUTPUT_COLOR = "darkgreen"
_OP_COLOR = "lightgrey"


def _is_leaf(node):
    return hasattr(node, "variable") or node.name().endswith("AccumulateGrad")


def _node_key(node):
    # tapegrad hands out fresh node views on each access, so id() alone does
    # not dedupe: leaves key on their tensor, other nodes on ``_key`` if any.
    if hasattr(node, "variable"):
        return ("leaf", id(node.variable))
    if hasattr(node, "_key"):
        return ("key", node._key)
    return ("id", id(node))


def _shape_str(shape):
    return str(tuple(int(s) for s in shape))


def _graph(tensors, names):
    """Walk the graph iteratively.

    Returns ``(nodes, edges)``: ``nodes`` is a list of ``(kind, label)`` with
    kind in {"output", "leaf", "op"}, indexed by node number in a stable
    discovery order (outputs first, then breadth-first from them); ``edges``
    is a list of ``(u, v)`` node numbers.
    """
    tensor_names = {id(t): n for n, t in (names or {}).items()}

    def label(name, tensor):
        shape = _shape_str(tensor.shape)
        name = tensor_names.get(id(tensor), name)
        return shape if name is None else f"{name}\n{shape}"

    nodes, edges = [], []
    index = {}  # key -> node number
    keep = []  # hold references so id()-based keys stay valid
    queue = []

    def visit(fn):
        key = _node_key(fn)
        if key not in index:
            index[key] = len(nodes)
            keep.append(fn)
            if _is_leaf(fn):
                var = getattr(fn, "variable", None)
                nodes.append(("leaf", label(None, var) if var is not None else "leaf"))
            else:
                nodes.append(("op", fn.name()))
            queue.append(fn)
        return index[key]

    seen_outputs = set()
    for t in tensors:
        if id(t) in seen_outputs:
            continue
        seen_outputs.add(id(t))
        keep.append(t)
        out = len(nodes)
        nodes.append(("output", label(None, t)))
        if t.grad_fn is not None:
            edges.append((visit(t.grad_fn), out))

    head = 0
    while head < len(queue):  # BFS: no recursion, any depth
        fn = queue[head]
        head += 1
        v = index[_node_key(fn)]
        for u, _ in fn.next_functions:
            if u is not None:
                edges.append((visit(u), v))
    return nodes, edges


def _dot_escape(s):
    return s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def to_dot(*tensors, names=None):
    """Return Graphviz DOT text for the backward graph of ``tensors``.

    ``names`` optionally maps a display name to a tensor (leaf or output);
    named tensors are labelled ``name\\n(shape)``.
    """
    nodes, edges = _graph(tensors, names)
    style = {
        "output": f'shape=oval, fillcolor={_OUTPUT_COLOR}, fontcolor=white',
        "leaf": f"fillcolor={_LEAF_COLOR}",
        "op": f"fillcolor={_OP_COLOR}",
    }
    lines = [
        "digraph {",
        '\tgraph [size="12,12"]',
        "\tnode [style=filled, shape=box, align=left, fontsize=10, "
        "height=0.2, fontname=monospace]",
    ]
    for i, (kind, text) in enumerate(nodes):
        lines.append(f'\tn{i} [label="{_dot_escape(text)}", {style[kind]}]')
    for u, v in edges:
        lines.append(f"\tn{u} -> n{v}")
    lines.append("}")
    return "\n".join(lines) + "\n"


class Picture(bytes):
    """The rendered image bytes (``bytes`` subclass).

    Usable as plain bytes (``pic[:4] == b"\\x89PNG"``, ``open(...).write(pic)``)
    and displayed inline by Jupyter via ``_repr_png_`` / ``_repr_svg_``, with
    no IPython import needed.
    """

    format = "png"

    def __new__(cls, data, format="png"):
        self = super().__new__(cls, data)
        self.format = format
        return self

    def _repr_png_(self):
        return bytes(self) if self.format == "png" else None

    def _repr_svg_(self):
        return bytes(self).decode("utf-8") if self.format == "svg" else None

    def __repr__(self):            # Jupyter stores this beside the image: keep it short
        return f"<Picture {self.format}, {len(self)} bytes>"


def draw(*tensors, names=None, path=None, format="png"):
    """Render the backward graph of ``tensors`` as an image.

    Uses Graphviz ``dot`` if it is on PATH, else a matplotlib fallback
    (layered layout, layer = longest path from the outputs; leaves on top,
    outputs at the bottom as dot draws it; meant for small graphs, it gets
    slow beyond a few thousand nodes).
    ``format`` is passed to ``dot -T`` / ``savefig`` ("png", "svg", "pdf").
    Writes the image to ``path`` when given.  Returns a :class:`Picture`:
    the image bytes, which Jupyter displays inline for png and svg.
    """
    dot = shutil.which("dot")
    if dot is not None:
        proc = subprocess.run(
            [dot, "-T" + format], input=to_dot(*tensors, names=names).encode(),
            capture_output=True,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"dot failed: {proc.stderr.decode(errors='replace')}")
        data = proc.stdout
    else:
        data = _draw_matplotlib(*_graph(tensors, names), format)
    if path is not None:
        with open(path, "wb") as f:
            f.write(data)
    return Picture(data, format)


def _layers(n, edges):
    """Layer of each node = longest path from an output (outputs at 0)."""
    children = [[] for _ in range(n)]  # v -> its inputs u (edge u -> v)
    parents = [0] * n
    for u, v in edges:
        children[v].append(u)
        parents[u] += 1
    layer = [0] * n
    ready = [i for i in range(n) if parents[i] == 0]
    while ready:  # Kahn's topological order, from the outputs down
        v = ready.pop()
        for u in children[v]:
            layer[u] = max(layer[u], layer[v] + 1)
            parents[u] -= 1
            if parents[u] == 0:
                ready.append(u)
    return layer


def _draw_matplotlib(nodes, edges, format):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyArrowPatch

    layer = _layers(len(nodes), edges)
    rows = {}
    for i in range(len(nodes)):  # discovery order within a layer: stable
        rows.setdefault(layer[i], []).append(i)
    width = max(len(r) for r in rows.values())
    depth = max(rows) + 1
    pos = {}
    for d, row in rows.items():
        for j, i in enumerate(row):
            pos[i] = (j - (len(row) - 1) / 2, d)  # outputs at the bottom, like dot

    # Figure() + FigureCanvasAgg: no pyplot, user's backend left untouched.
    w, h = min(max(3.0, 1.8 * width), 200.0), min(max(2.0, 0.8 * depth), 200.0)
    dpi = min(100, int(30000 / max(w, h)))
    fig = Figure(figsize=(w, h), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    ax.set_xlim(-width / 2 - 0.2, width / 2 + 0.2)
    ax.set_ylim(-0.6, depth - 0.4)

    colors = {"output": _OUTPUT_COLOR, "leaf": _LEAF_COLOR, "op": _OP_COLOR}
    texts = []
    for i, (kind, text) in enumerate(nodes):
        box = "round,pad=0.4,rounding_size=0.9" if kind == "output" else "square,pad=0.3"
        texts.append(ax.text(
            *pos[i], text, ha="center", va="center", fontsize=8,
            family="monospace", color="white" if kind == "output" else "black",
            bbox=dict(boxstyle=box, fc=colors[kind], ec="black", lw=0.6),
        ))
    fig.canvas.draw()  # positions the text boxes, so arrows clip against them
    for u, v in edges:
        ax.add_patch(FancyArrowPatch(
            pos[u], pos[v], arrowstyle="-|>", mutation_scale=8, lw=0.6,
            patchA=texts[u].get_bbox_patch(), patchB=texts[v].get_bbox_patch(),
        ))
    buf = io.BytesIO()
    fig.savefig(buf, format=format)
    return buf.getvalue()
