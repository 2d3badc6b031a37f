"""``titanicml model ...``: the model registry (``az ml model``)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from titanicml.cli._args import cell, compact_table, key_value, positive_int


def add_commands(commands: Any) -> None:
    """Add the ``model`` group."""
    model = commands.add_parser(
        "model",
        help="register, list, show, alias and export models (az ml model)",
        description="The model registry: MLflow's, in the same store as the runs "
        "(--tracking-uri, else MLFLOW_TRACKING_URI, else ./mlflow.db).",
    )
    verbs = model.add_subparsers(dest="model_command", metavar="COMMAND")
    verbs.required = True
    reference_help = "NAME, NAME@ALIAS, NAME:VERSION, models:/NAME/VERSION or azureml:NAME:VERSION"

    def tracking_option(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--tracking-uri",
            default=None,
            metavar="URI",
            help="MLflow store (default: MLFLOW_TRACKING_URI or sqlite:///mlflow.db)",
        )

    register = verbs.add_parser(
        "register",
        help="register a run's model, a model directory or a pickle file as the next version",
        description="Register a model as the next version of NAME (az ml model register / "
        "create):\n"
        "- the model of a training run (--run);\n"
        "- a titanicml model directory (--path DIR), verified and uploaded to a run of the\n"
        "  experiment titanicml-registry;\n"
        "- a pickle file of a fitted scikit-learn estimator (--path ./outputs/model.pkl, as\n"
        "  joblib.dump writes it), read through titanicml's allow-list and wrapped as an\n"
        "  MLflow model signed with this workspace's key. Its input columns come from\n"
        "  --sample-input, else the job that wrote it (the MLflow run holding the file),\n"
        "  else the estimator's feature_names_in_.\n\n"
        "A pickle runs code when it is loaded: registering one is trusting it, so register\n"
        "only files you or someone you trust made. The command prints the file and its\n"
        "sha256; the registered version loads only with the bytes it was registered with.",
        epilog="examples:\n"
        "  titanicml model register --name titanic-model --path ./outputs/model.pkl\n"
        "  titanicml model register --name titanic-model --run RUN_ID\n"
        "  titanicml model register --name titanic-model --path model.pkl "
        "--sample-input rows.csv",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    register.add_argument("--name", required=True, help="registered model name")
    source = register.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", metavar="RUN_ID", help="MLflow run of a titanicml training")
    source.add_argument(
        "--path",
        metavar="PATH",
        help="a model directory (titanicml train --output) or a pickle file of a fitted "
        "estimator (./outputs/model.pkl)",
    )
    register.add_argument(
        "--type",
        dest="model_type",
        choices=["custom_model", "mlflow_model"],
        default=None,
        help="as az ml spells it: custom_model (a pickle file, or a folder with one) or "
        "mlflow_model (an MLflow model folder); default: by what --path is",
    )
    register.add_argument(
        "--sample-input",
        default=None,
        metavar="FILE",
        help="rows the pickled estimator takes (CSV, Parquet, or a JSON request body such "
        'as {"data": [...]}): its signature and input example, when the job that wrote the '
        "file and the estimator's feature_names_in_ do not tell its columns",
    )
    register.add_argument(
        "--description", default=None, metavar="TEXT", help="description of the version"
    )
    register.add_argument(
        "--tag",
        action="append",
        type=key_value,
        default=[],
        metavar="KEY=VALUE",
        help="a tag of the version (repeat for several)",
    )
    tracking_option(register)
    register.set_defaults(handler=_model_register)

    listing = verbs.add_parser(
        "list",
        help="list the registered models, their latest version and aliases",
        description="List the registered models of the store (az ml model list).",
    )
    tracking_option(listing)
    listing.set_defaults(handler=_model_list)

    show = verbs.add_parser(
        "show",
        help="show a model version: metadata, metrics, aliases, source",
        description="Show a registered model version (az ml model show).",
    )
    show.add_argument("reference", metavar="REFERENCE", help=reference_help)
    show.add_argument("--json", action="store_true", help="print the version as JSON")
    tracking_option(show)
    show.set_defaults(handler=_model_show)

    alias = verbs.add_parser(
        "alias",
        help="point an alias (champion, staging) at a version, or delete it",
        description="Aliases name a version and can be moved: NAME@ALIAS is accepted "
        "wherever a model is loaded.",
    )
    alias_verbs = alias.add_subparsers(dest="alias_command", metavar="COMMAND")
    alias_verbs.required = True
    alias_set = alias_verbs.add_parser(
        "set",
        help="point ALIAS at a version (moving it if it pointed elsewhere)",
        description="Point ALIAS at version N of NAME, moving it if it pointed elsewhere.",
    )
    alias_set.add_argument("name", metavar="NAME")
    alias_set.add_argument("alias", metavar="ALIAS")
    alias_set.add_argument("--version", required=True, type=positive_int, metavar="N")
    tracking_option(alias_set)
    alias_set.set_defaults(handler=_model_alias_set)
    alias_delete = alias_verbs.add_parser(
        "delete", help="delete an alias", description="Delete ALIAS of NAME."
    )
    alias_delete.add_argument("name", metavar="NAME")
    alias_delete.add_argument("alias", metavar="ALIAS")
    tracking_option(alias_delete)
    alias_delete.set_defaults(handler=_model_alias_delete)

    export = verbs.add_parser(
        "export",
        help="copy a registered or run model to a directory, verifying its files",
        description="Copy a model to a new directory (az ml model download), verifying "
        "every file against the model's manifest.",
    )
    export.add_argument(
        "--model", required=True, metavar="REF", help=f"{reference_help}, or runs:/RUN_ID/model"
    )
    export.add_argument("--output", required=True, metavar="DIR", help="new directory")
    tracking_option(export)
    export.set_defaults(handler=_model_export)

    workspace_help = "workspace whose keys are trusted (default: TITANICML_HOME or ./.titanicml)"
    verify = verbs.add_parser(
        "verify",
        help="check a model's signature, signer and files without loading it",
        description="Check a model before anything of it runs: its manifest's signature, "
        "that this workspace trusts the key that signed it, and every file (nothing is "
        "imported or unpickled). Do it before giving a model from elsewhere to "
        "mlflow models serve, which runs the model's own entry file.",
    )
    verify.add_argument(
        "--model", required=True, metavar="REF", help=f"{reference_help}, runs:/RUN_ID/model or DIR"
    )
    verify.add_argument("--workspace", default=None, metavar="DIR", help=workspace_help)
    tracking_option(verify)
    verify.set_defaults(handler=_model_verify)

    trust = verbs.add_parser(
        "trust-key",
        help="trust the key that signed someone else's models (or list the trusted keys)",
        description="Trust a public key in this workspace: the models it signed then load "
        "here. Give the key (ed25519:<base64>, as --list prints it) or a model it signed "
        "(a directory, runs:/RUN_ID/model or a registered model reference). A model runs "
        "code when it loads: trust a key only if you trust whoever holds its private key.",
    )
    trust.add_argument("source", nargs="?", metavar="KEY_OR_MODEL")
    trust.add_argument("--list", action="store_true", help="list the trusted keys")
    trust.add_argument("--workspace", default=None, metavar="DIR", help=workspace_help)
    tracking_option(trust)
    trust.set_defaults(handler=_model_trust_key)


def _model_register(args: argparse.Namespace) -> int:
    from rich.console import Console

    from titanicml.registry import register_model
    from titanicml.registry.pickles import SOURCE_SHA256_TAG

    model = register_model(
        args.name,
        run_id=args.run,
        path=args.path,
        tracking_uri=args.tracking_uri,
        description=args.description,
        tags=dict(args.tag),
        model_type=args.model_type,
        sample_input=args.sample_input,
    )
    console = Console(highlight=False)
    origin = f"run {args.run}" if args.run else f"{args.path} (uploaded to run {model.run_id})"
    sha256 = model.tags.get(SOURCE_SHA256_TAG)
    if sha256:
        origin = (
            f"{args.path}, a pickle wrapped as an MLflow model (uploaded to run {model.run_id})"
        )
    console.print(
        f"Registered model [bold]{model.name}[/] version [bold]{model.version}[/] from {origin}",
        soft_wrap=True,
    )
    if sha256:
        _print_pickle_trust(console, model, args.tracking_uri)
    console.print(f"Source: {model.source}", soft_wrap=True)
    console.print(
        f"Use it as {model.reference}; name it: "
        f"titanicml model alias set {model.name} champion --version {model.version}",
        soft_wrap=True,
    )
    return 0


def _print_pickle_trust(console: Any, model: Any, tracking_uri: str | None) -> None:
    """Tell, once, that a pickle runs code, which file was trusted, and what was found."""
    from titanicml.registry.pickles import SIGNATURE_FROM_TAG, SOURCE_FILE_TAG, SOURCE_SHA256_TAG

    tags = model.tags
    columns = ", ".join(
        f"{c.get('name')} ({c.get('dtype')})"
        for c in (model.metadata or {}).get("input_columns", [])
    )
    console.print(
        f"Trusted {tags.get(SOURCE_FILE_TAG)} (sha256 "
        f"{tags.get(SOURCE_SHA256_TAG)}): loading a pickle runs code, so register only "
        "files you or someone you trust made. It was read through titanicml's allow-list and "
        "signed with this workspace's key: the registered version loads only with these "
        "bytes, and a changed file is refused.",
        soft_wrap=True,
    )
    console.print(
        f"Inputs: {columns} (from {tags.get(SIGNATURE_FROM_TAG)}); "
        "give other rows with --sample-input FILE",
        soft_wrap=True,
    )
    before = _earlier_version_of_file(model, tracking_uri)
    if before is not None:
        console.print(
            f"Note: this file changed since {before.reference} was registered from it "
            f"(sha256 {before.tags.get(SOURCE_SHA256_TAG)} then): make sure the "
            "change is one you made or expected",
            soft_wrap=True,
        )


def _earlier_version_of_file(model: Any, tracking_uri: str | None) -> Any:
    """Return the latest earlier version registered from the same file, if its bytes differ."""
    from titanicml.registry import list_versions
    from titanicml.registry.pickles import SOURCE_FILE_TAG, SOURCE_SHA256_TAG

    source = model.tags.get(SOURCE_FILE_TAG)
    earlier = [
        v
        for v in list_versions(model.name, tracking_uri)
        if v.version < model.version and v.tags.get(SOURCE_FILE_TAG) == source
    ]
    if earlier and earlier[-1].tags.get(SOURCE_SHA256_TAG) != model.tags.get(SOURCE_SHA256_TAG):
        return earlier[-1]
    return None


def _model_list(args: argparse.Namespace) -> int:
    from rich.console import Console

    from titanicml.registry import list_models
    from titanicml.store import resolve_tracking_uri

    console = Console(highlight=False)
    store = resolve_tracking_uri(args.tracking_uri)
    models = list_models(store)
    if not models:
        console.print(
            f"No registered model in {store}; register one with "
            "titanicml model register --name NAME --run RUN_ID",
            soft_wrap=True,
        )
        return 0
    table = compact_table(f"Registered models in {store}")
    table.add_column("name", no_wrap=True)
    table.add_column("latest", justify="right", no_wrap=True)
    table.add_column("versions", justify="right", no_wrap=True)
    table.add_column("aliases")
    table.add_column("updated (UTC)", no_wrap=True)
    table.add_column("description", ratio=1)
    for model in models:
        table.add_row(
            model.name,
            "-" if model.latest_version is None else str(model.latest_version),
            str(model.n_versions),
            ", ".join(f"{a}: {v}" for a, v in model.aliases.items()),
            model.updated_at[:16].replace("T", " "),
            model.description or "",
        )
    console.print(table)
    return 0


def _model_show(args: argparse.Namespace) -> int:
    import math

    from rich.console import Console

    from titanicml.registry import get_model

    model = get_model(args.reference, args.tracking_uri)
    if args.json:
        content = model.to_dict()
        if content["metrics"]:
            content["metrics"] = {
                k: None if isinstance(v, float) and math.isnan(v) else v
                for k, v in content["metrics"].items()
            }
        sys.stdout.write(json.dumps(content, indent=2, default=str) + "\n")
        return 0
    meta = model.metadata or {}
    console = Console(highlight=False)
    console.print(f"[bold]{model.reference}[/]", soft_wrap=True)
    rows = [
        ("aliases", ", ".join(model.aliases) or "-"),
        ("description", model.description or "-"),
        ("created (UTC)", model.created_at),
        ("source", model.source),
        ("uri", model.uri),
        ("run", model.run_id or "-"),
    ]
    if meta.get("model_type") == "custom_model":
        rows += [
            ("task", str(meta.get("task"))),
            ("estimator", f"{meta.get('estimator')} (a registered pickle)"),
            ("pickle", f"{meta.get('source_file')} (sha256 {meta.get('source_sha256')})"),
            ("inputs", f"from {meta.get('signature_from')}"),
        ]
    elif meta:
        rows += [
            (
                "task",
                f"{meta.get('task')} (target {meta.get('target')}, metric {meta.get('metric')})",
            ),
            ("best model", str(meta.get("best_estimator", "-"))),
            ("titanicml", str(meta.get("titanicml_version", "-"))),
        ]
    if model.tags:
        rows.append(("tags", ", ".join(f"{k}={v}" for k, v in sorted(model.tags.items()))))
    for label, value in rows:
        console.print(f"  {label:<14}{value}", soft_wrap=True)
    metrics = model.metrics or {}
    names = [k for k in metrics if not k.endswith("_std")]
    if names:
        table = compact_table("Cross-validated metrics")
        table.add_column("metric")
        table.add_column("mean", justify="right")
        table.add_column("std", justify="right")
        for name in names:
            table.add_row(name, cell(metrics[name]), cell(metrics.get(f"{name}_std")))
        console.print(table)
    return 0


def _model_alias_set(args: argparse.Namespace) -> int:
    from rich.console import Console

    from titanicml.registry import set_alias

    model = set_alias(args.name, args.alias, args.version, args.tracking_uri)
    Console(highlight=False).print(
        f"Alias [bold]{args.alias}[/] of {model.name} points at version {model.version}: "
        f"use it as {model.name}@{args.alias}",
        soft_wrap=True,
    )
    return 0


def _model_alias_delete(args: argparse.Namespace) -> int:
    from rich.console import Console

    from titanicml.registry import delete_alias

    version = delete_alias(args.name, args.alias, args.tracking_uri)
    Console(highlight=False).print(
        f"Deleted alias [bold]{args.alias}[/] of {args.name} (it pointed at version {version})",
        soft_wrap=True,
    )
    return 0


def _model_export(args: argparse.Namespace) -> int:
    from rich.console import Console

    from titanicml.registry import export_model

    path = export_model(args.model, args.output, args.tracking_uri)
    Console(highlight=False).print(
        f"Exported {args.model} to {path} (every file matches its manifest)", soft_wrap=True
    )
    return 0


def _model_verify(args: argparse.Namespace) -> int:
    from rich.console import Console

    from titanicml.model.manifest import list_trusted_keys
    from titanicml.model.signing import fingerprint
    from titanicml.registry.local import verify_model

    manifest = verify_model(args.model, args.tracking_uri, args.workspace)
    key = str(manifest["public_key"])
    origin = list_trusted_keys(args.workspace)[key]
    Console(highlight=False).print(
        f"{args.model}: signed by {key} (fingerprint {fingerprint(key)}, trusted: {origin}); "
        f"all {len(manifest['sha256'])} files match the signed manifest",
        soft_wrap=True,
    )
    return 0


def _model_trust_key(args: argparse.Namespace) -> int:
    from rich.console import Console

    from titanicml.config import keys_dir
    from titanicml.exceptions import ConfigError
    from titanicml.model.manifest import list_trusted_keys, trust_key
    from titanicml.model.signing import KEY_PREFIX, fingerprint

    console = Console(highlight=False)
    if args.list:
        keys = list_trusted_keys(args.workspace)
        if not keys:
            console.print(
                f"No trusted key in {keys_dir(args.workspace)}: the first model saved here "
                "makes this workspace's signing key",
                soft_wrap=True,
            )
        for key, origin in keys.items():
            console.print(f"{fingerprint(key)}  {key}  {origin}", soft_wrap=True)
        return 0
    if not args.source:
        raise ConfigError("give a KEY (ed25519:<base64>) or a model to trust-key, or --list")
    source = args.source.strip()
    if not source.startswith(KEY_PREFIX):
        from titanicml.registry import local_model_dir

        source = str(local_model_dir(source, args.tracking_uri))
    trusted = trust_key(source, args.workspace)
    console.print(
        f"Trusted key {trusted.key} (fingerprint {trusted.fingerprint}) in {trusted.path}: "
        "the models it signs now load in this workspace",
        soft_wrap=True,
    )
    return 0
