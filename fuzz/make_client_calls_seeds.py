#!/usr/bin/env python3
# Hand-made seeds for fuzz/seeds/client_calls/, encoded the way arbitrary 1.x's derive
# decodes lynn-proto/src/fuzzing/client_calls_target.rs's Setup and Vec<Op>.
import struct, os, sys
def u8(v): return bytes([v & 0xff])
def u32(v): return struct.pack('<I', v)
def b(v): return u8(1 if v else 0)
def en(i, n): return u32(-(-(i << 32) // n))
def opt(x): return b(False) if x is None else b(True) + x
def vec(items): return b''.join(b(True) + it for it in items) + b(False)
def setup(ids, max_pending, offline, timeout_ms, send_queue, tight, in_flight):
    return (b(ids) + u8(max_pending - 1) + u8(offline) + opt(None if timeout_ms is None else u8(timeout_ms - 1))
            + u8(send_queue - 15) + opt(None if tight is None else u8(tight - 5)) + u8(in_flight - 1))
N = 12
def send(m, x, wait): return en(0, N) + u8(m) + u8(x) + b(wait)
def request(m, x): return en(1, N) + u8(m) + u8(x)
ECHO = en(0, 3); SILENT = en(2, 3)
def METHOD(m): return en(1, 3) + u8(m)
def answer(pick, reply): return en(2, N) + u8(pick) + reply
def push(m, x): return en(3, N) + u8(m) + u8(x)
def advance(ms, unread=None): return en(4, N) + u8(ms) + opt(None if unread is None else u8(unread))
JUST_BEFORE = en(5, N)
def at_deadline(unread=None): return en(6, N) + opt(None if unread is None else u8(unread))
def flow(to_server, write=0, read=0): return en(7, N) + b(to_server) + u8(write) + u8(read)
def forge_small(i, m, x): return en(8, N) + en(0, 2) + u8(i) + u8(m) + u8(x)
def forge_any(i, m, x): return en(8, N) + en(1, 2) + u32(i) + u8(m) + u8(x)
RECONNECT = en(9, N); FINISH = en(10, N); LOSE = en(11, N)
UP, DOWN = flow(True), flow(False)

seeds = {
    # v1: pipelined requests completed out of order come back in order, each to its caller;
    # the echo of a send is a push (no request of its method); replies arrive in 7-byte reads.
    'v1_pipelined_replies_out_of_order': (setup(False, 4, 0, 10, 142, None, 8),
        [request(1, 0), request(1, 3), request(2, 5), send(3, 1, True), UP, answer(1, ECHO),
         answer(0, ECHO), answer(0, ECHO), answer(0, ECHO)] + [flow(False, 0, 7)] * 12
        + [DOWN, FINISH]),
    # v1: an unanswered request times out, the other pending one loses its order and the
    # connection closes (CorrelationLost); a request meanwhile waits offline and succeeds
    # on the next connection.
    'v1_timeout_loses_order_then_reconnect': (setup(False, 3, 2, 10, 142, None, 8),
        [request(1, 0), UP, answer(0, SILENT), advance(5), request(1, 1), UP, JUST_BEFORE,
         at_deadline(), request(2, 2), RECONNECT, UP, answer(0, ECHO), DOWN, FINISH]),
    # ids: replies in any order; three requests expire together behind 4 unread pushes (the
    # connection stays), their replies then come late; a forged reply naming a pending id
    # answers it, one naming an unknown id is late; a push of a pending method stays a push.
    'ids_late_forged_and_unread_pushes': (setup(True, 4, 0, 20, 142, None, 8),
        [request(1, 0), request(1, 1), request(2, 2), UP, answer(2, ECHO), advance(10),
         request(3, 3), UP, at_deadline(4), answer(0, ECHO), DOWN, forge_small(3, 3, 0),
         forge_any(77777, 0, 1), DOWN, answer(0, METHOD(2)), answer(0, ECHO), push(3, 9),
         flow(False, 5, 0), flow(False, 0, 3), DOWN, FINISH]),
    # Disconnected: the offline queue keeps three calls (a send is answered at once), refuses
    # the fourth, and sends them first on the next connection.
    'offline_queue_bound_and_reconnect': (setup(True, 4, 3, None, 142, None, 8),
        [LOSE, request(1, 0), send(2, 1, True), request(1, 2), send(2, 3, False), RECONNECT,
         UP, answer(0, ECHO), answer(0, ECHO), answer(0, ECHO), DOWN, FINISH]),
    # A 15-byte send queue: waiting sends and requests go out on Writable, try_send fails at
    # once, a request finds the pending table full; the server takes one message at a time.
    'full_send_queue_waits_and_try_send_fails': (setup(False, 1, 4, 64, 15, None, 1),
        [send(0, 0, True), send(0, 1, True), send(0, 2, False), request(1, 3), request(1, 4),
         flow(True, 10, 0), UP, UP, UP, answer(0, ECHO), UP, answer(0, ECHO), UP,
         answer(0, ECHO), DOWN, FINISH]),
    # A frame limit that some bodies exceed: sends and requests that do not fit fail at once.
    'bodies_over_the_frame_limit': (setup(False, 4, 2, None, 142, 20, 8),
        [send(0, 15, True), request(1, 15), request(1, 0), UP, answer(0, ECHO), DOWN,
         LOSE, request(2, 15), send(2, 1, True), RECONNECT, UP, answer(0, ECHO), DOWN]),
}
out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds", "client_calls")
os.makedirs(out, exist_ok=True)
for name, (s, ops) in seeds.items():
    with open(os.path.join(out, name), 'wb') as f:
        f.write(s + vec(ops))
