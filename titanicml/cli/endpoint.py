"""``titanicml online-endpoint ...``: serve a model with key auth, show keys, call it."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from titanicml.cli._args import EXIT_USER_ERROR
from titanicml.serve.limits import ServerLimits

DEFAULT_ENDPOINT = "titanic-endpoint"


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add the ``online-endpoint`` group to the CLI."""
    group = commands.add_parser(
        "online-endpoint",
        help="serve a model over HTTP with key auth, and call it",
        description="A local online endpoint, as Azure ML's managed online endpoints.",
    )
    verbs = group.add_subparsers(dest="verb", metavar="VERB", required=True)

    serve = verbs.add_parser("serve", help="serve a model on 127.0.0.1 (Ctrl-C stops it)")
    serve.add_argument(
        "--model",
        required=True,
        help="titanic-model@champion, titanic-model:3, runs:/ID/model or a folder",
    )
    serve.add_argument("--name", default=DEFAULT_ENDPOINT, help="endpoint name (keys, log)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--auth", choices=["key", "none"], default="key")
    serve.add_argument(
        "--key", default=None, help="the endpoint's one key (replaces its stored keys)"
    )
    serve.add_argument("--max-body-bytes", type=int, default=None, help="default 2 MiB")
    serve.add_argument("--request-log", default=None, help="request log file (JSON lines)")
    limits = ServerLimits()
    serve.add_argument(
        "--max-connections",
        type=int,
        default=limits.max_connections,
        metavar="N",
        help="open connections at once; past it idle ones are closed, else a 503 "
        f"(default {limits.max_connections}, lowered to fit 'ulimit -n')",
    )
    serve.add_argument(
        "--header-timeout",
        type=float,
        default=limits.header_timeout,
        metavar="SECONDS",
        help=f"time for a request's headers to arrive (default {limits.header_timeout:g})",
    )
    serve.add_argument(
        "--body-timeout",
        type=float,
        default=limits.body_timeout,
        metavar="SECONDS",
        help=f"time for a request's body to arrive (default {limits.body_timeout:g})",
    )
    serve.add_argument(
        "--keep-alive-timeout",
        type=float,
        default=limits.keep_alive_timeout,
        metavar="SECONDS",
        help=f"time an idle connection stays open (default {limits.keep_alive_timeout:g})",
    )
    serve.add_argument("--workspace", default=None)
    serve.add_argument("--tracking-uri", default=None)
    serve.set_defaults(handler=_serve)

    credentials = verbs.add_parser("get-credentials", help="print the endpoint's two keys")
    credentials.add_argument("--name", default=DEFAULT_ENDPOINT)
    credentials.add_argument(
        "--query", choices=["primaryKey", "secondaryKey"], default=None, help="print one key only"
    )
    credentials.add_argument("--workspace", default=None)
    credentials.set_defaults(handler=_credentials)

    regenerate = verbs.add_parser("regenerate-keys", help="replace one of the keys")
    regenerate.add_argument("--name", default=DEFAULT_ENDPOINT)
    regenerate.add_argument("--key-type", choices=["primary", "secondary"], required=True)
    regenerate.add_argument("--workspace", default=None)
    regenerate.set_defaults(handler=_regenerate)

    invoke = verbs.add_parser("invoke", help="send a request file to an endpoint")
    invoke.add_argument("--request-file", required=True, help="JSON (or .csv) request body")
    invoke.add_argument("--name", default=DEFAULT_ENDPOINT, help="endpoint whose key to use")
    invoke.add_argument("--url", default="http://127.0.0.1:8080/score")
    invoke.add_argument("--key", default=None, help="key to send (default: the endpoint's)")
    invoke.add_argument("--workspace", default=None)
    invoke.set_defaults(handler=_invoke)

    create = verbs.add_parser(
        "create",
        help="create a managed online endpoint on Azure ML (key auth, all traffic)",
        description="Create a managed online endpoint with key auth and a deployment "
        "taking all its traffic on Azure ML (az ml online-endpoint create + online-"
        "deployment create --all-traffic); --dry-run writes the YAML files instead.",
    )
    create.add_argument("--target", required=True, choices=["azure"], help="where to deploy")
    create.add_argument("--name", default=DEFAULT_ENDPOINT, help="endpoint name")
    create.add_argument(
        "--model", required=True, help="titanic-model@champion, titanic-model:3, runs:/ID/model"
    )
    create.add_argument("--deployment-name", default="blue")
    create.add_argument("--instance-type", default=None, help="VM size (default Standard_DS3_v2)")
    create.add_argument("--instance-count", type=int, default=1)
    add_azure_options(create)
    create.set_defaults(handler=_create)


def add_azure_options(parser: argparse.ArgumentParser) -> None:
    """Add the options shared by the ``create`` verbs that deploy to Azure ML."""
    parser.add_argument(
        "--dry-run", action="store_true", help="write the YAML files, create nothing"
    )
    parser.add_argument("--output-dir", default=None, metavar="DIR", help="folder for --dry-run")
    parser.add_argument("--subscription", default=None, help="default: AZURE_SUBSCRIPTION_ID")
    parser.add_argument("--resource-group", default=None, help="default: AZURE_RESOURCE_GROUP")
    parser.add_argument(
        "--workspace-name", default=None, help="default: AZUREML_WORKSPACE_NAME or config.json"
    )
    parser.add_argument("--tracking-uri", default=None, help="MLflow store of the model")


def azure_workspace(args: argparse.Namespace) -> object | None:
    """Resolve the Azure workspace of a ``create`` verb (``None`` for a dry run)."""
    if args.dry_run:
        return None
    from titanicml.backends.azure.workspace import resolve_workspace

    return resolve_workspace(args.subscription, args.resource_group, args.workspace_name)


def report_deployment(result: object, kind: str) -> None:
    """Print what a ``create`` verb wrote or created."""
    files = getattr(result, "files", {})
    if not getattr(result, "created", False):
        for key, path in files.items():
            print(f"{key}: {path}")
        return
    endpoint = getattr(result, "endpoint", None)
    print(f"{kind} endpoint {getattr(endpoint, 'name', '')} created", file=sys.stderr)
    uri = getattr(result, "scoring_uri", None)
    if uri:
        print(uri)


def _create(args: argparse.Namespace) -> int:
    from titanicml.deploy.azure import create_online_endpoint

    result = create_online_endpoint(
        args.model,
        args.name,
        args.deployment_name,
        instance_type=args.instance_type,
        instance_count=args.instance_count,
        dry_run=args.dry_run,
        output_dir=args.output_dir,
        workspace=azure_workspace(args),
        tracking_uri=args.tracking_uri,
        on_step=lambda message: print(message, file=sys.stderr, flush=True),
    )
    report_deployment(result, "online")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from titanicml.serve.server import endpoint_config, require_serving_packages, serve

    require_serving_packages()
    asked = ServerLimits(
        max_connections=args.max_connections,
        header_timeout=args.header_timeout,
        body_timeout=args.body_timeout,
        keep_alive_timeout=args.keep_alive_timeout,
    )
    config = endpoint_config(
        args.model,
        name=args.name,
        auth=args.auth,
        key=args.key,
        workspace=args.workspace,
        tracking_uri=args.tracking_uri,
        request_log=args.request_log,
        max_body_bytes=args.max_body_bytes,
    )
    limits = asked.within_file_limit()
    if limits.max_connections < asked.max_connections:
        print(
            f"titanicml: warning: the open-file limit leaves room for "
            f"{limits.max_connections} connections, not {asked.max_connections}; "
            "raise it with 'ulimit -n' to serve more at once",
            file=sys.stderr,
        )
    auth = (
        f"key auth: titanicml online-endpoint get-credentials --name {args.name}"
        if config.keys
        else "no auth"
    )
    print(
        f"Serving {config.model_name}:{config.model_version} at "
        f"http://{args.host}:{args.port}/score ({auth}; at most {limits.max_connections} "
        "connections); Ctrl-C stops it",
        file=sys.stderr,
        flush=True,
    )
    serve(config, host=args.host, port=args.port, limits=limits)
    return 0


def _credentials(args: argparse.Namespace) -> int:
    from titanicml.exceptions import ConfigError
    from titanicml.serve.auth import read_keys

    keys = read_keys(args.name, args.workspace).to_dict()
    if args.query is None:
        print(json.dumps(keys, indent=2))
        return 0
    if keys[args.query] is None:
        raise ConfigError(
            f"endpoint {args.name!r} has no secondary key: it was started with one key "
            "(--key or TITANICML_ENDPOINT_KEY); make one with 'titanicml online-endpoint "
            f"regenerate-keys --name {args.name} --key-type secondary'"
        )
    print(keys[args.query])
    return 0


def _regenerate(args: argparse.Namespace) -> int:
    from titanicml.serve.auth import regenerate_key

    regenerate_key(args.name, args.key_type, args.workspace)
    print(f"the {args.key_type} key of {args.name} was replaced", file=sys.stderr)
    return 0


def _invoke(args: argparse.Namespace) -> int:
    from titanicml.exceptions import DataError
    from titanicml.serve.auth import ENV_KEY, read_keys
    from titanicml.serve.server import invoke

    path = Path(args.request_file)
    if not path.is_file():
        raise DataError(f"no request file at {path}; write the JSON body to send into a file")
    key = args.key or os.environ.get(ENV_KEY) or read_keys(args.name, args.workspace).primary
    content_type = "text/csv" if path.suffix.lower() == ".csv" else "application/json"
    answer = invoke(args.url, path.read_bytes(), key=key, content_type=content_type)
    print(json.dumps(answer.body, indent=2))
    if answer.status >= 400:
        message = answer.body.get("error", {}).get("message", answer.body)
        print(
            f"titanicml: error: the endpoint answered {answer.status}: {message}", file=sys.stderr
        )
        return EXIT_USER_ERROR
    return 0
