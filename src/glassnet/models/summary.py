"""A model's layer table: each layer's output shape and parameter count, as text and as HTML."""
import html


def summary_text(model, input_shape=None):
    """A table of layer, output shape and parameter count, with the total."""
    rows = [("layer", "output shape", "params")]
    for index, (layer, shape) in enumerate(zip(model.layers, model.output_shapes(input_shape))):
        rows.append((f"{index}: {type(layer).__name__}", "(N, " + ", ".join(map(str, shape)) + ")" if shape else "?",
                     f"{layer.num_params():,}"))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    lines.append(f"total parameters: {model.num_params():,}")
    return "\n".join(lines)


def summary_html(model):
    """The ``summary()`` table as HTML: layer, output shape, parameter count, total."""
    rows = []
    for index, (layer, shape) in enumerate(zip(model.layers, model.output_shapes())):
        shown = "(N, " + ", ".join(map(str, shape)) + ")" if shape is not None else "?"
        rows.append(f"<tr><td>{index}: {html.escape(type(layer).__name__)}</td><td>{shown}</td>"
                    f"<td style='text-align:right'>{layer.num_params():,}</td></tr>")
    return ("<table class='glassnet-summary'><thead><tr><th>layer</th><th>output shape</th><th>params</th></tr>"
            f"</thead><tbody>{''.join(rows)}</tbody><tfoot><tr><td colspan='2'>total parameters</td>"
            f"<td style='text-align:right'>{model.num_params():,}</td></tr></tfoot></table>")
