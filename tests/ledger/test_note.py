"""C2SP signed notes, checkpoints and cosignatures (ledger.note, ledger.witness).

Published vectors are in tests/vectors/signed_note.json, each section naming its source file and commit.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ledger.note
import ledger.witness
from kernel.errors import MalformedInput, VerificationFailed
from ledger.note import (
    Checkpoint,
    Note,
    NoteSigner,
    NoteVerifier,
    Signature,
    WitnessCosigner,
    WitnessVerifier,
    add_cosignatures,
    cosignature_message,
    cosignature_timestamp,
    format_note,
    key_id,
    open_checkpoint,
    parse_checkpoint,
    parse_note,
    sign_note,
    valid_name,
    verify_cosignatures,
    verify_note,
)

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parent.parent / "vectors" / "signed_note.json").read_text(encoding="utf-8")
)
GO = VECTORS["golang_sumdb_note"]
EXPECTED = (MalformedInput, VerificationFailed)


def _raises(slug: str, fn: Callable[..., object], *args: Any, **kwargs: Any) -> None:
    with pytest.raises((MalformedInput, VerificationFailed)) as info:
        fn(*args, **kwargs)
    assert info.value.slug == slug, info.value.detail


def _ssh_ed25519(line: str) -> Ed25519PublicKey:
    blob = base64.b64decode(line.split()[1])
    assert blob[:-32] == b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20"
    return Ed25519PublicKey.from_public_bytes(blob[-32:])


def _line(name: str, key: bytes, raw: bytes) -> str:
    return Signature(name, key, raw).line


def _seeded(name: str, seed: int) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(f"{name}/{seed}".encode()).digest())


# --- golang.org/x/mod/sumdb/note vectors ---------------------------------------------------------------------


def test_go_verifier_key() -> None:
    v = NoteVerifier.from_vkey(GO["peter_vkey"])
    assert (v.name, v.key_id.hex(), v.alg) == ("PeterNeumann", "c74f20a3", 1)
    assert v.vkey == GO["peter_vkey"]
    assert key_id("PeterNeumann", 1, v.public_key.public_bytes_raw()) == bytes.fromhex("c74f20a3")
    assert NoteVerifier.from_public_key("PeterNeumann", v.public_key) == v


def test_go_verifier_key_manglings_are_rejected() -> None:
    vkey = GO["peter_vkey"]
    mangled = {vkey[i:j] for i in range(len(vkey)) for j in range(i + 1, len(vkey) + 1)} - {vkey}
    mangled |= {vkey[:i] + chr(ord(vkey[i]) + 1) + vkey[i + 1 :] for i in range(len(vkey))}
    mangled |= set(GO["bad_vkeys"])
    for bad in mangled:
        _raises("vkey-malformed", NoteVerifier.from_vkey, bad)


def test_go_signer_key() -> None:
    signer = NoteSigner.from_skey(GO["peter_skey"])
    assert signer.skey == GO["peter_skey"]
    assert signer.verifier.vkey == GO["peter_vkey"]
    assert "private_key" not in repr(signer)
    skey = GO["peter_skey"]
    mangled = {skey[i:j] for i in range(len(skey)) for j in range(i + 1, len(skey) + 1)} - {skey}
    mangled |= {skey[:i] + chr(ord(skey[i]) + 1) + skey[i + 1 :] for i in range(len(skey))}
    for bad in mangled:
        _raises("skey-malformed", NoteSigner.from_skey, bad)


@pytest.mark.parametrize("pair", VECTORS["tessera_witness_keys"]["pairs"], ids=lambda p: p["vkey"][:6])
def test_tessera_key_pairs(pair: dict[str, str]) -> None:
    signer = NoteSigner.from_skey(pair["skey"])
    assert signer.verifier == NoteVerifier.from_vkey(pair["vkey"])
    assert signer.skey == pair["skey"]
    # The same key as a cosignature/v1 witness: type 0x04, so another key ID (transparency-dev/formats).
    witness = WitnessCosigner.from_skey(pair["skey"])
    assert witness.key_id != signer.key_id
    assert witness.verifier.vkey.startswith(f"{signer.name}+{witness.key_id.hex()}+B")
    assert NoteVerifier.from_vkey(VECTORS["tessera_witness_keys"]["log_vkey"]).alg == 1


def test_go_signature_is_reproduced() -> None:
    signer = NoteSigner.from_skey(GO["peter_skey"])
    assert sign_note(GO["text"], [signer]) == GO["signed_by_peter"]
    assert signer.sign(GO["text"]) + "\n" == GO["peter_sig"]
    _raises("note-malformed", signer.sign, "abc")


def test_go_open() -> None:
    peter, enoch = NoteVerifier.from_vkey(GO["peter_vkey"]), NoteVerifier.from_vkey(GO["enoch_vkey"])
    msg = GO["text"] + "\n" + GO["peter_sig"] + GO["enoch_sig"]
    note, signed = verify_note(msg, [peter])
    assert note.text == GO["text"]
    assert signed == [peter]
    assert [s.name for s in note.signatures] == ["PeterNeumann", "EnochRoot"]
    assert verify_note(msg.encode(), [peter, enoch])[1] == [peter, enoch]
    assert verify_note(msg, [enoch, peter, enoch])[1] == [peter, enoch]
    _raises("note-unknown-key", verify_note, msg, [])
    assert note.format() == msg


def test_go_open_bad_signature_and_duplicates() -> None:
    peter = NoteVerifier.from_vkey(GO["peter_vkey"])
    text, peter_sig, enoch_sig = GO["text"], GO["peter_sig"].encode(), GO["enoch_sig"].encode()
    tampered = (text + "\n").encode() + peter_sig[:60] + b"ABCD" + peter_sig[60:]
    _raises("note-signature-invalid", verify_note, tampered, [peter])
    enoch_abcd = enoch_sig[:60] + b"ABCD" + enoch_sig[60:]
    msg = (text + "\n").encode() + peter_sig + peter_sig + enoch_sig + enoch_sig + enoch_abcd
    note, signed = verify_note(msg, [peter])
    assert signed == [peter]
    assert len(note.signatures) == 3  # identical lines are kept once
    _raises("note-malformed", verify_note, (text + "\n").encode() + peter_sig * 101, [peter])
    assert verify_note((text + "\n").encode() + peter_sig * 100, [peter])[1] == [peter]


@pytest.mark.parametrize(
    "msg",
    [
        GO["text"].encode(),
        (GO["text"] + "\n").encode(),
        (GO["text"] + "\n" + GO["peter_sig"][:-1]).encode(),
        ("\x01" + GO["text"] + "\n" + GO["peter_sig"]).encode(),
        b"\xff" + (GO["text"] + "\n" + GO["peter_sig"]).encode(),
        (GO["text"] + "\n" + "— Bad Name " + GO["peter_sig"].split()[2]).encode(),
        (GO["text"] + "\n" + GO["peter_sig"] + "Unexpected line.\n").encode(),
    ],
)
def test_go_malformed_notes(msg: bytes) -> None:
    _raises("note-malformed", verify_note, msg, [NoteVerifier.from_vkey(GO["peter_vkey"])])


# --- C2SP and sigsum vectors --------------------------------------------------------------------------------


def test_c2sp_signed_note_example_parses_and_its_unknown_key_is_ignored() -> None:
    note = parse_note(VECTORS["c2sp_signed_note_example"]["note"])
    assert note.text.endswith("\ned è subito sera.\n")
    assert [s.name for s in note.signatures] == ["quasimodo.example/salvatore"]
    assert len(note.signatures[0].raw) == 64
    _raises("note-unknown-key", verify_note, note.format(), [NoteVerifier.from_vkey(GO["peter_vkey"])])


def test_c2sp_cosignature_example() -> None:
    vector = VECTORS["c2sp_cosignature_example"]
    note = parse_note(vector["note"])
    checkpoint = parse_checkpoint(note.text)
    assert (checkpoint.origin, checkpoint.size, checkpoint.extensions) == (
        "example.com/behind-the-sofa",
        20852163,
        (),
    )
    assert checkpoint.body() == note.text
    log_sig, witness_sig = note.signatures
    assert len(log_sig.raw) == 64
    assert cosignature_timestamp(witness_sig) == 1679315147
    assert cosignature_message(1679315147, checkpoint.body()) == vector["message"].encode()
    _raises("cosignature-malformed", cosignature_timestamp, log_sig)


def test_sigsum_cosigned_message_format() -> None:
    vector = VECTORS["sigsum_cosigned_message"]
    checkpoint = parse_checkpoint(vector["checkpoint"])
    assert checkpoint.origin == "sigsum.org/v1/tree/" + hashlib.sha256(bytes(32)).hexdigest()
    assert (checkpoint.size, checkpoint.root_hash) == (257, bytes(range(32)))
    assert cosignature_message(vector["timestamp"], checkpoint.body()) == vector["message"].encode()


def _sigsum_log(vector: dict[str, Any]) -> tuple[NoteVerifier, Checkpoint, str]:
    log_key = _ssh_ed25519(vector["log_key_ssh"])
    origin = "sigsum.org/v1/tree/" + hashlib.sha256(log_key.public_bytes_raw()).hexdigest()
    log = NoteVerifier.from_public_key(origin, log_key)
    checkpoint = Checkpoint(origin, vector["size"], bytes.fromhex(vector["root_hash_hex"]))
    signature = vector.get("signature_hex") or vector["log_signature_hex"]
    return (
        log,
        checkpoint,
        format_note(checkpoint.body(), [_line(origin, log.key_id, bytes.fromhex(signature))]),
    )


def test_sigsum_checkpoint_signature() -> None:
    log, checkpoint, signed = _sigsum_log(VECTORS["sigsum_checkpoint"])
    assert NoteVerifier.from_vkey(log.vkey) == log
    assert open_checkpoint(signed, log_verifier=log, expected_origin=checkpoint.origin)[0] == checkpoint
    tampered = signed.replace("\n4\n", "\n5\n")
    _raises(
        "checkpoint-signature-invalid",
        open_checkpoint,
        tampered,
        log_verifier=log,
        expected_origin=checkpoint.origin,
    )


def test_sigsum_cosignature() -> None:
    vector = VECTORS["sigsum_cosignature"]
    log, checkpoint, signed = _sigsum_log(vector)
    assert checkpoint.origin.endswith(vector["log_key_hash_hex"])
    witness_key = _ssh_ed25519(vector["witness_key_ssh"])
    assert hashlib.sha256(witness_key.public_bytes_raw()).hexdigest() == vector["witness_key_hash_hex"]
    witness = WitnessVerifier.from_public_key(vector["witness_name"], witness_key)
    assert WitnessVerifier.from_vkey(witness.vkey) == witness
    raw = vector["timestamp"].to_bytes(8, "big") + bytes.fromhex(vector["cosignature_hex"])
    cosigned = add_cosignatures(signed, [_line(witness.name, witness.key_id, raw)])
    cp, note = open_checkpoint(
        cosigned,
        log_verifier=log,
        expected_origin=checkpoint.origin,
        witnesses=[witness],
        witness_threshold=1,
    )
    assert cp == checkpoint
    assert verify_cosignatures(note, cp, [witness], threshold=1) == [witness.name]
    assert cosignature_timestamp(note.signatures[1]) == vector["timestamp"]
    later = (vector["timestamp"] + 1).to_bytes(8, "big") + bytes.fromhex(vector["cosignature_hex"])
    bad = add_cosignatures(signed, [_line(witness.name, witness.key_id, later)])
    _raises(
        "witness-signature-invalid",
        open_checkpoint,
        bad,
        log_verifier=log,
        expected_origin=checkpoint.origin,
        witnesses=[witness],
    )


# --- keys, names, round trips -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["PeterNeumann", "example.com/log", "é/ü", "oid/1.3.6.1.4.1"])
def test_valid_names(name: str) -> None:
    assert valid_name(name)


@pytest.mark.parametrize(
    "name", ["", "a+b", "a b", "a\tb", "a\u00a0b", "a\u2003b", "a\u3000b", "a\x01b", "\ud800"]
)
def test_invalid_names(name: str) -> None:
    assert not valid_name(name)
    _raises("vkey-malformed", NoteVerifier.from_public_key, name, _seeded("x", 0).public_key())
    _raises("skey-malformed", NoteSigner.from_ed25519, name, _seeded("x", 0))


def test_key_round_trips_and_type_mismatch() -> None:
    signer = NoteSigner.from_ed25519("example.com/log", _seeded("log", 1))
    assert NoteSigner.from_skey(signer.skey).verifier == signer.verifier
    assert NoteVerifier.from_vkey(signer.verifier.vkey) == signer.verifier
    cosigner = WitnessCosigner.from_ed25519("witness.example/w1", _seeded("w", 1))
    assert WitnessVerifier.from_vkey(cosigner.verifier.vkey) == cosigner.verifier
    assert NoteVerifier.from_vkey(cosigner.verifier.vkey).alg == 4
    _raises("vkey-malformed", WitnessVerifier.from_vkey, signer.verifier.vkey)
    _raises("vkey-malformed", NoteVerifier, "example.com/log", b"\0\0\0\0", signer.verifier.public_key)
    assert len({signer.verifier, NoteVerifier.from_vkey(signer.verifier.vkey)}) == 1  # hashable, by value


def test_sign_verify_round_trip_and_tampering() -> None:
    a, b = (
        NoteSigner.from_ed25519("a.example", _seeded("a", 0)),
        NoteSigner.from_ed25519("b.example", _seeded("b", 0)),
    )
    text = "first line\n\nthird line after an empty one\n"
    signed = sign_note(text, [a, b])
    note, verified = verify_note(signed, [b.verifier])
    assert (note.text, verified) == (text, [b.verifier])
    assert parse_note(signed) == note
    assert note.format() == signed
    _raises("note-signature-invalid", verify_note, signed.replace("third", "Third"), [a.verifier])
    raw = note.signatures[0]
    flipped = Signature(raw.name, raw.key_id, bytes([raw.raw[0] ^ 1]) + raw.raw[1:])
    _raises("note-signature-invalid", verify_note, format_note(text, [flipped.line]), [a.verifier])
    # Same name, other key ID: an unknown key, ignored -- but then nobody trusted signed.
    other = Signature(raw.name, b"\0\0\0\0", raw.raw)
    _raises("note-unknown-key", verify_note, format_note(text, [other.line]), [a.verifier])
    _raises("note-malformed", format_note, text, [])
    _raises("note-malformed", format_note, "no newline", [raw.line])
    _raises("note-malformed", sign_note, text, [])


def test_add_cosignatures_merges_and_dedupes() -> None:
    log = NoteSigner.from_ed25519("log.example", _seeded("log", 2))
    cp = Checkpoint("log.example", 7, bytes(32))
    w = WitnessCosigner.from_ed25519("w.example", _seeded("w", 2))
    line = w.cosign(cp, timestamp=1_700_000_000)
    signed = sign_note(cp.body(), [log])
    merged = add_cosignatures(signed, [line + "\n", line])
    assert merged == signed + line + "\n"
    assert add_cosignatures(merged, [line]) == merged
    _raises("note-malformed", add_cosignatures, signed, ["— w.example AAAA\n— x.example AAAA"])
    _raises("note-malformed", add_cosignatures, signed, ["not a signature"])


# --- checkpoints ---------------------------------------------------------------------------------------------


def test_checkpoint_round_trip_with_extensions() -> None:
    cp = Checkpoint("example.com/log", 0, hashlib.sha256(b"").digest(), ("ext one", "ext — two"))
    assert parse_checkpoint(cp.body()) == cp
    assert cp.body().splitlines()[1:3] == ["0", base64.b64encode(cp.root_hash).decode()]


_ROOT = base64.b64encode(bytes(32)).decode()


@pytest.mark.parametrize(
    "body",
    [
        f"o\n01\n{_ROOT}\n",
        f"o\n-1\n{_ROOT}\n",
        f"o\n+1\n{_ROOT}\n",
        f"o\n 1\n{_ROOT}\n",
        f"o\n1_0\n{_ROOT}\n",
        f"o\n\u0661\n{_ROOT}\n",
        f"o\n9223372036854775808\n{_ROOT}\n",
        f"o\n99999999999999999999\n{_ROOT}\n",
        f"o\n1\n{_ROOT}",
        f"o\n1\n{base64.b64encode(bytes(33)).decode()}\n",
        f"o\n1\n{_ROOT[:-1]}\n",
        "o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=\n",
        f"\n1\n{_ROOT}\n",
        f"o\n1\n{_ROOT}\n\n",
        f"o\n1\n{_ROOT}\next\n\n",
        "o\n1\n",
        f"o\x01\n1\n{_ROOT}\n",
    ],
)
def test_malformed_checkpoints(body: str) -> None:
    _raises("checkpoint-malformed", parse_checkpoint, body)


def test_checkpoint_constructor_checks() -> None:
    assert Checkpoint("o", 2**63 - 1, bytes(32)).size == 2**63 - 1
    for args in [("o", -1, bytes(32)), ("o", 2**63, bytes(32)), ("o", 1, bytes(31)), ("", 1, bytes(32))]:
        _raises("checkpoint-malformed", Checkpoint, *args)
    _raises("checkpoint-malformed", Checkpoint, "o", 1, bytes(32), ("a\nb",))


# --- open_checkpoint and k-of-n witnesses -------------------------------------------------------------------

ORIGIN = "imi.example/log"
LOG = NoteSigner.from_ed25519(ORIGIN, _seeded("log", 9))
WITNESSES = [WitnessCosigner.from_ed25519(f"w{i}.example", _seeded("witness", i)) for i in range(3)]
CP = Checkpoint(ORIGIN, 42, hashlib.sha256(b"42").digest())
SIGNED = sign_note(CP.body(), [LOG])


def _cosigned(cosigners: list[WitnessCosigner]) -> str:
    return add_cosignatures(
        SIGNED, [w.cosign(CP, timestamp=1_700_000_000 + i) for i, w in enumerate(cosigners)]
    )


def test_open_checkpoint_checks_key_signature_and_origin() -> None:
    assert open_checkpoint(SIGNED, log_verifier=LOG.verifier, expected_origin=ORIGIN)[0] == CP
    other = NoteSigner.from_ed25519(ORIGIN, _seeded("log", 10)).verifier
    _raises("checkpoint-unknown-key", open_checkpoint, SIGNED, log_verifier=other, expected_origin=ORIGIN)
    _raises(
        "checkpoint-origin-mismatch", open_checkpoint, SIGNED, log_verifier=LOG.verifier, expected_origin="x"
    )
    bad = SIGNED.replace("\n42\n", "\n43\n")
    _raises(
        "checkpoint-signature-invalid",
        open_checkpoint,
        bad,
        log_verifier=LOG.verifier,
        expected_origin=ORIGIN,
    )
    _raises("note-malformed", open_checkpoint, CP.body(), log_verifier=LOG.verifier, expected_origin=ORIGIN)
    not_a_checkpoint = sign_note("hello\n", [LOG])
    _raises(
        "checkpoint-malformed",
        open_checkpoint,
        not_a_checkpoint,
        log_verifier=LOG.verifier,
        expected_origin=ORIGIN,
    )


@pytest.mark.parametrize("threshold", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("cosigners", [3, 2, 0])
def test_witness_k_of_n(threshold: int, cosigners: int) -> None:
    data = _cosigned(WITNESSES[:cosigners])
    trusted = [w.verifier for w in WITNESSES]
    kwargs: dict[str, Any] = {"log_verifier": LOG.verifier, "expected_origin": ORIGIN, "witnesses": trusted}
    if threshold > cosigners:
        _raises("witness-threshold-not-met", open_checkpoint, data, witness_threshold=threshold, **kwargs)
        return
    _, note = open_checkpoint(data, witness_threshold=threshold, **kwargs)
    names = verify_cosignatures(note, CP, trusted, threshold=threshold)
    assert names == [w.name for w in WITNESSES[:cosigners]]


def test_witness_rules() -> None:
    trusted = [w.verifier for w in WITNESSES]
    _, note = open_checkpoint(_cosigned(WITNESSES), log_verifier=LOG.verifier, expected_origin=ORIGIN)
    # Only trusted witnesses count, each once, even with two trusted keys under one name.
    assert verify_cosignatures(note, CP, trusted[:1], threshold=1) == ["w0.example"]
    twin = WitnessCosigner.from_ed25519("w0.example", _seeded("twin", 0))
    both = parse_note(add_cosignatures(note.format(), [twin.cosign(CP, timestamp=5)]))
    assert verify_cosignatures(both, CP, [trusted[0], twin.verifier], threshold=1) == ["w0.example"]
    _raises(
        "witness-threshold-not-met", verify_cosignatures, both, CP, [trusted[0], twin.verifier], threshold=2
    )
    # A cosignature of another checkpoint by a trusted witness rejects the note.
    other = Checkpoint(ORIGIN, 43, CP.root_hash)
    forged = add_cosignatures(SIGNED, [WITNESSES[0].cosign(other, timestamp=1)])
    _raises(
        "witness-signature-invalid",
        open_checkpoint,
        forged,
        log_verifier=LOG.verifier,
        expected_origin=ORIGIN,
        witnesses=trusted,
    )
    # The log key is not a witness key, nor the other way round.
    _raises("witness-threshold-not-met", verify_cosignatures, parse_note(SIGNED), CP, trusted, threshold=1)
    _raises("witness-checkpoint-mismatch", verify_cosignatures, note, other, trusted, threshold=0)
    with pytest.raises(ValueError, match="timestamp"):
        WITNESSES[0].cosign(CP, timestamp=2**63)


def test_cosignature_over_extension_lines() -> None:
    cp = Checkpoint(ORIGIN, 1, bytes(32), ("extension",))
    w = WITNESSES[0]
    signed = add_cosignatures(sign_note(cp.body(), [LOG]), [w.cosign(cp, timestamp=0)])
    open_checkpoint(
        signed, log_verifier=LOG.verifier, expected_origin=ORIGIN, witnesses=[w.verifier], witness_threshold=1
    )
    tampered = signed.replace("extension", "extensioN")
    _raises(
        "checkpoint-signature-invalid",
        open_checkpoint,
        tampered,
        log_verifier=LOG.verifier,
        expected_origin=ORIGIN,
    )
    assert not w.verifier.note_verifier.verify(tampered.encode(), parse_note(signed).signatures[1].raw)


def test_witness_api_is_reexported_by_ledger_note() -> None:
    assert ledger.note.open_checkpoint is ledger.witness.open_checkpoint
    assert ledger.note.Checkpoint is ledger.witness.Checkpoint
    with pytest.raises(AttributeError):
        _ = ledger.note.no_such_name


def test_note_dataclass_holds_what_was_parsed() -> None:
    note = parse_note(SIGNED)
    assert note == Note(CP.body(), (Signature(ORIGIN, LOG.key_id, note.signatures[0].raw),))


# --- fuzzing: malformed input only ever raises MalformedInput or VerificationFailed ----------------------------

FULL = _cosigned(WITNESSES)
_PIECES = st.sampled_from(
    ["\n", "\n\n", "— ", "—", " ", "+", "/", "=", "A", "0", "\x00", "\u2028", "é", "\ud800"]
)


def _mutate(data: st.DataObject, base: str) -> str:
    out = base
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(out)))
        j = data.draw(st.integers(i, min(len(out), i + 8)))
        out = out[:i] + data.draw(st.one_of(_PIECES, st.text(max_size=4))) + out[j:]
    return out


def _only_expected(fn: Callable[..., object], *args: Any, **kwargs: Any) -> None:
    with contextlib.suppress(*EXPECTED):
        fn(*args, **kwargs)


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.data())
def test_fuzz_signed_checkpoint(data: st.DataObject) -> None:
    mutated = _mutate(data, FULL)
    trusted = [w.verifier for w in WITNESSES]
    kwargs: dict[str, Any] = {
        "log_verifier": LOG.verifier,
        "expected_origin": ORIGIN,
        "witnesses": trusted,
        "witness_threshold": 2,
    }
    _only_expected(open_checkpoint, mutated, **kwargs)
    _only_expected(open_checkpoint, mutated.encode("utf-8", "surrogatepass"), **kwargs)
    _only_expected(add_cosignatures, SIGNED, mutated.splitlines())
    _only_expected(parse_checkpoint, mutated.partition("\n\n")[0] + "\n")


@FUZZ
@given(st.one_of(st.text(), st.binary()))
def test_fuzz_arbitrary_notes(data: str | bytes) -> None:
    _only_expected(verify_note, data, [LOG.verifier])
    _only_expected(open_checkpoint, data, log_verifier=LOG.verifier, expected_origin=ORIGIN)
    if isinstance(data, str):
        _only_expected(parse_checkpoint, data)
        _only_expected(format_note, data, [data])


@FUZZ
@given(st.data())
def test_fuzz_keys(data: st.DataObject) -> None:
    vkey = _mutate(data, data.draw(st.sampled_from([GO["peter_vkey"], WITNESSES[0].verifier.vkey])))
    for parse in (
        NoteVerifier.from_vkey,
        WitnessVerifier.from_vkey,
        NoteSigner.from_skey,
        WitnessCosigner.from_skey,
    ):
        _only_expected(parse, vkey)
        _only_expected(parse, "PRIVATE+KEY+" + vkey)
