"""HTTP face of the log: C2SP tlog-tiles reads, JSON proofs, notarization. Thin: all logic is in ``LogService``."""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from kernel.accounts import Role, require_role
from kernel.errors import MalformedInput
from kernel.web import PrincipalDep, read_body
from ledger.commitment import EventType, decode_leaf
from ledger.receipt import Receipt
from ledger.service import LogService
from ledger.tiles import parse_tile_path

router = APIRouter(prefix="/log", tags=["log"])
IMMUTABLE = "public, max-age=31536000, immutable"
MAX_QUERY_INT = 2**63 - 1


def get_log(request: Request) -> LogService:
    service: LogService = request.app.state.log
    return service


LogDep = Annotated[LogService, Depends(get_log)]
Index = Annotated[int, Query(ge=0, le=MAX_QUERY_INT)]


class NotarizeRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    event_type: EventType = EventType.NOTARIZATION
    object_hash: str = Field(pattern=r"^[0-9a-fA-F]{64}$", description="SHA-256 of the object, hex")


class Pending(BaseModel):
    model_config = ConfigDict(frozen=True)
    status: str = "pending"
    event_type: str
    salt: str
    object_hash: str
    commitment: str


class ProofResponse(BaseModel):
    model_config = ConfigDict(frozen=True)
    tree_size: int
    root_hash: str
    proof: list[str]
    index: int | None = None
    first: int | None = None


class EntryResponse(BaseModel):
    model_config = ConfigDict(frozen=True)
    index: int
    event_type: str
    commitment: str
    leaf_input: str


@router.get(
    "/checkpoint", response_class=PlainTextResponse, summary="Latest signed checkpoint (C2SP tlog-checkpoint)"
)
def checkpoint(log: LogDep) -> Response:
    return PlainTextResponse(log.latest().note, headers={"Cache-Control": "no-cache"})


@router.get(
    "/vkey", response_class=PlainTextResponse, summary="The log's note verifier key (C2SP signed-note)"
)
def vkey(log: LogDep) -> Response:
    return PlainTextResponse(log.verifier.vkey + "\n", headers={"Cache-Control": "public, max-age=3600"})


@router.get("/tile/{level}/{path:path}", summary="C2SP tlog-tiles hash tile or entry bundle")
def tile(level: str, path: str, log: LogDep) -> Response:
    tid = parse_tile_path(level, path)
    data = log.tile(tid)
    cache = "public, max-age=60" if tid.is_partial else IMMUTABLE
    return Response(data, media_type="application/octet-stream", headers={"Cache-Control": cache})


@router.get("/proof/inclusion", response_model=ProofResponse, summary="RFC 9162 inclusion proof")
def inclusion(log: LogDep, index: Index, tree_size: Index) -> ProofResponse:
    proof = log.inclusion_proof(index, tree_size)
    return ProofResponse(
        tree_size=tree_size,
        root_hash=log.root_at(tree_size).hex(),
        proof=[h.hex() for h in proof],
        index=index,
    )


@router.get("/proof/consistency", response_model=ProofResponse, summary="RFC 9162 consistency proof")
def consistency(log: LogDep, first: Index, second: Index) -> ProofResponse:
    proof = log.consistency_proof(first, second)
    return ProofResponse(
        tree_size=second, root_hash=log.root_at(second).hex(), proof=[h.hex() for h in proof], first=first
    )


@router.get(
    "/entries/{index}", response_model=EntryResponse, summary="One leaf (a commitment, never personal data)"
)
def entry(index: int, log: LogDep) -> EntryResponse:
    if not 0 <= index <= MAX_QUERY_INT:
        raise MalformedInput("index out of range", slug="index-out-of-range")
    leaf = log.leaf(index)
    parsed = decode_leaf(leaf)
    return EntryResponse(
        index=index,
        event_type=parsed.event_type,
        commitment=parsed.commitment.hex(),
        leaf_input=base64.b64encode(leaf).decode(),
    )


@router.post(
    "/entries",
    response_model=Receipt | Pending,
    status_code=202,
    summary="Notarize a hash (notary token); with ?wait=true the answer is the anchor receipt",
)
def notarize(
    body: NotarizeRequest, principal: PrincipalDep, log: LogDep, wait: bool = False
) -> Receipt | Pending:
    require_role(principal, Role.NOTARY, Role.ADMIN)
    pending = log.append(body.event_type.value, bytes.fromhex(body.object_hash))
    if wait:
        return log.wait_receipts([pending])[0]
    return Pending(
        event_type=pending.event_type,
        salt=pending.salt.hex(),
        object_hash=pending.object_hash.hex(),
        commitment=pending.commitment.hex(),
    )


@router.post("/cosignatures", summary="Submit witness cosignatures (C2SP tlog-cosignature) on a checkpoint")
async def cosign(request: Request, log: LogDep) -> dict[str, list[str]]:
    text = (await read_body(request, 16_384)).decode("utf-8", errors="strict")
    return {"accepted": log.add_cosignatures(text)}
