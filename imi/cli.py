"""The ``imi`` command (design.md "Contracts"): serve, demo, admin, log, verifier."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import httpx
import typer

from kernel.accounts import Role, create_token
from kernel.errors import ImiError
from kernel.settings import ALL_PARTIES, Settings

app = typer.Typer(help="IMI - Intelligent Multifunctional Identity", no_args_is_help=True)
admin_app = typer.Typer(help="Administration", no_args_is_help=True)
log_app = typer.Typer(help="The append-only log: receipts and monitoring", no_args_is_help=True)
app.add_typer(admin_app, name="admin")
verifier_app = typer.Typer(help="Verifier tools: offline trust bundles", no_args_is_help=True)
app.add_typer(log_app, name="log")
app.add_typer(verifier_app, name="verifier")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    only: Annotated[str | None, typer.Option(help="Run one party: issuer|verifier|wallet|ledger")] = None,
) -> None:
    """Run the service (all parties, or one with --only)."""
    import uvicorn

    from imi.app import create_app

    if only is not None and only not in ALL_PARTIES:
        raise typer.BadParameter(f"--only must be one of {', '.join(ALL_PARTIES)}")
    settings = Settings(parties=(only,) if only else ALL_PARTIES)
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning", access_log=False)


@app.command()
def demo() -> None:
    """The whole story in one process on a temporary database, printing each step."""
    from imi.demo import run_demo

    raise typer.Exit(run_demo(print))


@admin_app.command("token")
def admin_token(
    role: Annotated[Role, typer.Option(help="admin|officer|notary|auditor")],
    name: Annotated[str, typer.Option(help="Who the token is for")],
) -> None:
    """Create a service account and print its bearer token (shown once)."""
    from imi.app import build_services

    services = build_services(Settings())
    typer.echo(create_token(services.engine, role=role, name=name))


def _read_vkey(vkey: str) -> str:
    path = Path(vkey)
    return path.read_text().strip() if "+" not in vkey and path.exists() else vkey.strip()


@log_app.command("verify-receipt")
def verify_receipt_cmd(
    file: Annotated[Path, typer.Argument(help="Receipt JSON file ('-' for stdin)")],
    vkey: Annotated[str, typer.Option(help="The log's verifier key, or a file holding it")],
) -> None:
    """Check an anchor receipt offline against the log's verifier key."""
    from ledger.note import NoteVerifier
    from ledger.receipt import Receipt, verify_receipt

    try:
        text = sys.stdin.read() if str(file) == "-" else file.read_text()
        receipt = Receipt.model_validate_json(text)
        checkpoint = verify_receipt(receipt, log_verifier=NoteVerifier.from_vkey(_read_vkey(vkey)))
    except (ImiError, ValueError, OSError) as exc:
        typer.echo(f"INVALID: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(
        f"OK: entry {receipt.index} ({receipt.event_type}) is in {checkpoint.origin} at size {checkpoint.size}"
    )


@log_app.command("monitor")
def monitor_cmd(
    url: Annotated[str, typer.Option(help="The log's URL prefix, e.g. http://localhost:8000/log")],
    vkey: Annotated[str, typer.Option(help="The log's verifier key, or a file holding it")],
    interval: Annotated[float, typer.Option(help="Seconds between polls")] = 5.0,
    count: Annotated[int, typer.Option(help="Stop after this many polls (0 = forever)")] = 0,
    state: Annotated[Path | None, typer.Option(help="File remembering the last checkpoint seen")] = None,
) -> None:
    """Follow a log; exit non-zero, loudly, on a bad signature, a fork or a rewrite."""
    from ledger.monitor import observe
    from ledger.note import Checkpoint, NoteVerifier, parse_checkpoint, parse_note

    base = url.rstrip("/")
    if not base.endswith("/log"):
        base += "/log"
    verifier = NoteVerifier.from_vkey(_read_vkey(vkey))
    previous: Checkpoint | None = None
    if state is not None and state.exists():
        previous = parse_checkpoint(parse_note(state.read_text()).text)
    polls = 0
    with httpx.Client(timeout=10) as client:
        while True:
            try:
                seen = observe(client, base, verifier, previous)
            except ImiError as exc:
                typer.secho(f"ALERT [{exc.slug}]: {exc.detail}", err=True, fg=typer.colors.RED, bold=True)
                raise typer.Exit(2) from exc
            except httpx.HTTPError as exc:
                typer.secho(f"log unreachable: {exc}", err=True, fg=typer.colors.YELLOW)
            else:
                if previous is None or seen.checkpoint.size != previous.size:
                    typer.echo(
                        json.dumps(
                            {
                                "origin": seen.checkpoint.origin,
                                "size": seen.checkpoint.size,
                                "root": seen.checkpoint.root_hash.hex(),
                                "consistent": True,
                            }
                        )
                    )
                previous = seen.checkpoint
                if state is not None:
                    state.write_text(seen.note)
            polls += 1
            if count and polls >= count:
                return
            time.sleep(interval)


@verifier_app.command("sync")
def verifier_sync(
    url: Annotated[
        str, typer.Option(help="Base URL of the IMI verifier service, e.g. http://localhost:8000")
    ],
    out: Annotated[Path, typer.Option(help="Where to write the bundle")],
    max_age: Annotated[int, typer.Option(help="Seconds the bundle stays usable")] = 86_400,
    key_thumbprint: Annotated[str | None, typer.Option(help="Expected signer key (JWK thumbprint)")] = None,
) -> None:
    """Download a signed offline trust bundle for a kiosk (start it with IMI_VERIFIER_BUNDLE=FILE)."""
    from kernel.did import key_from_document
    from kernel.jose import decode_jws_unverified, jwk_thumbprint
    from verifier.bundle import open_bundle

    base = url.rstrip("/")
    with httpx.Client(timeout=30) as client:
        resp = client.get(f"{base}/verifier/bundle", params={"max_age": max_age})
        if resp.status_code != 200:
            typer.secho(
                f"the verifier answered {resp.status_code}: {resp.text[:300]}", err=True, fg=typer.colors.RED
            )
            raise typer.Exit(1)
        token = resp.text
        try:
            bundle = open_bundle(token, pinned_thumbprint=key_thumbprint, now=int(time.time()))
            if (
                key_thumbprint is None
            ):  # no pin given: the signer must at least be the service's published key
                doc = client.get(f"{base}/verifier/did.json").json()
                kid = str(decode_jws_unverified(token).header["kid"])
                if jwk_thumbprint(key_from_document(doc, kid)) != bundle.signer_thumbprint:
                    raise typer.BadParameter("the bundle is not signed by the service's verifier key")
        except ImiError as exc:
            typer.secho(f"INVALID bundle [{exc.slug}]: {exc.detail}", err=True, fg=typer.colors.RED)
            raise typer.Exit(1) from exc
    out.write_text(token)
    typer.echo(
        json.dumps(
            {
                "out": str(out),
                "issuers": list(bundle.trusted_issuers),
                "status_lists": len(bundle.status_lists),
                "expires_at": bundle.expires_at,
                "signer_thumbprint": bundle.signer_thumbprint,
            }
        )
    )


def main() -> None:
    app()


if __name__ == "__main__":
    main()
