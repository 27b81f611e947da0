#!/usr/bin/env python3
"""Check Weberei's hash-chain vectors without any Rust: standard library only.

    python3 domain/tests/vectors/check.py domain/tests/vectors/chain-vectors.json

For every case: the canonical JSON of each event equals the file's "canonical" string, its
SHA-256 equals "hashes", and an independent chain check reaches the file's "verdict".
Exits non-zero on any mismatch.

The canonicalizer below is a MINIMAL RFC 8785 (JCS) implementation that is enough for the JSON
in this file (it refuses anything it is not sure about). Real verifiers should use a proper JCS
library instead (e.g. the `rfc8785` package for Python, `canonicalize` for JavaScript).
"""

import hashlib
import json
import math
import sys
from decimal import Decimal

MAX_SAFE_INTEGER = 2**53


def es_number(x: float) -> str:
    """ECMAScript Number.prototype.toString(x), as RFC 8785 section 3.2.2.3 requires.

    Python's repr() gives the shortest digits that round-trip (and the nearest such, like
    ECMAScript); only the layout differs (repr writes 1e-07 and 100.0 where ECMAScript writes
    1e-7 and 100), so take repr's digits and lay them out the ECMAScript way.
    """
    if not math.isfinite(x):
        raise ValueError(f"{x!r} is not allowed in JSON")
    if x == 0:
        return "0"  # also -0
    sign = "-" if x < 0 else ""
    _, digit_tuple, exp = Decimal(repr(abs(x))).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0")
    exp += len(digit_tuple) - len(digits)  # trailing zeros stripped
    k = len(digits)
    n = exp + k  # value = 0.digits * 10**n
    if k <= n <= 21:
        out = digits + "0" * (n - k)
    elif 0 < n <= 21:
        out = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        out = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
        out = f"{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"
    result = sign + out
    assert float(result) == x, f"number formatting does not round-trip: {x!r} -> {result}"
    return result


def jcs(value) -> str:
    """RFC 8785 canonical JSON of a value from json.loads (dict, list, str, int, float, ...)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        # JCS numbers are IEEE doubles; integers beyond 2**53 would be rounded. Refuse them.
        assert abs(value) <= MAX_SAFE_INTEGER, f"integer {value} is outside the I-JSON range"
        return es_number(float(value))
    if isinstance(value, float):
        return es_number(value)
    if isinstance(value, str):
        # json.dumps escapes exactly what JCS escapes: " \ and U+0000..U+001F (\b \f \n \r \t
        # short, the rest as lowercase \u00xx); everything else is written as-is.
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ",".join(jcs(v) for v in value) + "]"
    if isinstance(value, dict):
        # Sort by UTF-16 code units (UTF-16BE bytes compare the same way).
        keys = sorted(value, key=lambda k: k.encode("utf-16-be"))
        return "{" + ",".join(jcs(k) + ":" + jcs(value[k]) for k in keys) + "}"
    raise TypeError(f"unexpected JSON value {value!r}")


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def verify_chain(events):
    """Like domain::verify_chain: returns (None, hashes) or ((index, field), None)."""
    expected_prev = None
    aggregate = None
    hashes = []
    for i, event in enumerate(events):
        if "aggregateId" not in event:
            return (i, "aggregateId"), None
        if aggregate is None:
            aggregate = event["aggregateId"]
        elif event["aggregateId"] != aggregate:
            return (i, "aggregateId"), None
        if "prev_hash" not in event or event["prev_hash"] != expected_prev:
            return (i, "prev_hash"), None
        h = sha256_hex(jcs(event))
        hashes.append(h)
        expected_prev = h
    return None, hashes


def check_case(case):
    """Returns a list of problems (empty = passed)."""
    problems = []
    events = case["events"]
    if not (len(events) == len(case["hashes"]) == len(case["canonical"])):
        return ["events, hashes and canonical differ in length"]
    for i, (event, want_hash, want_canon) in enumerate(
        zip(events, case["hashes"], case["canonical"])
    ):
        canon = jcs(event)
        if canon != want_canon:
            problems.append(f"event {i}: canonical form differs:\n  ours: {canon}\n  file: {want_canon}")
        if sha256_hex(canon) != want_hash:
            problems.append(f"event {i}: hash {sha256_hex(canon)} != file {want_hash}")
        if jcs(json.loads(want_canon)) != want_canon:
            problems.append(f"event {i}: the file's canonical string is not a JCS fixed point")
    brk, hashes = verify_chain(events)
    verdict = case["verdict"]
    if verdict["valid"]:
        if brk is not None:
            problems.append(f"verdict valid, but the chain breaks at {brk[0]} ({brk[1]})")
        elif hashes != case["hashes"]:
            problems.append("chain hashes differ from the file's")
    else:
        want = (verdict["broken_at"], verdict["reason"].split()[0])
        if brk is None:
            problems.append(f"verdict broken at {want[0]}, but the chain verifies")
        elif brk != want:
            problems.append(f"verdict broken at {want[0]} ({want[1]}), we find {brk[0]} ({brk[1]})")
    return problems


def main(argv):
    if len(argv) != 2:
        print(f"usage: {argv[0]} chain-vectors.json", file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as f:
        doc = json.load(f)
    passed = failed = 0
    for case in doc["cases"]:
        try:
            problems = check_case(case)
        except (AssertionError, KeyError, TypeError, ValueError) as e:
            problems = [f"{type(e).__name__}: {e}"]
        if problems:
            failed += 1
            print(f"FAIL {case.get('name')}")
            for p in problems:
                print(f"  {p}")
        else:
            passed += 1
            print(f"ok   {case['name']}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
