#!/usr/bin/env python3
# Writes the hand-made seeds in fuzz/seeds/<target>/ (run: python3 fuzz/make_seeds.py).
# The structures mirror the Arbitrary types in lynn-proto/src/fuzzing/*_target.rs; keep
# them in step when those change.
# Encodes inputs the way arbitrary 1.5's derive decodes them (ints little-endian, bool = u8&1,
# enum variant = (u32 * n) >> 32, Option = bool + value, Vec = (true + item)* false).
import struct, os
def u8(v): return bytes([v & 0xff])
def u16(v): return struct.pack('<H', v)
def u32(v): return struct.pack('<I', v)
def u64(v): return struct.pack('<Q', v)
def b(v): return u8(1 if v else 0)
def en(i, n): return u32(-(-(i << 32) // n))
def opt(x): return b(False) if x is None else b(True) + x
def vec(items): return b''.join(b(True) + it for it in items) + b(False)
def bytesvec(bs): return vec([u8(c) for c in bs])
HELLO = bytes.fromhex('d9230a00000000000000010100') + b'hello' + bytes.fromhex('271e')
HB = bytes.fromhex('d923050000000000000002000027 1e'.replace(' ', ''))
DEF = u16(9177) + u16(7719)
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'seeds')
def write(target, name, data):
    with open(os.path.join(root, target, name), 'wb') as f: f.write(data)

# ---- decoder: Input { marks, max_len: MaxLen(2), pieces: Vec<Piece(3)>, chunks: Vec<u8> }
def small(n): return en(0, 2) + u8(n)
def anymax(n): return en(1, 2) + u64(n)
def frame(kind, method, body, bad_tail=False): return en(0, 3) + u8(kind) + u16(method) + bytesvec(body) + b(bad_tail)
def forged(lenfield, rest): return en(1, 3) + lenfield + bytesvec(rest)
def raw(bs): return en(2, 3) + bytesvec(bs)
def L_small(n): return en(0, 4) + u8(n)
L_atmax = en(1, 4); L_above = en(2, 4)
def dec(marks, maxlen, pieces, chunks): return marks + maxlen + vec(pieces) + bytesvec(chunks)
MIB10 = 10 * 1024 * 1024
write('decoder', 'design_sample_frames_byte_by_byte', dec(DEF, anymax(MIB10), [raw(HELLO), raw(HB)], [1] * 35))
write('decoder', 'design_sample_frames_encoded', dec(DEF, anymax(MIB10), [frame(1, 1, b'hello'), frame(2, 0, b'')], [3, 7, 0, 20]))
write('decoder', 'bad_header_after_two_frames', dec(DEF, anymax(MIB10), [raw(HELLO), raw(HB), raw(b'xx')], [2, 11, 1, 30]))
write('decoder', 'bad_tail', dec(DEF, small(40), [frame(1, 7, b'abc'), frame(1, 8, b'defg', True)], [5, 5, 5]))
write('decoder', 'length_too_small', dec(DEF, small(0), [frame(2, 0, b''), forged(L_small(4), b'\x01\x00\x00')], [9, 1, 9, 1]))
write('decoder', 'length_too_large_at_ten_bytes', dec(DEF, small(3), [frame(1, 1, b'abc'), forged(L_above, b'')], [10, 10]))
write('decoder', 'length_at_max_partial', dec(DEF, small(20), [forged(L_atmax, b'\x01\x02\x00' + b'z' * 10)], [4, 4]))
write('decoder', 'unknown_kind', dec(DEF, anymax(MIB10), [frame(9, 3, b'?'), frame(0, 0, b'')], []))
write('decoder', 'custom_marks_and_limit', dec(u16(1) + u16(2), small(3), [frame(1, 7, b'abc'), frame(1, 7, b'abcd')], [1, 2, 3]))

# ---- connection: Setup + Vec<Op(15)>
def ms(n): return opt(None if n is None else u8(n - 1))
def setup(marks=DEF, maxlen=2000, peermax=2000, hb=None, idle=None, read=None, write_=None, liveness=0,
          sql=285, send_full=0, mif=4, mqe=7, rc=63, release=None):
    return (marks + u16(maxlen - 5) + u16(peermax - 5) + ms(hb) + ms(idle) + ms(read) + ms(write_)
            + en(liveness, 2) + u16(sql - 15) + en(send_full, 2) + u8(mif) + u8(mqe - 1) + u8(rc - 1)
            + ms(release))
N = 15
def bsmall(bs): return en(0, 2) + bytesvec(bs)
def blarge(n, fill): return en(1, 2) + u16(n - 1000) + u8(fill)
def peer(kind, method, body): return en(0, N) + kind + u16(method) + body
K_MSG = en(0, 3); K_HB = en(1, 3)
def K_UNK(x): return en(2, 3) + u8(x)
def garbage(bs): return en(1, N) + bytesvec(bs)
def deliver(n=0, via=False): return en(2, N) + u16(n) + b(via)
DRAIN = en(3, N)
def wr(n=0, slots=3): return en(4, N) + u16(n) + u8(slots)
def send(method, body): return en(5, N) + u16(method) + body
def send_enc(frames): return en(6, N) + vec([u16(m) + bd for m, bd in frames])
def complete(pick, bogus=False, reply=None): return en(7, N) + u8(pick) + b(bogus) + opt(None if reply is None else u16(reply[0]) + reply[1])
TO_DEADLINE = en(8, N)
def adv(n): return en(9, N) + u16(n)
CLOSE = en(10, N); EOF = en(11, N); TERR = en(12, N)
def abort(m): return en(13, N) + u16(m)
# DeliverInline { len, answers: Vec<Answer { steps: Vec<Step(3)>, defer }> }
def deliver_inline(answers, n=0): return en(14, N) + u16(n) + vec(answers)
def answer(steps, defer=False): return vec(steps) + b(defer)
def reply(method, body): return en(0, 3) + u16(method) + body
def echo(method): return en(1, 3) + u16(method)
WITHDRAW = en(2, 3)
def conn(s, ops): return s + vec(ops)
write('connection', 'echo_in_request_order', conn(setup(idle=60), [
    peer(K_MSG, 1, bsmall(b'hello')), peer(K_MSG, 2, bsmall(b'world')), peer(K_HB, 0, bsmall(b'')),
    deliver(), DRAIN, complete(1, reply=(2, bsmall(b'second'))), wr(), complete(0, reply=(1, bsmall(b'first'))),
    wr(5), wr(), DRAIN, CLOSE, DRAIN, wr()]))
write('connection', 'client_heartbeats_and_idle', conn(setup(hb=10, idle=40, mif=0), [
    TO_DEADLINE, wr(), TO_DEADLINE, wr(3), TO_DEADLINE, peer(K_HB, 0, bsmall(b'')), deliver(8), adv(50),
    deliver(), DRAIN, TO_DEADLINE, TO_DEADLINE, TO_DEADLINE, TO_DEADLINE, DRAIN]))
write('connection', 'backpressure_writable', conn(setup(sql=40, mif=1, write_=30), [
    send(1, bsmall(b'0123456789')), send(2, bsmall(b'0123456789')), send(3, bsmall(b'x')), send(4, bsmall(b'y')),
    peer(K_MSG, 5, bsmall(b'ignored while full')), deliver(), wr(20), wr(0), DRAIN, send(4, blarge(1100, 7)),
    wr(1, 0), adv(100), TO_DEADLINE, DRAIN]))
write('connection', 'slow_consumer_closes', conn(setup(sql=15, send_full=1), [
    send(1, bsmall(b'')), send(1, bsmall(b'')), DRAIN, wr()]))
write('connection', 'protocol_error_after_frames', conn(setup(mif=2, mqe=2), [
    peer(K_MSG, 1, bsmall(b'a')), peer(K_UNK(9), 1, bsmall(b'u')), peer(K_MSG, 2, bsmall(b'b')),
    garbage(b'\x00\x00garbage'), deliver(7), deliver(), DRAIN, complete(0, reply=(1, bsmall(b'A'))), DRAIN, wr()]))
write('connection', 'eof_mid_frame', conn(setup(read=20, mif=0), [
    peer(K_MSG, 1, bsmall(b'whole')), peer(K_MSG, 2, bsmall(b'cut short')), deliver(30, True), EOF, DRAIN]))
write('connection', 'read_timeout_on_partial_frame', conn(setup(read=5, idle=50, mif=0), [
    peer(K_MSG, 1, bsmall(b'partial')), deliver(12), TO_DEADLINE, DRAIN]))
write('connection', 'oversized_inbound_and_outbound', conn(setup(maxlen=20, peermax=10), [
    send(1, bsmall(b'123456')), send_enc([(1, bsmall(b'12345')), (2, blarge(1500, 1))]),
    complete(3, True, (1, bsmall(b''))), peer(K_MSG, 1, bsmall(b'this body is too long')), deliver(), DRAIN, wr()]))
# The minimised crash input for the send-queue bound, re-encoded with the same decoded values
# when Op grew from 14 variants to 15 (its raw variant choices fell into other buckets).
write('connection', 'send_queue_over_bound', conn(setup(idle=60, sql=25872, mif=1, mqe=2, rc=203), [
    peer(K_UNK(255), 65535, blarge(28649, 1)), peer(K_MSG, 25089, bsmall(b'e')), deliver(7), deliver(), DRAIN,
    peer(K_MSG, 28417, bsmall(b'd')), peer(K_HB, 0, bsmall(b'')), deliver(), peer(K_MSG, 371, bsmall(b'')),
    peer(K_MSG, 2, bsmall(b'irst')), wr(5), complete(1, reply=(46849, bsmall(b'rld'))),
    peer(K_MSG, 39626, bsmall(b'')), deliver(), DRAIN, peer(K_MSG, 2, bsmall(b'irst')), wr(5),
    complete(1, reply=(46849, bsmall(b'd'))), peer(K_MSG, 39626, bsmall(b'')), peer(K_MSG, 0, bsmall(b'')), DRAIN,
    complete(1, reply=(2, bsmall(b'irst'))), peer(K_MSG, 39626, bsmall(b'')), deliver(), DRAIN,
    peer(K_MSG, 367, bsmall(b'')), peer(K_MSG, 256, bsmall(b'first')), wr(5),
    complete(1, reply=(46849, bsmall(bytes([109, 182, 183, 219])))), peer(K_MSG, 28417, bsmall(b'd')),
    peer(K_HB, 0, bsmall(b'')), deliver(), DRAIN, peer(K_MSG, 0, bsmall(bytes([108, 100, 219]))),
    complete(44, reply=(2, bsmall(b'ld'))), peer(K_MSG, 0, bsmall(b'l')), peer(K_MSG, 39626, bsmall(b'')),
    peer(K_MSG, 0, bsmall(b'')), DRAIN, complete(1, reply=(2, bsmall(b'J')))]))
# In-place answering: every kind of answer, then requests in flight holding later messages
# back (they come as events), then in place again once every one completed.
write('connection', 'inline_every_answer', conn(setup(idle=60, mif=4), [
    *[peer(K_MSG, m, bsmall(b'msg%d' % m)) for m in range(8)],
    deliver_inline([answer([reply(1, bsmall(b'one'))]), answer([]), answer([echo(3), WITHDRAW]),
                    answer([echo(4), reply(4, bsmall(b'ignored'))]), answer([reply(5, bsmall(b'five'))], True),
                    answer([WITHDRAW, echo(6), WITHDRAW], True), answer([echo(7)])]),
    DRAIN, wr(9), peer(K_MSG, 8, bsmall(b'held')), peer(K_HB, 0, bsmall(b'')), deliver_inline([]), DRAIN,
    complete(1, reply=(8, bsmall(b'late'))), complete(0, reply=(6, bsmall(b'early'))),
    complete(0), complete(0, reply=(9, bsmall(b'last'))), complete(0, True), wr(),
    peer(K_MSG, 9, bsmall(b'again')), deliver_inline([answer([echo(9)])]), wr(), CLOSE, DRAIN, wr()]))
# Replies too large for the peer are refused (a reply after a refusal still fits); the
# send-queue bound stops answering in place, the rest wait as events until output is written.
write('connection', 'inline_refused_and_bound', conn(setup(peermax=40, sql=60, mif=1, mqe=3, write_=30), [
    *[peer(K_MSG, m, bsmall(b'0123456789')) for m in range(6)],
    deliver_inline([answer([reply(1, blarge(1500, 2)), echo(1)])], 40),
    deliver_inline([answer([reply(2, bsmall(b'x' * 36))]), answer([echo(2), echo(3)]), answer([echo(4)])]),
    DRAIN, wr(30), DRAIN, complete(0, reply=(9, bsmall(b'y' * 40))), wr(), DRAIN,
    complete(0, reply=(9, bsmall(b'z'))), wr(), DRAIN, TO_DEADLINE, DRAIN]))
# Replies answered in place leave before the protocol close; a full event queue (no
# completion tracking) defers decoding to poll_event, where nothing is answered in place.
write('connection', 'inline_then_protocol_error', conn(setup(mif=0, mqe=1), [
    peer(K_MSG, 1, bsmall(b'a')), peer(K_HB, 0, bsmall(b'')), peer(K_MSG, 2, bsmall(b'b')),
    peer(K_UNK(7), 0, bsmall(b'?')), peer(K_MSG, 3, bsmall(b'c')), garbage(b'\x00garbage'),
    deliver_inline([answer([echo(1)], True), answer([echo(2)])]), wr(3), DRAIN, wr(), DRAIN]))
# End of stream mid-frame after a message answered in place; its reply delays the heartbeat.
write('connection', 'inline_eof_mid_frame', conn(setup(hb=20, idle=50, liveness=1, mif=3), [
    peer(K_MSG, 1, bsmall(b'whole')), peer(K_MSG, 2, bsmall(b'cut short')), adv(100),
    deliver_inline([answer([echo(1)])], 30), TO_DEADLINE, wr(), EOF, DRAIN, wr(), DRAIN]))
write('connection', 'transport_error_and_abort', conn(setup(), [
    send(1, bsmall(b'lost')), TERR, abort(9), DRAIN, send(1, bsmall(b'')), wr()]))
# A quiet connection frees its buffers (not while half a frame or unwritten output waits,
# nor while bytes keep moving), then reads, answers and frees them again.
write('connection', 'quiet_buffers_released', conn(setup(idle=60, read=50, write_=40, mif=1, release=10), [
    peer(K_MSG, 1, bsmall(b'ping')), deliver_inline([]), wr(3), adv(50), wr(), TO_DEADLINE,
    peer(K_MSG, 2, bsmall(b'half a frame')), deliver(9), adv(120), deliver(), DRAIN, adv(80),
    complete(0, reply=(2, bsmall(b'pong'))), wr(), TO_DEADLINE, send(3, blarge(1200, 3)), wr(600), adv(120), wr(),
    TO_DEADLINE, TO_DEADLINE, CLOSE, DRAIN]))
# The minimised crash input for a protocol error with max_in_flight requests in flight,
# re-encoded with the same decoded values when Setup grew `release` (last, None).
write('connection', 'regression_protocol_error_stuck_with_full_in_flight', conn(
    setup(sql=285, send_full=1, mif=154, mqe=60, rc=63),
    [peer(K_MSG, 0, bsmall(b'')), garbage(bytes([103, 3])), deliver()]))

# ---- admission: Setup{max_connections Count, max_per_ip Count, rate Option<RateSpec{u16, Count}>, per_ip_rate, max_tracked Count}, Vec<Op(6)>
def cnt(n): return u8(0xff if n == 0 else n - 1)
def rate(ps, burst): return u16(0xffff if ps == 0 else ps - 1) + cnt(burst)
def adm_setup(mc, mpi, r, pr, mt): return cnt(mc) + cnt(mpi) + opt(r) + opt(pr) + cnt(mt)
A = 6
def admit(i): return en(0, A) + u8(i)
def release(k): return en(1, A) + u8(k)
def ms(n): return en(2, A) + u8(n)
def ns(n): return en(3, A) + u16(n)
RETRY = en(4, A)
def foreign(i): return en(5, A) + u8(i)
def adm(s, ops): return s + vec(ops)
write('admission', 'limits_without_rates', adm(adm_setup(4, 2, None, None, 3), [
    admit(0), admit(0), admit(0), admit(1), admit(2), admit(3), admit(4), release(0), admit(3), admit(5), release(1), foreign(2)]))
write('admission', 'global_rate_burst_and_retry', adm(adm_setup(8, 4, rate(10, 3), None, 5), [
    admit(0), admit(1), admit(2), admit(3), RETRY, ns(0), admit(3), admit(4), ms(100), admit(4), release(0), release(0)]))
write('admission', 'per_ip_rate_and_eviction', adm(adm_setup(8, 4, None, rate(2, 1), 2), [
    admit(0), release(0), ms(100), admit(1), release(0), ms(255), admit(2), admit(1), admit(0), admit(3), RETRY, admit(3)]))
write('admission', 'both_rates_nanosecond_edges', adm(adm_setup(8, 4, rate(50, 2), rate(50, 1), 6), [
    admit(0), admit(0), admit(1), ns(65535), RETRY, admit(1), admit(1), ms(19), ns(65535), admit(0), admit(5)]))
write('admission', 'invalid_zero_rate', adm(adm_setup(1, 1, rate(0, 1), None, 1), []))
write('admission', 'invalid_zero_limit', adm(adm_setup(0, 1, None, None, 1), []))

# ---- reconnect: Setup{initial_micros u32, max_delay MaxDelay(3), multiplier Multiplier(2), jitter u8, max_attempts Option<u8>, stable_millis u16, seed u64}, Vec<Op(11)>
def rc_setup(initial_us, maxd, mult, jitter, attempts, stable_ms, seed=0x6c796e6e):
    return u32(initial_us) + maxd + mult + u8(jitter) + opt(None if attempts is None else u8(attempts)) + u16(stable_ms) + u64(seed)
def above(us): return en(0, 3) + u32(us)
def anyms(m): return en(1, 3) + u32(m)
LIMIT = en(2, 3)
def msmall(n): return en(0, 2) + u8(n)
def many(n): return en(1, 2) + u32(n)
R = 11
POLL, CONN, FAIL, DISC, JUST, AT = (en(i, R) for i in range(6))
def past(m): return en(6, R) + u16(m)
def radv(us): return en(7, R) + u32(us)
HT, STOP, RESET = en(8, R), en(9, R), en(10, R)
def rc(s, ops): return s + vec(ops)
write('reconnect', 'backoff_until_give_up', rc(rc_setup(100_000, above(900_000), msmall(2), 0, 2, 10_000), [
    POLL, FAIL, POLL, JUST, POLL, AT, POLL, FAIL, POLL, FAIL, POLL, RESET, POLL]))
write('reconnect', 'stable_connection_resets_count', rc(rc_setup(1000, above(50_000), msmall(3), 50, None, 10), [
    POLL, FAIL, AT, POLL, CONN, radv(20_000), DISC, POLL, past(5), POLL, CONN, DISC, POLL, HT, AT, POLL]))
write('reconnect', 'huge_multiplier_caps', rc(rc_setup(1, LIMIT, many(0xffffffff), 100, None, 0, 42), [
    POLL, FAIL, AT, POLL, FAIL, AT, POLL, FAIL, AT, POLL, FAIL, STOP, RESET, POLL, CONN, POLL]))
write('reconnect', 'out_of_place_reports', rc(rc_setup(5000, above(0), msmall(1), 20, 4, 1), [
    DISC, CONN, POLL, FAIL, FAIL, POLL, CONN, POLL, DISC, JUST, HT, radv(1_000_000), POLL, STOP, POLL]))
write('reconnect', 'invalid_configs', rc(rc_setup(0, above(1), msmall(2), 20, 1, 1), []))
write('reconnect', 'invalid_initial_above_max', rc(rc_setup(2000, anyms(1), msmall(2), 20, 1, 1), []))
print('ok')
