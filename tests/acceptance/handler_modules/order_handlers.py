"""The job types of docs/workflows.md's Python example, for the server that runs it
(JOBQUEUE_HANDLERS=order_handlers). Imported by the server process, never by pytest."""

from __future__ import annotations

from typing import Any

from jobqueue import JobContext, handler


@handler("charge-card")
async def charge_card(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Pretend to charge the order's card."""
    return {"charged": payload.get("order")}


@handler("ship-order")
async def ship_order(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Pretend to ship."""
    return {"shipped": True}


@handler("send-invoice")
async def send_invoice(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Pretend to send the invoice."""
    return {"invoiced": True}


@handler("close-order")
async def close_order(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Close the order once it was shipped and invoiced: how many steps it waited for."""
    return {"closed_after": len(ctx.parent_results)}
