"""Test-only FIX 4.4 venue for telemesh's FIX pilot: one QuickFIX engine (quickfix-ssl wheel)
with a trading acceptor and a drop-copy acceptor that copies every execution report.

Order handling on the trading session (by ClOrdID prefix):
  (none)   ack (150=0) then one full fill (150=F) at the limit price
  PART-    ack then two partial fills
  PX-      like (none), but the drop-copy copy of each fill carries LastPx + 0.25
  SKIP-    like (none), but the fill is never copied to the drop copy
  REJ-     rejected (150=8)
A NewOrderSingle whose ClOrdID the venue already accepted (e.g. a PossResend 97=Y after a
crash) is rejected as a duplicate (150=8, OrdRejReason 103=6) and never becomes an order, as
real venues do. An OrderCancelRequest (35=F) is answered with 150=4/39=4 and copied.
Every drop-copy copy carries OnBehalfOfCompID (115) = the trading session's client CompID, and
every execution report the custom tag 5979 (as CME sends).

Control channel (127.0.0.1:<control-port>, one JSON object per line, one JSON reply per line):
  {"cmd":"status"}                                   logon state and counters
  {"cmd":"dc_block"} / {"cmd":"dc_unblock"}          log the drop copy out and refuse / allow logons
  {"cmd":"orders"}                                   every NewOrderSingle received, per ClOrdID:
                                                     {"received": {cl: n}, "accepted": {cl: n},
                                                      "duplicates": n, "poss_resend": n}
  {"cmd":"replay_dc","n":3}                          resend the last n copies with PossResend (97=Y)
  {"cmd":"dc_only_fill","cl_ord_id":"X","symbol":"AAPL","source":"PILOT"}
                                                     a fill on the drop copy only
  {"cmd":"malformed","session":"dropcopy"|"trading","kind":"missing_exec_id"|"unknown_exec_type"|"bad_qty"}
"""

import argparse
import datetime
import itertools
import json
import os
import socketserver
import sys
import threading
import time

import quickfix as fix

TRADING = "trading"
DROPCOPY = "dropcopy"


def utc_now():
    return datetime.datetime.utcnow().strftime("%Y%m%d-%H:%M:%S.%f")[:-3]


class Venue(fix.Application):
    def __init__(self, args):
        super().__init__()
        self.args = args
        self.lock = threading.RLock()
        self.ids = itertools.count(1)
        self.run = str(int(time.time() * 1000))  # ids stay unique across restarts
        self.sessions = {}
        self.dc_blocked = False
        self.received = {}  # ClOrdID -> NewOrderSingle messages received (duplicates included)
        self.accepted = {}  # ClOrdID -> orders accepted (1 unless the venue is broken)
        self.duplicates = 0
        self.poss_resend = 0
        self.copies = []  # field lists of drop-copy copies, for replay
        self.counters = {"orders": 0, "execs": 0, "copies": 0}

    def role(self, sid):
        sender = sid.getSenderCompID().getValue()
        return DROPCOPY if sender == self.args.dropcopy_comp_id else TRADING

    def next_id(self, prefix):
        return f"{prefix}{self.run}-{next(self.ids)}"

    # QuickFIX callbacks
    def onCreate(self, sid):
        self.sessions[self.role(sid)] = sid

    def onLogon(self, sid):
        print("logon", sid.toString(), flush=True)

    def onLogout(self, sid):
        print("logout", sid.toString(), flush=True)

    def toAdmin(self, message, sid):
        pass

    def fromAdmin(self, message, sid):
        msg_type = fix.MsgType()
        message.getHeader().getField(msg_type)
        if msg_type.getValue() == fix.MsgType_Logon and self.role(sid) == DROPCOPY and self.dc_blocked:
            raise fix.RejectLogon("drop copy blocked by the test")


    def toApp(self, message, sid):
        pass

    def fromApp(self, message, sid):
        msg_type = fix.MsgType()
        message.getHeader().getField(msg_type)
        if self.role(sid) != TRADING:
            return
        with self.lock:
            if msg_type.getValue() == fix.MsgType_NewOrderSingle:
                cl = message.getField(11)
                self.received[cl] = self.received.get(cl, 0) + 1
                header = message.getHeader()
                if header.isSetField(97) and header.getField(97) == "Y":
                    self.poss_resend += 1
                if cl in self.accepted:
                    self.duplicates += 1
                    self.reject_duplicate(message)
                    return
                self.accepted[cl] = self.accepted.get(cl, 0) + 1
                self.on_new_order(message)
            elif msg_type.getValue() == fix.MsgType_OrderCancelRequest:
                self.on_cancel(message)

    # order handling
    def on_new_order(self, m):
        get = lambda tag: m.getField(tag)  # noqa: E731
        cl = get(11)
        symbol = get(55)
        side = get(54)
        qty = float(get(38))
        px = float(get(44)) if m.isSetField(44) else 100.0
        oid = self.next_id("O")
        self.counters["orders"] += 1
        base = {"37": oid, "11": cl, "55": symbol, "54": side, "38": fmt(qty), "44": fmt(px)}
        if cl.startswith("REJ-"):
            self.emit(dict(base, **{"150": "8", "39": "8", "14": "0", "151": "0", "6": "0", "58": "rejected by test venue"}), cl)
            return
        self.emit(dict(base, **{"150": "0", "39": "0", "14": "0", "151": fmt(qty), "6": "0"}), cl)
        fills = [qty / 2, qty - qty / 2] if cl.startswith("PART-") else [qty]
        cum = 0.0
        for last in fills:
            cum += last
            leaves = qty - cum
            self.emit(
                dict(base, **{
                    "150": "F", "39": "2" if leaves == 0 else "1", "32": fmt(last), "31": fmt(px),
                    "14": fmt(cum), "151": fmt(leaves), "6": fmt(px),
                }),
                cl,
            )

    def reject_duplicate(self, m):
        get = lambda tag: m.getField(tag)  # noqa: E731
        cl = get(11)
        base = {"37": "NONE", "11": cl, "55": get(55), "54": get(54), "38": get(38), "150": "8", "39": "8",
                "14": "0", "151": "0", "6": "0", "103": "6", "58": "duplicate ClOrdID"}
        self.emit(base, cl)

    def on_cancel(self, m):
        cl = m.getField(11)
        orig = m.getField(41)
        base = {
            "37": self.next_id("O"), "11": cl, "41": orig, "55": m.getField(55), "54": m.getField(54),
            "38": m.getField(38), "150": "4", "39": "4", "14": "0", "151": "0", "6": "0",
        }
        self.emit(base, cl)

    def emit(self, fields, cl):
        """Sends one ER on the trading session and its copy on the drop copy."""
        fields = dict(fields)
        fields["17"] = self.next_id("E")
        fields["60"] = utc_now()
        fields["5979"] = str(time.time_ns())  # a custom venue tag (CME's RequestTime), as real venues send
        self.send(TRADING, fields)
        self.counters["execs"] += 1
        if cl.startswith("SKIP-") and fields["150"] == "F":
            return
        copy = dict(fields)
        if cl.startswith("PX-") and fields["150"] == "F":
            copy["31"] = fmt(float(copy["31"]) + 0.25)
        self.copy(copy)

    def copy(self, fields, resend=False):
        fields = dict(fields)
        self.copies.append(fields)
        self.copies = self.copies[-1000:]
        header = {"115": self.args.trading_client_id}
        if resend:
            header["97"] = "Y"
        self.send(DROPCOPY, fields, header)
        self.counters["copies"] += 1

    def send(self, role, fields, header=None):
        sid = self.sessions.get(role)
        if sid is None:
            return False
        message = fix.Message()
        h = message.getHeader()
        h.setField(fix.BeginString("FIX.4.4"))
        h.setField(fix.MsgType("8"))
        for tag, value in (header or {}).items():
            h.setField(fix.StringField(int(tag), str(value)))
        for tag, value in fields.items():
            message.setField(fix.StringField(int(tag), str(value)))
        return fix.Session.sendToTarget(message, sid)

    # control commands
    def command(self, cmd):
        with self.lock:
            name = cmd.get("cmd")
            if name == "status":
                return {"ok": True, "trading": self.logged_on(TRADING), "dropcopy": self.logged_on(DROPCOPY),
                        "dc_blocked": self.dc_blocked, **self.counters}
            if name == "dc_block":
                self.dc_blocked = True
                session = self.session(DROPCOPY)
                if session is not None and session.isLoggedOn():
                    session.logout("drop copy blocked by the test")
                return {"ok": True}
            if name == "orders":
                return {"ok": True, "received": dict(self.received), "accepted": dict(self.accepted),
                        "duplicates": self.duplicates, "poss_resend": self.poss_resend}
            if name == "dc_unblock":
                self.dc_blocked = False
                session = self.session(DROPCOPY)
                if session is not None:
                    session.logon()  # logout() disabled the session; enable it again
                return {"ok": True}
            if name == "replay_dc":
                n = int(cmd.get("n", 1))
                for fields in list(self.copies[-n:]):
                    self.copy(fields, resend=True)
                return {"ok": True, "replayed": min(n, len(self.copies))}
            if name == "dc_only_fill":
                qty = str(cmd.get("qty", "10"))
                px = str(cmd.get("px", "10"))
                fields = {
                    "37": self.next_id("O"), "17": self.next_id("E"), "11": cmd.get("cl_ord_id", "UNKNOWN"),
                    "55": cmd.get("symbol", "AAPL"), "54": "1", "38": qty, "44": px, "150": "F", "39": "2",
                    "32": qty, "31": px, "14": qty, "151": "0", "6": px, "60": utc_now(),
                }
                header = {"115": cmd.get("source", self.args.trading_client_id)}
                self.send(DROPCOPY, fields, header)
                return {"ok": True, "exec_id": fields["17"]}
            if name == "malformed":
                role = cmd.get("session", DROPCOPY)
                kind = cmd.get("kind", "missing_exec_id")
                fields = {
                    "37": self.next_id("O"), "17": self.next_id("E"), "11": "BAD-" + kind, "55": "AAPL",
                    "54": "1", "150": "F", "39": "2", "32": "10", "31": "10", "14": "10", "151": "0", "6": "10",
                    "60": utc_now(), "5979": "custom venue tag",
                }
                if kind == "missing_exec_id":
                    del fields["17"]
                elif kind == "unknown_exec_type":
                    fields["150"] = "Z"
                elif kind == "bad_qty":
                    fields["32"] = "ten"
                else:
                    return {"ok": False, "error": f"unknown kind {kind}"}
                header = {"115": self.args.trading_client_id} if role == DROPCOPY else {}
                return {"ok": bool(self.send(role, fields, header)), "exec_id": fields.get("17")}
            return {"ok": False, "error": f"unknown command {name!r}"}

    def session(self, role):
        sid = self.sessions.get(role)
        return fix.Session.lookupSession(sid) if sid is not None else None

    def logged_on(self, role):
        session = self.session(role)
        return bool(session is not None and session.isLoggedOn())


def fmt(x):
    text = f"{x:.8f}".rstrip("0").rstrip(".")
    return text or "0"


def write_config(args):
    os.makedirs(args.data_dir, exist_ok=True)
    dictionary = os.path.join(sys.prefix, "share", "quickfix", "FIX44.xml")
    path = os.path.join(args.data_dir, "venue.cfg")
    with open(path, "w") as f:
        f.write(f"""# generated by deploy/fix-venue/venue.py
[DEFAULT]
ConnectionType=acceptor
SocketReuseAddress=Y
StartTime=00:00:00
EndTime=00:00:00
FileStorePath={os.path.join(args.data_dir, "store")}
FileLogPath={os.path.join(args.data_dir, "log")}
UseDataDictionary=Y
DataDictionary={dictionary}
BeginString=FIX.4.4
ResetOnLogon=N
ResetOnLogout=N
ResetOnDisconnect=N

[SESSION]
SenderCompID={args.trading_comp_id}
TargetCompID={args.trading_client_id}
SocketAcceptPort={args.trading_port}

[SESSION]
SenderCompID={args.dropcopy_comp_id}
TargetCompID={args.dropcopy_client_id}
SocketAcceptPort={args.dropcopy_port}
""")
    return path


def serve_control(venue, port):
    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            for line in self.rfile:
                line = line.strip()
                if not line:
                    continue
                try:
                    reply = venue.command(json.loads(line))
                except Exception as e:  # a bad command never stops the venue
                    reply = {"ok": False, "error": str(e)}
                self.wfile.write((json.dumps(reply) + "\n").encode())
                self.wfile.flush()

    class Server(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        daemon_threads = True

    server = Server(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--trading-port", type=int, default=5101)
    p.add_argument("--dropcopy-port", type=int, default=5102)
    p.add_argument("--control-port", type=int, default=5103)
    p.add_argument("--trading-comp-id", default="VENUE")
    p.add_argument("--trading-client-id", default="PILOT")
    p.add_argument("--dropcopy-comp-id", default="VENUE_DC")
    p.add_argument("--dropcopy-client-id", default="PILOT_DC")
    args = p.parse_args()
    settings = fix.SessionSettings(write_config(args))
    venue = Venue(args)
    acceptor = fix.SocketAcceptor(venue, fix.FileStoreFactory(settings), settings, fix.FileLogFactory(settings))
    acceptor.start()
    serve_control(venue, args.control_port)
    print(f"venue up: trading {args.trading_port}, dropcopy {args.dropcopy_port}, control {args.control_port}", flush=True)
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        acceptor.stop()


if __name__ == "__main__":
    main()
