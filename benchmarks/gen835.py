"""A deterministic 835 (005010X221A1) of N synthetic behavioral-health professional claims.

    python benchmarks/gen835.py 5000 -o remit.835      # or to standard output

Every figure balances (domain reference 6.3): each line's charge less its CAS is its payment,
each claim's charge less its adjustments is CLP04, CLP05 is the sum of PR, and BPR02 is the sum
of CLP04 less the PLB amounts. Claims are psychotherapy sessions (90791, 90832/4/7, 90847,
90853, an E/M with 90833/90836, the 90785 add-on, H0004 for Medicaid), 1-3 lines each: most
paid with CO-45 and a copay (PR-3), coinsurance (PR-2) or deductible (PR-1); about one in ten
denied for missing authorization (CO-197 with N54); some reversed (CLP02 22) and adjudicated
again under the same patient control number. Transactions hold at most 5,000 claims each, with
a PLB of prompt-pay interest (L6) and sometimes an overpayment recovery (WO). Names and member
ids are invented. Same N and seed, same bytes.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path
from typing import Iterator

CLAIMS_PER_TRANSACTION = 5000
PAYEE_NPI = "1234567893"

# (code, charge in cents, allowed in cents, units)
SESSIONS = [
    ("90837", 18000, 12000, 1), ("90834", 14000, 9500, 1), ("90832", 9500, 6500, 1),
    ("90791", 25000, 16000, 1), ("90847", 15000, 10000, 1), ("90853", 6000, 3500, 1),
    ("H0004", 12000, 8800, 4),
]
E_M = [("99213", 15000, 9000), ("99214", 20000, 12000)]
E_M_ADDON = [("90833", 9000, 6500), ("90836", 13000, 8500)]
INTERACTIVE = ("90785", 2000, 1500)
LAST = ["RIVERA", "NGUYEN", "OKAFOR", "SCHMIDT", "PATEL", "LINDQVIST", "MORALES", "KOWALSKI"]
FIRST = ["ALEX", "JORDAN", "SAM", "RILEY", "CASEY", "MORGAN", "TAYLOR", "QUINN"]


def money(cents: int) -> str:
    """An X12 decimal (R) without needless zeros: 10750 -> "107.5", 18000 -> "180"."""
    sign = "-" if cents < 0 else ""
    whole, fraction = divmod(abs(cents), 100)
    return f"{sign}{whole}" if not fraction else f"{sign}{whole}.{fraction:02d}".rstrip("0")


def _lines(rng: random.Random) -> list[tuple[str, tuple[str, ...], int, int, int]]:
    """The claim's service lines: (code, modifiers, charge, allowed, units)."""
    telehealth = ("95",) if rng.random() < 0.4 else ()
    if rng.random() < 0.15:
        em, addon = rng.choice(E_M), rng.choice(E_M_ADDON)
        lines = [(em[0], telehealth, em[1], em[2], 1), (addon[0], telehealth, addon[1], addon[2], 1)]
    else:
        code, charge, allowed, units = rng.choice(SESSIONS)
        modifiers = ("HO",) + telehealth if code == "H0004" else telehealth
        lines = [(code, modifiers, charge, allowed, units)]
        if rng.random() < 0.4:  # a second weekly session on the same claim
            code, charge, allowed, units = rng.choice(SESSIONS[:3])
            lines.append((code, telehealth, charge, allowed, 1))
    if len(lines) < 3 and rng.random() < 0.15:
        lines.append((INTERACTIVE[0], telehealth, INTERACTIVE[1], INTERACTIVE[2], 1))
    return lines


def _claim(rng: random.Random, number: int, sign: int, status: str, lines, outcome: str,
           copay: int, day: int) -> tuple[list[str], int]:
    """The segments of one 2100 loop and its CLP04 in cents (amounts times ``sign``)."""
    body, total_charge, total_paid, total_pr = [], 0, 0, 0
    for index, (code, modifiers, charge, allowed, units) in enumerate(lines, start=1):
        adjustments: list[tuple[str, str, int]] = []
        remark = None
        if outcome == "denied":
            adjustments.append(("CO", "197", charge))
            remark = "N54"
        else:
            adjustments.append(("CO", "45", charge - allowed))
            if outcome == "deductible":
                adjustments.append(("PR", "1", allowed))
            elif outcome == "coinsurance":
                adjustments.append(("PR", "2", allowed // 5))
            elif index == 1 and copay:
                adjustments.append(("PR", "3", min(copay, allowed)))
        paid = charge - sum(a[2] for a in adjustments)
        total_charge += charge
        total_paid += paid
        total_pr += sum(a[2] for a in adjustments if a[0] == "PR")
        procedure = ":".join(("HC", code) + modifiers)
        body.append(f"SVC*{procedure}*{money(sign * charge)}*{money(sign * paid)}**{units}")
        body.append(f"DTM*472*202601{day:02d}")
        by_group: dict[str, list[str]] = {}
        for group, reason, amount in adjustments:
            if amount:
                by_group.setdefault(group, []).extend((reason, money(sign * amount)))
        body.extend(_cas(group, pairs) for group, pairs in by_group.items())
        body.append(f"REF*6R*{number:07d}L{index}")
        if outcome != "denied":
            body.append(f"AMT*B6*{money(sign * allowed)}")
        if remark:
            body.append(f"LQ*HE*{remark}")
    head = [
        f"CLP*PCN{number:07d}*{status}*{money(sign * total_charge)}*{money(sign * total_paid)}"
        f"*{money(sign * total_pr)}*12*ICN{number:010d}*11*1",
        f"NM1*QC*1*{rng.choice(LAST)}*{rng.choice(FIRST)}****MI*M{rng.randrange(10**8):08d}",
    ]
    if rng.random() < 0.5:
        head.append("NM1*82*1*HALVERSEN*DANA****XX*1999999984")
    head.append(f"DTM*050*202602{min(day, 27) + 1:02d}")
    return head + body, sign * total_paid


def _cas(group: str, pairs: list[str]) -> str:
    """CAS with (reason, amount) pairs spaced as triplets: the quantity left empty."""
    triplets = [f"{pairs[i]}*{pairs[i + 1]}" for i in range(0, len(pairs), 2)]
    return f"CAS*{group}*" + "**".join(triplets)


def claims(rng: random.Random, first: int, count: int) -> Iterator[tuple[list[str], int]]:
    """``count`` claims (CLP loops), numbered from ``first``: (segments, paid cents) each."""
    number = first
    emitted = 0
    while emitted < count:
        lines = _lines(rng)
        roll = rng.random()
        outcome = ("denied" if roll < 0.10 else "deductible" if roll < 0.15
                   else "coinsurance" if roll < 0.40 else "copay")
        copay = rng.choice((2000, 2500, 3000, 4000)) if outcome == "copay" else 0
        day = rng.randrange(1, 29)
        status = "4" if outcome == "denied" else "1"
        if outcome != "denied" and count - emitted >= 2 and rng.random() < 0.02:
            # A reversal of an earlier payment, then the claim adjudicated again (6.5 item 4).
            yield _claim(rng, number, -1, "22", lines, outcome, copay, day)
            outcome = "coinsurance"
            emitted += 1
        yield _claim(rng, number, 1, status, lines, outcome, copay, day)
        emitted += 1
        number += 1


def generate(n_claims: int, seed: int = 835,
             claims_per_transaction: int = CLAIMS_PER_TRANSACTION) -> Iterator[str]:
    """The interchange, a piece of text at a time (each piece whole segments)."""
    rng = random.Random(seed)
    transactions = max(1, -(-n_claims // claims_per_transaction))
    yield ("ISA*00*          *00*          *ZZ*BHSYNTHPAYER   *ZZ*BHHUBCLINIC    *260210*1200*^*00501"
           "*000000835*0*P*:~\nGS*HP*BHSYNTHPAYER*BHHUBCLINIC*20260210*1200*835*X*005010X221A1~\n")
    number = 1
    for t in range(1, transactions + 1):
        count = min(claims_per_transaction, n_claims - (t - 1) * claims_per_transaction)
        body: list[str] = []
        paid_cents = 0
        for segments, paid in claims(rng, number, count):
            body.extend(segments)
            paid_cents += paid
        number += count
        plb = [("L6", f"INT{t:04d}", -rng.randrange(100, 2000))]
        if paid_cents > 10000 and rng.random() < 0.7:
            plb.append(("WO", f"PCN{rng.randrange(1, number):07d}", rng.randrange(1000, min(paid_cents, 20000))))
        total = paid_cents - sum(amount for _, _, amount in plb)
        head = [
            f"ST*835*{t:04d}",
            f"BPR*I*{money(total)}*C*ACH*CCP*01*011000015*DA*1234567890*1512345678**01*021000021*DA"
            f"*9876543210*20260210",
            f"TRN*1*EFT{t:07d}*1512345678",
            "DTM*405*20260209",
            "N1*PR*SYNTHETIC BEHAVIORAL HEALTH PLAN",
            "N3*PO BOX 1000",
            "N4*SPRINGFIELD*IL*62703",
            "REF*2U*SBHP1",
            "PER*BL*EDI SUPPORT*TE*5555550199",
            f"N1*PE*SYNTHETIC COUNSELING GROUP PLLC*XX*{PAYEE_NPI}",
            "REF*TJ*123456789",
            "LX*1",
        ]
        pairs = "*".join(f"{reason}:{reference}*{money(amount)}" for reason, reference, amount in plb)
        tail = [f"PLB*{PAYEE_NPI}*20261231*{pairs}"]
        count_segments = len(head) + len(body) + len(tail) + 1
        tail.append(f"SE*{count_segments}*{t:04d}")
        # Emit the transaction in pieces so a large one never becomes one huge string.
        yield "~\n".join(head) + "~\n"
        for start in range(0, len(body), 4096):
            yield "~\n".join(body[start:start + 4096]) + "~\n"
        yield "~\n".join(tail) + "~\n"
    yield f"GE*{transactions}*835~\nIEA*1*000000835~\n"


def write(path: Path | str, n_claims: int, seed: int = 835) -> int:
    """Write the interchange to ``path``; the number of bytes written."""
    size = 0
    with open(path, "w", encoding="ascii", newline="") as out:
        for piece in generate(n_claims, seed):
            size += out.write(piece)
    return size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("claims", type=int, help="number of claims (CLP loops)")
    parser.add_argument("-o", "--output", type=Path, help="file to write (default: standard output)")
    parser.add_argument("--seed", type=int, default=835)
    args = parser.parse_args()
    if args.output:
        write(args.output, args.claims, args.seed)
    else:
        for piece in generate(args.claims, args.seed):
            sys.stdout.write(piece)
    return 0


if __name__ == "__main__":
    sys.exit(main())
