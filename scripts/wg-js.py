#!/usr/bin/env python3
# JetStream API over plain NATS protocol, Python standard library only. NATS_PORT: default 14222.
#   python3 scripts/wg-js.py API_SUBJECT [JSON]         one request, prints the answer
#   python3 scripts/wg-js.py dlq ORT dead|rejected      every message still on wg.<ORT>.dlq.<kind>
import base64, json, os, socket, sys

def js(subject, req=b""):
    s = socket.create_connection(("127.0.0.1", int(os.environ.get("NATS_PORT", "14222"))), timeout=5)
    f = s.makefile("rb"); f.readline()  # the server's INFO
    s.sendall(b'CONNECT {"verbose":false,"headers":true,"no_responders":true}\r\nSUB _INBOX.wg 1\r\n'
              b"PUB %s _INBOX.wg %d\r\n%s\r\n" % (subject.encode(), len(req), req))
    while True:
        line = f.readline().split()
        if line[0] == b"PING": s.sendall(b"PONG\r\n")
        elif line[0] == b"-ERR": sys.exit(b" ".join(line).decode())
        elif line[0] in (b"MSG", b"HMSG"):
            body = f.read(int(line[-1]) + 2)[:-2]; s.close()
            if line[0] == b"HMSG": body = body[body.find(b"\r\n\r\n") + 4:]
            return json.loads(body or b'{"error": "no responders: is JetStream enabled?"}')

if sys.argv[1] == "dlq":
    ort, kind, seq = sys.argv[2], sys.argv[3], 1
    req = lambda seq: json.dumps({"next_by_subj": f"wg.{ort}.dlq.{kind}", "seq": seq}).encode()
    while "message" in (r := js(f"$JS.API.STREAM.MSG.GET.wg_{ort}_dlq", req(seq))):
        m = r["message"]; seq = m["seq"] + 1
        print(m["seq"], m["time"], json.dumps(json.loads(base64.b64decode(m["data"]))["payload"]))
else:
    print(json.dumps(js(sys.argv[1], sys.argv[2].encode() if len(sys.argv) > 2 else b""), indent=1))
