"""`deliver_sm` handling: receipts to the `ReceiptSink`, then the `deliver_sm_resp` to send back.

Receipts are acknowledged only after `ReceiptSink.record` returns (durably stored). When the sink
fails, the receipts are answered with ESME_RX_T_APPN so the SMSC redelivers them later (the sink
must therefore tolerate a receipt twice). Unreadable receipts, intermediate states and MO messages
are logged and acknowledged with ESME_ROK: an unacknowledged `deliver_sm` is redelivered forever
and stalls the SMSC's window. A batch is recorded in one `record()` call (group commit).

Receipts leave here with their ref scoped by connector (`scoped_ref`) and, when this connector
submitted the message that got the id (`issued`), with `sent_after` set to that submit's time.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import MutableMapping, Sequence
from datetime import datetime

from omnirelay.channels.sms import pdu
from omnirelay.channels.sms.receipt import ReceiptUnreadable, is_receipt, parse_receipt, scoped_ref
from omnirelay.domain.messages import Receipt
from omnirelay.ports import Clock, ReceiptSink

log = logging.getLogger(__name__)


async def take_deliveries(
    frames: Sequence[bytes],
    *,
    receipts: ReceiptSink,
    clock: Clock,
    connector: str,
    issued: MutableMapping[str, datetime] | None = None,
) -> list[bytes]:
    """Read `deliver_sm` frames, store their final receipts, return one `deliver_sm_resp` each.
    `issued` (normalised id → submit time) loses the ids whose final receipt was stored."""
    issued = issued if issued is not None else {}
    found: list[Receipt] = []
    ids: list[str] = []
    acks: list[tuple[int, bool]] = []  # (sequence, carries a receipt to store)
    received_at = clock.now()
    for frame in frames:
        sequence = pdu.decode_header(frame).sequence
        try:
            deliver = pdu.decode_deliver_sm(frame)
        except pdu.PduDecodeError as exc:
            log.warning("connector %s: unreadable deliver_sm (%s); acknowledged", connector, exc.reason)
            acks.append((sequence, False))
            continue
        if not is_receipt(deliver.esm_class):
            log.info(
                "connector %s: MO deliver_sm from %s to %s not handled; acknowledged",
                connector,
                deliver.source_addr,
                deliver.destination_addr,
            )
            acks.append((sequence, False))
            continue
        try:
            parsed = parse_receipt(
                short_message=deliver.short_message,
                data_coding=deliver.data_coding,
                receipted_message_id=deliver.receipted_message_id,
                message_state=deliver.message_state,
                network_error_code=deliver.network_error_code,
                received_at=received_at,
            )
        except ReceiptUnreadable as exc:
            log.warning(
                "connector %s: unreadable delivery receipt (%s): %r; acknowledged",
                connector,
                exc.reason,
                deliver.short_message[:200],
            )
            acks.append((sequence, False))
            continue
        if parsed.receipt is None:
            log.debug("connector %s: intermediate receipt %s for %s", connector, parsed.stat, parsed.ref)
            acks.append((sequence, False))
            continue
        found.append(
            dataclasses.replace(
                parsed.receipt, ref=scoped_ref(connector, parsed.ref), sent_after=issued.get(parsed.ref)
            )
        )
        ids.append(parsed.ref)
        acks.append((sequence, True))
    stored_status = pdu.ESME_ROK
    if found:
        try:
            await receipts.record(found)
        except Exception:  # any sink failure: ask for redelivery, keep the session
            log.exception(
                "connector %s: could not store %d receipts; answering ESME_RX_T_APPN for redelivery",
                connector,
                len(found),
            )
            stored_status = pdu.ESME_RX_T_APPN
        else:
            for ref in ids:
                issued.pop(ref, None)
    return [
        pdu.deliver_sm_resp(sequence, stored_status if carries_receipt else pdu.ESME_ROK)
        for sequence, carries_receipt in acks
    ]
