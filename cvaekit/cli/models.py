"""The commands that use a trained model, from a run folder, an exported folder or a hub id:
`generate`, `serve`, `evaluate`; and those that share one: `export`, `push`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from cvaekit.cli.common import app, err, friendly, out
from cvaekit.errors import CvaekitError

MODEL = "A run folder, an exported folder, or a hub id (user/name, user/name@revision)."
INTO = "Where an exported model or hub id is copied to write into (default runs/<name>-<timestamp>)."


@app.command("generate")
@friendly
def generate_cmd(
    run: str = typer.Argument(..., help=MODEL),
    texts: list[str] = typer.Argument(..., help="Words (label runs) or captions (caption runs), one row each."),
    n: int = typer.Option(8, "-n", help="Images per text, 1 to 256 (with --interpolate: steps, 2 to 64)."),
    output: Path = typer.Option(Path("samples.png"), "-o", "--output", help="PNG file to write."),
    checkpoint: Optional[str] = typer.Option(None, "--checkpoint", help="'last' (default), an epoch, or a path."),
    seed: int = typer.Option(0, "--seed", help="Noise seed."),
    temperature: str = typer.Option("1", "--temperature", "-t",
                                    help="Spread of z about the prior's most typical z: 1 samples the prior; below 1, more typical and less varied images; 0, the most typical z itself (the prior's mode). 0 or more; for a hierarchical run one for all groups or one per group from the top: 1,0.7,0.5."),
    guidance: float = typer.Option(1.0, "--guidance", "-g", help="Classifier-free guidance: 1, the model as trained; above 1 (2 or 3) weighs the text up, images that follow it more closely and vary less. Needs a run trained with train.cond_dropout."),
    fix_top: int = typer.Option(0, "--fix-top", help="Hierarchical runs: hold the top K latent groups at one draw per text while the lower groups vary from image to image."),
    interpolate: bool = typer.Option(False, "--interpolate",
                                     help="Walk from the first text to the second at a fixed z, in -n steps, as one strip."),
    text_encoder: Optional[str] = typer.Option(None, "--text-encoder", help="A local copy of the model's pretrained text encoder, for the one its recipe names."),
) -> None:
    """Sample images for each text from a trained run, as one labelled grid (or, with
    --interpolate "text A" "text B", the strip between two texts)."""
    from cvaekit.serving.generate import generate
    from cvaekit.serving.generate import interpolate as interpolate_texts

    temperature = parse_temperatures(temperature)
    if interpolate:
        if guidance != 1:
            raise CvaekitError("--guidance is for a grid of samples; --interpolate walks between two texts as trained.")
        if fix_top:
            raise CvaekitError("--fix-top is for a grid of samples; --interpolate walks at one draw already.")
        if len(texts) != 2:
            raise CvaekitError(f"--interpolate walks between exactly two texts; got {len(texts)}: "
                               + ", ".join(repr(t) for t in texts) + ".")
        path = interpolate_texts(run, texts[0], texts[1], steps=n, out=output, checkpoint=checkpoint,
                                 seed=seed, temperature=temperature, text_encoder=text_encoder)
    else:
        path = generate(run, texts, n=n, out=output, checkpoint=checkpoint, seed=seed, temperature=temperature,
                        text_encoder=text_encoder, fix_top=fix_top, guidance=guidance)
    out.print(f"Wrote [bold]{path}[/]")


def parse_temperatures(text: str) -> float | list[float]:
    """--temperature: a number, or numbers separated by commas (one per latent group, from the top)."""
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        raise CvaekitError(f"--temperature takes a number, or one per latent group from the top separated by "
                           f"commas (e.g. 0.8 or 1,0.7,0.5); got '{text}'.") from None
    return values[0] if len(values) == 1 else values


@app.command("serve")
@friendly
def serve_cmd(
    runs: list[str] = typer.Argument(..., help="Run folders, exported folders or hub ids; RUN@EPOCH serves that checkpoint (one run's checkpoints side by side)."),
    port: int = typer.Option(7860, "--port", help="Port to listen on, 1 to 65535."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind: 127.0.0.1, this machine only (the default); 0.0.0.0 opens the page to the network (then use --auth)."),
    auth: Optional[str] = typer.Option(None, "--auth", help="USER:PASSWORD the page asks for: for a page shared on a network."),
    auth_file: Optional[Path] = typer.Option(None, "--auth-file", help="A file of USER:PASSWORD lines, one per user (keeps the password out of the shell's history)."),
    checkpoint: Optional[str] = typer.Option(None, "--checkpoint", help="'last' (default) or an epoch, for every run without @EPOCH."),
    device: str = typer.Option("auto", "--device", help="auto (the GPU when there is one), cpu, cuda, ..."),
    text_encoder: Optional[str] = typer.Option(None, "--text-encoder", help="A local copy of the model's pretrained text encoder, for the one its recipe names."),
) -> None:
    """A page to try trained runs: generate from a text, compare runs, walk the latent space."""
    from cvaekit.serving.doors import check_host, check_port, open_warning, read_auth
    from cvaekit.serving.service import load_runs

    host, port, users = check_host(host), check_port(port), read_auth(auth, auth_file)  # before anything loads
    served = load_runs(runs, checkpoint, device, text_encoder=text_encoder)  # a missing run or checkpoint: an error before any page
    from cvaekit.serving.page import launch

    if warning := open_warning(host, users):
        err.print(f"[yellow]Warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)
    out.print(f"Serving {', '.join(r.label for r in served)} on [bold]http://{host}:{port}[/] (Ctrl-C stops)")
    launch(served, host=host, port=port, auth=users)


@app.command("evaluate")
@friendly
def evaluate_cmd(
    run: str = typer.Argument(..., help=MODEL),
    checkpoints: str = typer.Option("all", "--checkpoints", help="'all' kept checkpoints, 'last', or epochs: 10,20."),
    metrics: Optional[str] = typer.Option(None, "--metrics", help="Comma-separated metric names (default: the recipe's eval.metrics), or a YAML list as in a recipe: '[nelbo, {name: caption_match, temperature: 0.8}]'."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Judge on the first N test images (default: the recipe's eval.limit)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, ..."),
    figures: bool = typer.Option(True, "--figures/--no-figures", help="Also draw samples and reconstructions by checkpoint."),
    prior: str = typer.Option("auto", "--prior", help="Sample from: auto (the fitted prior where fit-prior fitted one, else the trained one), trained, fitted."),
    into: Optional[Path] = typer.Option(None, "--into", help=INTO),
    text_encoder: Optional[str] = typer.Option(None, "--text-encoder", help="A local copy of the model's pretrained text encoder, for the one its recipe names."),
) -> None:
    """Metrics at every checkpoint of a run, as a table, merged into evaluation.csv/.json in the
    run (earlier measurements stay); each row says which prior it sampled from. An exported
    model or a hub id is evaluated in a local run folder made from it."""
    from cvaekit.evaluation.checkpoints import evaluate, parse_metric_choice
    from cvaekit.evaluation.tables import metrics_table

    result = evaluate(run, checkpoints, parse_metric_choice(metrics), device=device, limit=limit, figures=figures,
                      prior=prior, into=into, text_encoder=text_encoder)
    title = f"{result.run.name}: metrics by checkpoint ({result.rows[0]['test_images']} test images)"
    out.print(metrics_table(result.rows, ["epoch", "prior"], result.columns, title))
    if Path(result.run).resolve() != Path(run).resolve():
        out.print(f"Evaluated in a local copy of {escape(run)}: [bold]{escape(str(result.run))}[/]", soft_wrap=True)
    for note in result.notes:
        err.print(f"[yellow]Note:[/] {escape(note)}", highlight=False, soft_wrap=True)
    for path in result.files:
        rows = f" ({len(result.table)} rows, these merged in)" if path.suffix == ".csv" else ""
        out.print(f"Wrote [bold]{escape(str(path))}[/]{rows}")


@app.command("export")
@friendly
def export_cmd(
    run: str = typer.Argument(..., help="A run folder (or an exported model)."),
    folder: Path = typer.Argument(..., help="The folder to write (new, or an earlier export it replaces)."),
    checkpoint: Optional[str] = typer.Option(None, "--checkpoint", help="'last' (default), an epoch, or a path."),
) -> None:
    """Write one checkpoint of a run as a folder in the Hugging Face Hub's model layout: the
    weights as safetensors (nothing pickled), the recipe, a sample grid and a model card."""
    from cvaekit.serving.export import export_run

    path = export_run(run, folder, checkpoint)
    out.print(f"Exported [bold]{escape(str(path))}[/]: {', '.join(sorted(p.name for p in path.iterdir()))}. "
              f"Load it as a run: cvaekit generate {escape(str(path))} ...", soft_wrap=True)


@app.command("push")
@friendly
def push_cmd(
    run: str = typer.Argument(..., help="A run folder (or an exported model)."),
    repo_id: str = typer.Argument(..., help="The Hub repository: user/name (created when new)."),
    checkpoint: Optional[str] = typer.Option(None, "--checkpoint", help="'last' (default), an epoch, or a path."),
    private: bool = typer.Option(False, "--private", help="Create the repository private."),
    revision: Optional[str] = typer.Option(None, "--revision", help="The branch to push to (created when new; default main)."),
) -> None:
    """Export a run's checkpoint and upload it to the Hugging Face Hub in one commit (the
    token from `hf auth login` or HF_TOKEN); then `cvaekit generate user/name ...` loads it."""
    from cvaekit.serving.export import push_run

    url = push_run(run, repo_id, checkpoint, private=private, revision=revision)
    at = f"@{revision}" if revision else ""
    out.print(f"Pushed [bold]{escape(repo_id)}{escape(at)}[/] ({escape(url)}); load it with: "
              f"cvaekit generate {escape(repo_id)}{escape(at)} ...", soft_wrap=True)
