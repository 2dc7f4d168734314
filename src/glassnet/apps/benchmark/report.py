"""The benchmark's Markdown rendering."""


def _figure(value, digits=0):
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _mib(value):
    return "n/a" if value is None else f"{value / 2 ** 20:,.1f}"


def render_markdown(report):
    env = report["environment"]
    blas = env["blas"] if isinstance(env["blas"], str) else ", ".join(
        f"{b['internal_api']} {b['version']} ({b['architecture']} kernel, {b['num_threads']} threads)"
        for b in env["blas"])
    lines = [f"glassnet benchmark: {report['dtype']}, {env['threads']} threads, median of {report['repeats']} "
             f"repeats after warm-up{' (SMOKE RUN: figures meaningless)' if report['smoke'] else ''}",
             f"NumPy {env['numpy']} with {blas}; PyTorch {env['torch'] or 'not installed'}; "
             f"Python {env['python']}, {env['cpus']} CPUs", "",
             "| net | batch | glassnet train img/s | PyTorch train img/s | ratio | glassnet infer img/s "
             "| PyTorch infer img/s | ratio | glassnet peak MiB | PyTorch peak MiB | ratio |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, result in report["cases"].items():
        cells = [name, str(result["batch_size"])]
        for kind in ("train", "infer"):
            glass = result[kind]["glassnet"]["median"]
            torch = result[kind].get("pytorch", {}).get("median")
            cells += [_figure(glass), _figure(torch), _figure(glass / torch if torch else None, 2)]
        memory = report["memory"].get(name, {})
        glass_mem, torch_mem = memory.get("glassnet"), memory.get("pytorch")
        cells += [_mib(glass_mem), _mib(torch_mem),
                  _figure(glass_mem / torch_mem if glass_mem and torch_mem else None, 2)]
        lines.append("| " + " | ".join(cells) + " |")
    seed = report["cases"]["seed001"]["train"]["glassnet"]["median"]
    loops = report["seed_loops_img_s"]
    lines += ["", f"Per-sample training of seed 001's net: glassnet {seed:,.0f} img/s, seed-style loops "
              f"{loops:,.0f} img/s: {seed / loops:,.1f}x faster.", "",
              "Training throughput against batch size (img/s):", "",
              "| net | batch | glassnet | PyTorch | ratio |", "|---|---|---|---|---|"]
    lines += _throughput_rows(report["scaling"])
    if report.get("threads"):
        lines += ["", "Training throughput against threads (BLAS and PyTorch threads; img/s):", "",
                  "| net | threads | glassnet | PyTorch | ratio |", "|---|---|---|---|---|"]
        lines += _throughput_rows(report["threads"])
    if report.get("layers"):
        from .layers import layers_markdown
        lines += layers_markdown(report["layers"])
    for name, rows in report.get("profile", {}).items():
        total = sum(f + b for _, f, b in rows)
        lines += ["", f"glassnet profile, {name} (ms per training step, {total:.2f} ms in all):", "",
                  "| layer | forward | backward |", "|---|---|---|"]
        lines += [f"| {label} | {forward:.2f} | {backward:.2f} |" for label, forward, backward in rows]
    return "\n".join(lines)


def _throughput_rows(table):
    """Rows "| net | setting | glassnet | PyTorch | ratio |" of ``{net: {setting: figures}}``."""
    rows = []
    for name, by_setting in table.items():
        for setting, figures in by_setting.items():
            glass = figures["glassnet"]["median"]
            torch = figures.get("pytorch", {}).get("median")
            rows.append(f"| {name} | {setting} | {glass:,.0f} | {_figure(torch)} | "
                        f"{_figure(glass / torch if torch else None, 2)} |")
    return rows
