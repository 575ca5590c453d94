"""``bhhub mailbox reroute --from OLD [--to NEW]``: what waits for a mailbox taken out of
bhhub.toml (the ``transmissions_orphaned`` alert) goes to the one that replaced it, or back to
the queue (``bhhub.exchange.reroute``)."""

from __future__ import annotations

import argparse
import sys

from bhhub.cli.commands import open_hub
from bhhub.cli.output import print_json


def add_reroute(mailbox_sub) -> None:
    p = mailbox_sub.add_parser(
        "reroute", help="move or release transmissions left for a mailbox no longer configured",
        description="Transmissions not yet uploaded that wait for OLD, a mailbox no longer in bhhub.toml: with "
                    "--to NEW, those whose file NEW can carry (the same envelope ids: a renamed mailbox) become "
                    "NEW's; the others are released and their claims go back to ready, to be batched by the next "
                    "exchange for the mailbox [routing] gives their payer now. Eligibility (270) and claim status (276) "
                    "inquiries written for OLD and not yet sent are moved or released by the same rule; a released "
                    "one's questions are asked again through the mailbox [routing] gives their payer now (once: not "
                    "if asked again since). A transmission whose upload was cut off "
                    "(left uploading) may have reached OLD's clearinghouse and is not touched unless "
                    "--include-uploading. Audited; running it again changes nothing.")
    p.add_argument("--from", dest="old", required=True, metavar="OLD", help="the mailbox no longer configured")
    p.add_argument("--to", dest="to", metavar="NEW", help="a configured mailbox to hand them to")
    p.add_argument("--include-uploading", action="store_true",
                   help="also move or release transmissions whose upload to OLD was cut off; one that reached "
                        "OLD's clearinghouse and is released is billed twice (moved to NEW with the same envelope, "
                        "the same ISA13 goes: a duplicate is answered TA1 025)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_mailbox_reroute)


def cmd_mailbox_reroute(args: argparse.Namespace) -> int:
    from bhhub.exchange.reroute import reroute

    with open_hub(args) as hub:
        result = reroute(hub, args.old, args.to, include_uploading=args.include_uploading,
                         waiting=lambda message: print(f"bhhub: {message}", file=sys.stderr, flush=True))
    if args.json:
        print_json(result.as_dict())
        return 0
    if result.moved:
        print(f"{len(result.moved)} transmission(s) moved to mailbox {result.to}: {_ids(result.moved)}")
    if result.released:
        print(f"{len(result.released)} transmission(s) released: {_ids(result.released)}; "
              f"{len(result.claims_ready)} claim(s) back to ready for the next exchange")
    if result.in_doubt:
        print(f"{len(result.in_doubt)} transmission(s) left uploading, not touched (they may have reached "
              f"{result.mailbox}'s clearinghouse): {_ids(result.in_doubt)}; check with that clearinghouse (its "
              "999 or 277CA), then configure the mailbox again or rerun with --include-uploading")
    moved_in_doubt = [i for i in result.uploading if i in result.moved]
    released_in_doubt = [i for i in result.uploading if i in result.released]
    if moved_in_doubt:
        print(f"warning: {_ids(moved_in_doubt)} had been cut off while uploading to {result.mailbox}: "
              f"{result.to} sends the same bytes with the same ISA13 (a copy that arrived is answered TA1 025)")
    if released_in_doubt:
        print(f"warning: {_ids(released_in_doubt)} had been cut off while uploading to {result.mailbox} and may "
              f"have reached its clearinghouse: their claims go in a new batch, and are billed twice if it did")
    if result.moved_inquiries:
        print(f"{len(result.moved_inquiries)} eligibility or claim status inquiry batch(es) moved to mailbox "
              f"{result.to}: {_ids(result.moved_inquiries)}")
    if result.released_inquiries:
        print(f"{len(result.released_inquiries)} eligibility or claim status inquiry batch(es) released unsent: "
              f"{_ids(result.released_inquiries)}")
    _questions(result.asked_again)
    if not (result.changed or result.in_doubt):
        print(f"nothing waits for mailbox {result.mailbox}")
    return 0


_KIND = {"270": "eligibility", "276": "claim status"}


def _questions(questions) -> None:
    """What became of the questions of the released 270s and 276s (check ids, never PHI)."""
    asked = [q for q in questions if q.state == "asked_again"]
    since = [q for q in questions if q.state == "asked_since"]
    if asked:
        print(f"{len(asked)} question(s) of released inquiries asked again (they go with the next exchange of the "
              "mailbox [routing] gives their payer): " + ", ".join(
                  f"{_KIND[q.kind]} check {q.check_id} as check {q.new_check_id} (batch {q.batch_id}, mailbox {q.mailbox})"
                  for q in asked))
    if since:
        print(f"{len(since)} question(s) of released inquiries had been asked again already: " + ", ".join(
            f"{_KIND[q.kind]} check {q.check_id} as check {q.new_check_id}" for q in since))
    for q in questions:
        if q.state == "not_asked":
            print(f"not asked again: {_KIND[q.kind]} check {q.check_id} ({q.error}); ask with `{q.command}`")


def _ids(ids: list[int]) -> str:
    return ", ".join(str(i) for i in ids)
