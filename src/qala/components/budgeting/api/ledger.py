"""The public ledger: ``/api/v1/budgeting/ledger`` — its entries, its signed tree heads and the
key they are signed with, Merkle proofs (RFC 9162) and the server's own verification."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from qala.components.accounts.deps import CallerFirstRoute, ContextDep
from qala.components.budgeting import ledger
from qala.components.budgeting.api.deps import MAX_ID, PREFIX, TAGS
from qala.components.budgeting.signing import ledger_signer

router = APIRouter(route_class=CallerFirstRoute, prefix=f"{PREFIX}/ledger", tags=TAGS)

TreeSize = Annotated[int | None, Query(ge=1, le=MAX_ID, description="Entries in the tree.")]


@router.get("", summary="Ledger entries, in order, for anyone to verify")
def entries(
    context: ContextDep,
    after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    subject: Annotated[str | None, Query(max_length=80)] = None,
) -> list[dict[str, Any]]:
    with context.database.session() as session:
        found = ledger.list_entries(session, after=after, limit=limit, subject=subject)
        return [e.as_dict() for e in found]


@router.get("/verify", summary="Verify the whole ledger (chain, head and tables)")
def verify(
    context: ContextDep, expected_head: Annotated[str | None, Query(max_length=64)] = None
) -> dict[str, Any]:
    public_key = ledger_signer(context).public_key()
    with context.database.session() as session:
        found = ledger.verify_ledger(session, public_key=public_key, expected_head=expected_head)
        return found.as_dict()


@router.get("/head", summary="The newest signed tree head (size, root hash, time, signature)")
def signed_head(context: ContextDep) -> dict[str, Any]:
    with context.database.session() as session:
        return ledger.published_head(session).as_dict()


@router.get("/public-key", summary="The Ed25519 key the ledger's heads are signed with")
def public_key(context: ContextDep) -> dict[str, str]:
    return ledger_signer(context).public_key().as_dict()


@router.get("/proof/inclusion", summary="Proof that an entry is in the tree of a given size")
def inclusion_proof(
    context: ContextDep,
    entry: Annotated[int, Query(ge=1, le=MAX_ID, description="The entry's number.")],
    size: TreeSize = None,
) -> dict[str, Any]:
    with context.database.session() as session:
        return ledger.prove_inclusion(session, entry, size=size)


@router.get("/proof/consistency", summary="Proof that a smaller tree is a prefix of a larger one")
def consistency_proof(
    context: ContextDep,
    first: Annotated[int, Query(ge=1, le=MAX_ID, description="The older tree's size.")],
    second: TreeSize = None,
) -> dict[str, Any]:
    with context.database.session() as session:
        return ledger.prove_consistency(session, first, second=second)
