#!/usr/bin/env python3
"""Interoperability test: an independent client speaks the itb link protocol to a running pump.

Nothing here comes from the Rust code: the framing, the hellos and the prologue are written from
docs/PROTOCOL.md, the handshake and the transport encryption are done by the `noiseprotocol`
package, and the messages are encoded and decoded by `cbor2`.

    interop.py ADDR PROGRAMMER_KEY [PTM_KEY]

ADDR is HOST:PORT of `itb pump run`; PROGRAMMER_KEY (and PTM_KEY) are key files written by
`itb pump provision`. Exits 0 and prints PASS lines when every check holds; exits 1 otherwise.
"""

import re
import socket
import struct
import sys

import cbor2
from noise.connection import Keypair, NoiseConnection

NOISE_NAME = b"Noise_IK_25519_ChaChaPoly_BLAKE2s"
PROTOCOL_VERSION = 2
PROLOGUE_LABEL = b"ITB-link hello v1\x00"
TIMEOUT_S = 10.0
TAG_LEN = 16


class Failure(Exception):
    pass


def check(condition, what):
    if not condition:
        raise Failure(what)


def read_key_file(path):
    """The three `key = "value"` lines of a programmer.key / ptm.key TOML file."""
    fields = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r'^\s*([a-z_]+)\s*=\s*"([^"]*)"\s*$', line)
            if m:
                fields[m.group(1)] = m.group(2)
    for name in ("role", "private_key", "pump_public_key"):
        check(name in fields, f"{path}: no {name}")
    return fields


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise Failure(f"connection closed by the pump after {len(data)} of {n} bytes")
        data += chunk
    return data


def send_frame(sock, body):
    check(1 <= len(body) <= 0xFFFF, f"frame body of {len(body)} bytes")
    sock.sendall(struct.pack(">H", len(body)) + body)


def recv_frame(sock):
    (length,) = struct.unpack(">H", recv_exact(sock, 2))
    check(length > 0, "the pump sent a zero-length frame")
    return recv_exact(sock, length)


class Client:
    """One initiator session: hello, Noise IK, key confirmation, then request/response."""

    def __init__(self, addr, key):
        host, port = addr.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=TIMEOUT_S)
        self.sock.settimeout(TIMEOUT_S)

        # Hello: "ITB", count, versions. We speak version 2 only (the message catalogue of
        # docs/PROTOCOL.md).
        offer = b"ITB" + bytes([1, PROTOCOL_VERSION])
        send_frame(self.sock, offer)
        answer = recv_frame(self.sock)
        check(answer == b"ITB\x01" + bytes([PROTOCOL_VERSION]), f"hello answer {answer!r} is not accept(2)")

        # Prologue: label || len(offer) u16 BE || offer || len(answer) u16 BE || answer.
        prologue = (
            PROLOGUE_LABEL
            + struct.pack(">H", len(offer)) + offer
            + struct.pack(">H", len(answer)) + answer
        )

        noise = NoiseConnection.from_name(NOISE_NAME)
        noise.set_as_initiator()
        noise.set_prologue(prologue)
        noise.set_keypair_from_private_bytes(Keypair.STATIC, bytes.fromhex(key["private_key"]))
        noise.set_keypair_from_public_bytes(Keypair.REMOTE_STATIC, bytes.fromhex(key["pump_public_key"]))
        noise.start_handshake()

        message1 = bytes(noise.write_message(b""))  # -> e, es, s, ss (empty payload)
        check(len(message1) == 96, f"message 1 is {len(message1)} bytes, expected 96")
        send_frame(self.sock, message1)
        message2 = recv_frame(self.sock)  # <- e, ee, se
        check(len(message2) == 48, f"message 2 is {len(message2)} bytes, expected 48")
        payload = noise.read_message(message2)
        check(len(payload) == 0, "message 2 carries a payload")
        check(noise.handshake_finished, "handshake not finished after message 2")

        # Key confirmation: one transport frame with an empty payload (the 16-byte tag alone).
        confirmation = noise.encrypt(b"")
        check(len(confirmation) == TAG_LEN, f"confirmation is {len(confirmation)} bytes")
        send_frame(self.sock, confirmation)
        self.noise = noise

    def request(self, request):
        send_frame(self.sock, self.noise.encrypt(cbor2.dumps(request)))
        reply = self.noise.decrypt(recv_frame(self.sock))
        return cbor2.loads(reply)

    def close(self):
        self.sock.close()


def check_status(response):
    check(isinstance(response, dict), f"response {response!r} is not a map")
    check(response.get("id") == 1, f"response id {response.get('id')!r}, expected 1")
    body = response.get("body")
    check(isinstance(body, dict) and body.get("type") == "status", f"body {body!r} is not a status")
    check(body.get("profile") == "synchromed-ii-20", f"profile {body.get('profile')!r}")
    check(body.get("state") == "therapy", f"state {body.get('state')!r}")
    check(body.get("capacity_nl") == 20_000_000, f"capacity_nl {body.get('capacity_nl')!r}")
    # Fresh 20 mL fill at 100 micrograms/day (0.05 mL/day): at most a few hundred nL gone.
    reservoir = body.get("reservoir_nl")
    check(isinstance(reservoir, int) and 19_990_000 <= reservoir <= 20_000_000, f"reservoir_nl {reservoir!r}")
    check(body.get("concentration_ng_per_ml") == 2_000_000, f"concentration {body.get('concentration_ng_per_ml')!r}")
    check(isinstance(body.get("program_number"), int), "program_number is not an integer")
    check(isinstance(body.get("alarms"), list), "alarms is not a list")
    return body


def check_refused(response, request_id, what, code="not_permitted"):
    check(isinstance(response, dict) and response.get("id") == request_id, f"{what}: response {response!r}")
    body = response.get("body")
    check(isinstance(body, dict) and body.get("type") == "refused", f"{what}: not refused: {body!r}")
    check(body.get("code") == code, f"{what}: refusal code {body.get('code')!r}, expected {code}")
    return body


def main(argv):
    if len(argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    addr, programmer_path = argv[1], argv[2]
    ptm_path = argv[3] if len(argv) == 4 else None
    try:
        programmer = read_key_file(programmer_path)
        check(programmer["role"] == "clinician", f"{programmer_path} is not a clinician key")

        client = Client(addr, programmer)
        print("interop: hello, Noise IK handshake and key confirmation done (clinician key)")
        status = check_status(client.request({"id": 1, "body": {"type": "interrogate"}}))
        print(
            "interop: interrogate -> status: profile {profile}, state {state}, reservoir {reservoir_nl} nL, "
            "program {program_number}".format(**status)
        )
        refused = check_refused(client.request({"id": 2, "body": {"type": "ptm_bolus"}}), 2, "clinician ptm_bolus")
        print(f"interop: clinician ptm_bolus -> refused ({refused['code']}): {refused['message']}")
        # An unknown field beside a request without fields is refused, and nothing is done.
        response = client.request({"id": 3, "body": {"type": "stop", "force": True}})
        body = response.get("body") if isinstance(response, dict) else None
        check(isinstance(body, dict) and body.get("type") == "refused" and body.get("code") == "malformed",
              f"stop with an unknown field: {response!r}")
        print(f"interop: stop with an unknown field -> refused ({body['code']})")
        response = client.request({"id": 4, "body": {"type": "interrogate"}, "extra": 1})
        body = response.get("body") if isinstance(response, dict) else None
        check(isinstance(body, dict) and body.get("code") == "malformed", f"request with an unknown field: {response!r}")
        after = client.request({"id": 5, "body": {"type": "interrogate"}})
        check(after.get("body", {}).get("state") == "therapy", f"the pump stopped: {after!r}")
        print("interop: an unknown field beside the body -> refused; the pump still delivers its therapy")
        # The same id with another body is refused; the same id and body gets the first answer.
        reused = check_refused(client.request({"id": 5, "body": {"type": "ptm_status"}}), 5, "reused id",
                               code="request_id_reused")
        print(f"interop: a reused request id with another body -> refused ({reused['code']})")
        again = client.request({"id": 5, "body": {"type": "interrogate"}})
        check(again == after, "a retried request got another answer")
        print("interop: the same request again -> the first answer")
        client.close()

        if ptm_path is not None:
            ptm = read_key_file(ptm_path)
            check(ptm["role"] == "patient", f"{ptm_path} is not a patient key")
            client = Client(addr, ptm)
            refused = check_refused(client.request({"id": 1, "body": {"type": "interrogate"}}), 1, "patient interrogate")
            print(f"interop: patient interrogate -> refused ({refused['code']})")
            response = client.request({"id": 2, "body": {"type": "ptm_status"}})
            body = response.get("body") if isinstance(response, dict) else None
            check(isinstance(body, dict) and body.get("type") == "ptm_status", f"patient ptm_status: {response!r}")
            print(f"interop: patient ptm_status -> ptm_status (allowed per 24 h: {body.get('allowed_per_24h')})")
            client.close()
    except Exception as error:  # any error (protocol, socket, decoding) is a failure
        print(f"interop: FAIL: {type(error).__name__}: {error}")
        return 1
    print("interop: PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
