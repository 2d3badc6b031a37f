"""``titanicml online-endpoint ...``: local endpoints (create, update...), serve, keys, invoke."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from titanicml.cli._args import (  # add_azure_options, azure_workspace: used from here too
    EXIT_USER_ERROR,
    add_azure_options,
    azure_workspace,
    workspace_option,
)
from titanicml.cli.monitor import add_capture_options
from titanicml.serve.limits import ServerLimits

DEFAULT_ENDPOINT = "titanic-endpoint"
SERVE_URL = "http://127.0.0.1:8080/score"
#: The header that names (and picks) a deployment, as Azure ML's endpoints have it.
DEPLOYMENT_HEADER = "azureml-model-deployment"


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add the ``online-endpoint`` group to the CLI."""
    group = commands.add_parser(
        "online-endpoint",
        help="local online endpoints (keys, traffic, deployments), as az ml has them",
        description="Online endpoints as Azure ML manages them, on this machine: create one "
        "from endpoint.yml, add deployments (titanicml online-deployment), split traffic, "
        "call it with its key. 'serve' runs one model in the foreground instead.",
    )
    verbs = group.add_subparsers(dest="verb", metavar="VERB", required=True)
    _add_local_verbs(verbs)
    _add_serve(verbs)
    _add_key_verbs(verbs)
    invoke = verbs.add_parser(
        "invoke",
        help="send a request file to an endpoint and print its answer",
        description="POST a request file to an endpoint with its key (az ml online-endpoint "
        "invoke). A local endpoint made by 'create' is called at its scoring URI; "
        "otherwise --url (default that of 'serve').",
    )
    invoke.add_argument("--request-file", required=True, help="JSON (or .csv) request body")
    invoke.add_argument("--name", "-n", default=DEFAULT_ENDPOINT, help="endpoint to call")
    invoke.add_argument(
        "--deployment-name", "-d", default=None, help="send it to this deployment, not by traffic"
    )
    invoke.add_argument("--url", default=None, help="scoring URI (default: the endpoint's)")
    invoke.add_argument("--key", default=None, help="key to send (default: the endpoint's)")
    workspace_option(invoke)
    invoke.set_defaults(handler=_invoke)


def _add_local_verbs(verbs: argparse._SubParsersAction) -> None:
    create = verbs.add_parser(
        "create",
        help="create a local endpoint from endpoint.yml (or one on Azure ML: --target azure)",
        description="Create a named local endpoint from endpoint.yml (Azure ML's "
        "managedOnlineEndpoint schema, auth_mode: key): its keys are made and its router "
        "starts in the background. Add a deployment next: titanicml online-deployment "
        "create -f deployment.yml --all-traffic. With --target azure, create the file's "
        "endpoint on Azure ML (--dry-run: only validate it with azure-ai-ml's loader), or "
        "with --model an endpoint and a deployment for that model.",
    )
    create.add_argument("--file", "-f", default=None, help="endpoint.yml")
    create.add_argument("--name", "-n", default=None, help="endpoint name (overrides the file's)")
    create.add_argument(
        "--target",
        choices=["local", "azure"],
        default="local",
        help="local (default): this machine; azure: Azure ML (-f endpoint.yml, or --model)",
    )
    create.add_argument(
        "--port", type=int, default=0, help="local router's port on 127.0.0.1 (default: a free one)"
    )
    create.add_argument(
        "--model",
        default=None,
        help="with --target azure: titanic-model@champion, titanic-model:3, runs:/ID/model",
    )
    create.add_argument(
        "--deployment-name", default="blue", help="with --target azure: the deployment's name"
    )
    create.add_argument(
        "--instance-type", default=None, help="with --target azure: VM size (Standard_DS3_v2)"
    )
    create.add_argument(
        "--instance-count", type=int, default=1, help="with --target azure: instances"
    )
    add_azure_options(create)
    workspace_option(create)
    create.set_defaults(handler=_create)

    update = verbs.add_parser(
        "update",
        help="change a local endpoint's traffic and mirror traffic",
        description="Change how a local endpoint splits its requests between deployments "
        '(--traffic "blue=90 green=10", adding up to 100) and which share is copied to '
        'another deployment whose answers are discarded (--mirror-traffic "green=10"). '
        "No request is dropped. Also restarts a router that stopped.",
    )
    update.add_argument("--name", "-n", default=DEFAULT_ENDPOINT, help="endpoint name")
    update.add_argument(
        "--traffic", default=None, help='percent per deployment, e.g. "blue=90 green=10"'
    )
    update.add_argument(
        "--mirror-traffic",
        default=None,
        help='percent copied to a deployment without live traffic, e.g. "green=10" ("" none)',
    )
    workspace_option(update)
    update.set_defaults(handler=_update)

    listing = verbs.add_parser(
        "list",
        help="list the local endpoints (JSON)",
        description="Print the local endpoints of the workspace as JSON.",
    )
    workspace_option(listing)
    listing.set_defaults(handler=_list)

    show = verbs.add_parser(
        "show",
        help="show a local endpoint: scoring URI, state, traffic (JSON)",
        description="Print a local endpoint as az ml online-endpoint show does: scoring "
        "URI, provisioning state (Failed if its router stopped), traffic, mirror traffic.",
    )
    show.add_argument("--name", "-n", default=DEFAULT_ENDPOINT, help="endpoint name")
    show.add_argument(
        "--query", default=None, metavar="FIELD", help="print one field only, e.g. scoring_uri"
    )
    workspace_option(show)
    show.set_defaults(handler=_show)

    delete = verbs.add_parser(
        "delete",
        help="delete a local endpoint, its deployments and their processes",
        description="Stop the endpoint's router and every deployment's instances (each "
        "finishes its requests), and remove the endpoint's keys, records and logs.",
    )
    delete.add_argument("--name", "-n", default=DEFAULT_ENDPOINT, help="endpoint name")
    delete.add_argument(
        "--yes", "-y", action="store_true", help="accepted for az ml compatibility; no prompt"
    )
    workspace_option(delete)
    delete.set_defaults(handler=_delete)

    logs = verbs.add_parser(
        "get-logs",
        help="print the last requests the endpoint answered (JSON lines)",
        description="Print the request log of every deployment of a local endpoint, merged "
        "by time: each line names its deployment; copies of mirror traffic have "
        '"mirror": true. A deployment\'s console output: online-deployment get-logs.',
    )
    logs.add_argument("--name", "-n", default=DEFAULT_ENDPOINT, help="endpoint name")
    logs.add_argument("--lines", "-l", type=int, default=100, help="how many (default 100)")
    workspace_option(logs)
    logs.set_defaults(handler=_logs)


def _add_serve(verbs: argparse._SubParsersAction) -> None:
    serve = verbs.add_parser(
        "serve",
        help="serve one model on 127.0.0.1 in the foreground (Ctrl-C stops it)",
        description="Serve one model with key auth in the foreground: the one-command "
        "endpoint. For named endpoints with deployments and traffic, use create.",
    )
    serve.add_argument(
        "--model",
        required=True,
        help="titanic-model@champion, titanic-model:3, runs:/ID/model or a folder",
    )
    serve.add_argument("--name", default=DEFAULT_ENDPOINT, help="endpoint name (keys, log)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    serve.add_argument(
        "--auth", choices=["key", "none"], default="key", help="key (default) or none"
    )
    serve.add_argument(
        "--key", default=None, help="the endpoint's one key (replaces its stored keys)"
    )
    serve.add_argument("--max-body-bytes", type=int, default=None, help="default 2 MiB")
    serve.add_argument("--request-log", default=None, help="request log file (JSON lines)")
    add_capture_options(serve)
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
    workspace_option(serve)
    serve.add_argument("--tracking-uri", default=None, help="MLflow store of the model")
    serve.set_defaults(handler=_serve)


def _add_key_verbs(verbs: argparse._SubParsersAction) -> None:
    credentials = verbs.add_parser(
        "get-credentials",
        help="print the endpoint's two keys",
        description="Print the endpoint's primary and secondary keys (JSON), as az ml "
        "online-endpoint get-credentials; made on first use.",
    )
    credentials.add_argument("--name", "-n", default=DEFAULT_ENDPOINT, help="endpoint name")
    credentials.add_argument(
        "--query", choices=["primaryKey", "secondaryKey"], default=None, help="print one key only"
    )
    workspace_option(credentials)
    credentials.set_defaults(handler=_credentials)

    regenerate = verbs.add_parser(
        "regenerate-keys",
        help="replace one of the keys",
        description="Replace the primary or the secondary key with a new one; a running "
        "endpoint takes it within a second, the other key keeps working.",
    )
    regenerate.add_argument("--name", "-n", default=DEFAULT_ENDPOINT, help="endpoint name")
    regenerate.add_argument(
        "--key-type", choices=["primary", "secondary"], required=True, help="the key to replace"
    )
    workspace_option(regenerate)
    regenerate.set_defaults(handler=_regenerate)


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
    from titanicml.exceptions import ConfigError

    if args.target == "azure":
        if args.model is None and args.file is None:
            raise ConfigError(
                "online-endpoint create --target azure needs -f endpoint.yml, or --model "
                "(titanic-model@champion, titanic-model:3, runs:/ID/model)"
            )
        return _create_on_azure(args) if args.model else _create_file_on_azure(args)
    if args.file is None:
        raise ConfigError(
            "online-endpoint create needs -f endpoint.yml (name: titanic-endpoint, "
            "auth_mode: key); --model is for --target azure"
        )
    if args.model is not None:
        raise ConfigError(
            "a local endpoint takes its models from its deployments: leave out --model and "
            "run titanicml online-deployment create -f deployment.yml --all-traffic"
        )
    from titanicml.deploy.local.endpoints import create_endpoint, show_endpoint

    record = create_endpoint(args.file, args.name, args.workspace, args.port)
    print(
        f"endpoint {record.name} created at {record.scoring_uri}; add a deployment: "
        "titanicml online-deployment create -f deployment.yml --all-traffic",
        file=sys.stderr,
    )
    print_json(show_endpoint(record.name, args.workspace))
    return 0


def print_json(content: object, query: str | None = None) -> None:
    """Print JSON as az ml does (or one field of it, raw, with ``query``)."""
    from titanicml.exceptions import ConfigError

    if query is not None:
        if not isinstance(content, dict) or query not in content:
            fields = ", ".join(content) if isinstance(content, dict) else ""
            raise ConfigError(f"no field {query!r} to print; the fields are: {fields}")
        value = content[query]
        print(value if isinstance(value, str) else json.dumps(value))
        return
    print(json.dumps(content, indent=2))


def _create_on_azure(args: argparse.Namespace) -> int:
    from titanicml.deploy.azure import create_online_endpoint

    result = create_online_endpoint(
        args.model,
        args.name or DEFAULT_ENDPOINT,
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


def _create_file_on_azure(args: argparse.Namespace) -> int:
    from titanicml.deploy.azure import create_online_endpoint_from_file

    entity = create_online_endpoint_from_file(
        args.file,
        args.name,
        dry_run=args.dry_run,
        workspace=azure_workspace(args),
        on_step=lambda message: print(message, file=sys.stderr, flush=True),
    )
    report_file(entity, "online endpoint", args.dry_run)
    return 0


def report_file(entity: object, kind: str, dry_run: bool) -> None:
    """Say what an Azure ML file made, or (dry run) that the SDK's loader took it."""
    name = getattr(entity, "name", "")
    if dry_run:
        print(f"valid Azure ML {kind} {name} (loaded by azure-ai-ml); nothing created: --dry-run")
    else:
        print(f"Azure ML {kind} {name} created", file=sys.stderr)


def _update(args: argparse.Namespace) -> int:
    from titanicml.deploy.local.endpoints import describe, endpoint_paths, update_endpoint

    record = update_endpoint(args.name, args.traffic, args.mirror_traffic, args.workspace)
    print(
        f"endpoint {record.name}: traffic {record.traffic or '{}'}, "
        f"mirror traffic {record.mirror_traffic or '{}'}",
        file=sys.stderr,
    )
    print_json(describe(endpoint_paths(args.name, args.workspace), record))
    return 0


def _list(args: argparse.Namespace) -> int:
    from titanicml.deploy.local.endpoints import list_endpoints

    print_json(list_endpoints(args.workspace))
    return 0


def _show(args: argparse.Namespace) -> int:
    from titanicml.deploy.local.endpoints import show_endpoint

    print_json(show_endpoint(args.name, args.workspace), args.query)
    return 0


def _delete(args: argparse.Namespace) -> int:
    from titanicml.deploy.local.endpoints import delete_endpoint

    delete_endpoint(args.name, args.workspace)
    print(f"endpoint {args.name} deleted; no process of it runs", file=sys.stderr)
    return 0


def _logs(args: argparse.Namespace) -> int:
    from titanicml.deploy.local.endpoints import endpoint_logs

    for entry in endpoint_logs(args.name, max(args.lines, 1), args.workspace):
        print(json.dumps(entry, separators=(",", ":")))
    return 0


def _serve(args: argparse.Namespace) -> int:
    from titanicml.serve.server import endpoint_config, listen, require_serving_packages, serve

    require_serving_packages()
    sock = listen(args.host, args.port)  # a port in use is said at once, before the model loads
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
        retention_days=args.retention_days,
        sampling_rate=args.sampling_rate,
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
    serve(config, limits=limits, sock=sock)
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
    from titanicml.deploy.local.endpoints import endpoint_paths
    from titanicml.deploy.local.state import read_endpoint
    from titanicml.exceptions import DataError
    from titanicml.serve.auth import ENV_KEY, read_keys
    from titanicml.serve.server import invoke

    path = Path(args.request_file)
    if not path.is_file():
        raise DataError(f"no request file at {path}; write the JSON body to send into a file")
    url = args.url
    if url is None:
        record = read_endpoint(endpoint_paths(args.name, args.workspace))
        url = record.scoring_uri if record is not None else SERVE_URL
    key = args.key or os.environ.get(ENV_KEY) or read_keys(args.name, args.workspace).primary
    content_type = "text/csv" if path.suffix.lower() == ".csv" else "application/json"
    pin = {DEPLOYMENT_HEADER: args.deployment_name} if args.deployment_name else None
    answer = invoke(url, path.read_bytes(), key=key, content_type=content_type, headers=pin)
    print(json.dumps(answer.body, indent=2))
    if answer.status >= 400:
        message = answer.body.get("error", {}).get("message", answer.body)
        print(
            f"titanicml: error: the endpoint answered {answer.status}: {message}", file=sys.stderr
        )
        return EXIT_USER_ERROR
    served = answer.headers.get(DEPLOYMENT_HEADER)
    if served:
        print(f"answered by deployment {served}", file=sys.stderr)
    return 0
