"""A model's layer table: each node's output shape and parameter count (and, for a graph, the values it
reads), as text and as HTML."""
import html


def summary_rows(model, input_shape=None):
    """[(node label, output shape text, parameter count text, inputs text or None)]; a shared layer's
    parameters are counted at its first call only."""
    shapes, counted, rows = model.output_shapes(input_shape), set(), []
    chain = type(model).__name__ == "Sequential"
    for k, ((index, _), shape, sources) in enumerate(zip(model.graph.nodes, shapes, model.node_inputs())):
        layer = model.layers[index]
        params = 0 if index in counted else layer.num_params()
        counted.add(index)
        shared = "" if len(model.graph.uses[index]) == 1 else f" (layer {index}, shared)"
        rows.append((f"{k}: {type(layer).__name__}{shared}",
                     "(N, " + ", ".join(map(str, shape)) + ")" if shape else "?", f"{params:,}",
                     None if chain else ", ".join(sources)))
    return rows


def summary_text(model, input_shape=None):
    """A table of node, output shape, parameter count (and inputs for a graph), with the total."""
    body = summary_rows(model, input_shape)
    graph = body and body[0][3] is not None
    header = ("layer", "output shape", "params") + (("inputs",) if graph else ())
    rows = [header] + [row if graph else row[:3] for row in body]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    lines.append(f"total parameters: {model.num_params():,}")
    return "\n".join(lines)


def summary_html(model):
    """The ``summary()`` table as HTML: node, output shape, parameter count (inputs for a graph), total."""
    body = summary_rows(model)
    graph = body and body[0][3] is not None
    rows = []
    for label, shape, params, sources in body:
        extra = f"<td>{html.escape(sources)}</td>" if graph else ""
        rows.append(f"<tr><td>{html.escape(label)}</td><td>{shape}</td>"
                    f"<td style='text-align:right'>{params}</td>{extra}</tr>")
    head = "<th>inputs</th>" if graph else ""
    return ("<table class='glassnet-summary'><thead><tr><th>layer</th><th>output shape</th><th>params</th>"
            f"{head}</tr></thead><tbody>{''.join(rows)}</tbody><tfoot><tr><td colspan='2'>total parameters</td>"
            f"<td style='text-align:right'>{model.num_params():,}</td></tr></tfoot></table>")
