/*
 * queue_drv: exercises the driver queue (driver_enq ... driver_peekqv) and the
 * port data lock (driver_pdl_*), replying with what it sees.
 *
 * port_command data is enqueued (driver_enq) as it arrives; nothing is echoed.
 *
 * port_control(Port, Op, Args) replies with text (a list):
 *   $e DATA          driver_enq                -> "rc=R size=S"
 *   $p DATA          driver_pushq              -> "rc=R size=S"
 *   $b "OFF LEN TXT" driver_enq_bin of a fresh binary holding TXT
 *                                              -> "rc=R size=S refc=C" (C: the
 *                                                 binary's count before the
 *                                                 driver drops its reference)
 *   $B "OFF LEN TXT" driver_pushq_bin, same reply
 *   $v "SKIP SPEC"   driver_enqv of a vector built from SPEC, pieces separated
 *                    by ',': "b:TXT" a binary of its own, "s:TXT" the middle of
 *                    a binary (first and last byte cut off), "p:TXT" plain
 *                    bytes (binv entry NULL). SPEC starting with '!' passes a
 *                    NULL binv array. The driver drops its binaries and
 *                    scribbles over the plain bytes afterwards.
 *                                              -> "rc=R size=S"
 *   $V "SKIP SPEC"   driver_pushqv, same
 *   $d N             driver_deq                -> "rc=R" (R signed: -1 on error);
 *                    N "all": the whole queue (driver_sizeq)
 *   $s               driver_sizeq              -> "size=S"
 *   $q               driver_peekq              -> "vlen_ok=yes data=BYTES" where
 *                    vlen_ok checks: entries non-empty, lengths add up to
 *                    driver_sizeq, a second peekq gives the same array
 *   $Q               driver_peekqv             -> "rc=R vsize_ok=yes data=BYTES
 *                    binv=ok" (iov is peekq's array; every piece lies in its
 *                    binv binary)
 *   $x [stale]       every queue call with a bad port handle ((ErlDrvPort)-1,
 *                    or with "stale" the handle of the last port this driver
 *                    closed) -> their results
 *   $r "OFF LEN TXT" out-of-range binary slice: enq_bin/pushq_bin of a binary
 *                    of TXT at OFF/LEN    -> "enq_bin=R pushq_bin=R size=S"
 *   $m               slices of one 256-byte binary, after emptying the queue:
 *                    enq_bin 0+64, 128+64, 192+64 (adjacent to the one before),
 *                    pushq_bin 64+32, enqv of 32+16 and 48+16 (adjacent), then
 *                    deq 100 and deq of the rest -> "refc=A,B,C,D,E vlen=V
 *                    deq100=F rest=G" (driver_binary_get_refc after each call,
 *                    driver_peekq's vlen before the deqs)
 *   $l               driver_pdl_create (twice) -> "first=ok second=null"
 *   $L               driver_pdl_inc_refc then dec_refc -> "inc=+1 dec=+0"
 *                    (the changes from driver_pdl_get_refc) / "no_pdl"
 *   $f MODE          what flush does: "deq" dequeues everything, "output"
 *                    sends the queue as data then dequeues it, "keep" only
 *                    sends "flush", "fail" calls driver_failure_atom(flush_fail),
 *                    "thread" starts a thread that dequeues it all under the
 *                    PDL 50 ms later (needs $l first), "term" sends the
 *                    terms of $o and keeps their results for $O
 *   $o [KIND]        sends {queue_term, Port} by erl_drv_output_term,
 *                    {queue_term_old, Port} by driver_output_term and
 *                    {queue_sent, Port} by erl_drv_send_term to driver_caller
 *                    -> "output_term=R old=R send_term=R"; KIND "bad": a spec
 *                    rejected at once instead, "dup": one rejected while
 *                    building (a duplicate map key)
 *   $O               -> "flush: " and what the term calls of flush mode
 *                    "term" returned ("none" before it ran)
 *   $F               driver_failure_atom(port, "failed") -> "failed"
 *   $z MODE          queue calls around the port's end in the same callback:
 *                    driver_enq + driver_sizeq, then driver_failure_atom(port,
 *                    "failed") (MODE "failure") or driver_exit(port, 0) ("exit"),
 *                    then driver_enq + driver_sizeq -> "before=R,S after=R,S"
 *   $a               stop sends "stop" as data (to see its order)
 *   $t N             starts a worker thread (needs $l) doing N rounds of
 *                    enq/peekq/deq under the PDL, holding a PDL reference
 *   $w               joins the worker -> "rounds=N fails=F"
 *   $u N             like $t, but the worker is not joined by stop: it runs
 *                    until the port is gone (a queue call fails) or N rounds,
 *                    then drops its PDL reference; queue_drv_join_detached()
 *                    (exported) joins it
 *
 * Only for ddll (these break the C contract, and BEAM crashes or races):
 *   $T N             a worker thread without the PDL, using the queue anyway
 *                    -> "started=0"; $w then reports its failed calls
 *   $k               PDL misuse: lock twice, unlock three times -> "survived"
 *   $C               driver_pdl_get_refc -> "refc=N"
 *   $P               a port data lock appearing in a callback that already used
 *                    the queue: empties the queue, enq "a", driver_pdl_create, a
 *                    thread locks it, enq "t" 100 ms later and unlocks; meanwhile
 *                    the callback's enq "c" must wait for the lock (BEAM lets it
 *                    race) -> "data=atc"
 *
 * port_call(Port, _, Term) returns Term.
 *
 * queue_noflush_drv is the same driver without a flush callback.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "erl_driver.h"
#include "reply.h"

/* driver_output_term is deprecated in OTP's header; $o uses it on purpose. */
#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#endif

#ifndef QUEUE_DRV_NAME
#define QUEUE_DRV_NAME queue_drv
#define QUEUE_DRV_FLUSH 1
#endif

#define STRINGIFY2(x) #x
#define STRINGIFY(x) STRINGIFY2(x)

typedef enum { FLUSH_DEQ, FLUSH_OUTPUT, FLUSH_KEEP, FLUSH_FAIL, FLUSH_THREAD, FLUSH_TERM } FlushMode;

typedef struct {
    ErlDrvPort port;
    ErlDrvPDL pdl;
    int rounds;
    long fails;
    int delay_ms;
    int until_gone;      /* stop at the first failed call (the port is gone) */
    int done;            /* rounds done */
    int revived;         /* a call succeeded after one had failed */
    long last_refc;      /* what the final driver_pdl_dec_refc returned */
} Worker;

typedef struct {
    ErlDrvPort port;
    ErlDrvPDL pdl;
    FlushMode flush;
    int announce_stop;
    ErlDrvTid worker_tid;
    Worker *worker;
    ErlDrvTid flusher_tid;
    Worker *flusher;
    char flush_terms[64]; /* what the term calls of flush mode "term" returned */
} QueueState;

/* The handle of the last port this driver closed (for the stale-handle check). */
static ErlDrvPort last_closed = NULL;

static void lock(QueueState *st)
{
    if (st->pdl)
        driver_pdl_lock(st->pdl);
}

static void unlock(QueueState *st)
{
    if (st->pdl)
        driver_pdl_unlock(st->pdl);
}

static ErlDrvData queue_start(ErlDrvPort port, char *command)
{
    QueueState *st = driver_alloc(sizeof(QueueState));
    (void)command;
    if (st == NULL)
        return ERL_DRV_ERROR_GENERAL;
    memset(st, 0, sizeof *st);
    st->port = port;
    st->flush = FLUSH_DEQ;
    return (ErlDrvData)st;
}

static void join_thread(ErlDrvTid *tid, Worker **w)
{
    if (*w != NULL) {
        erl_drv_thread_join(*tid, NULL);
        driver_free(*w);
        *w = NULL;
    }
}

static void queue_stop(ErlDrvData data)
{
    QueueState *st = (QueueState *)data;
    if (st->announce_stop)
        driver_output(st->port, "stop", 4);
    join_thread(&st->worker_tid, &st->worker);
    join_thread(&st->flusher_tid, &st->flusher);
    last_closed = st->port;
    driver_free(st);
}

static void queue_output(ErlDrvData data, char *buf, ErlDrvSizeT len)
{
    QueueState *st = (QueueState *)data;
    lock(st);
    driver_enq(st->port, buf, len);
    unlock(st);
}

/* Appends the queue's bytes, as driver_peekq shows them, to out (max cap). */
static size_t queue_bytes(ErlDrvPort port, char *out, size_t cap)
{
    int vlen, i;
    size_t n = 0;
    SysIOVec *iov = driver_peekq(port, &vlen);
    for (i = 0; iov != NULL && i < vlen; i++) {
        size_t take = iov[i].iov_len;
        if (take > cap - n)
            take = cap - n;
        memcpy(out + n, iov[i].iov_base, take);
        n += take;
    }
    return n;
}

static void flush_thread_deq(Worker *w)
{
    ErlDrvSizeT size;
    driver_pdl_lock(w->pdl);
    size = driver_sizeq(w->port);
    if (size != (ErlDrvSizeT)-1 && driver_deq(w->port, size) == (ErlDrvSizeT)-1)
        w->fails++;
    driver_pdl_unlock(w->pdl);
}

static void sleep_ms(int ms)
{
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

/* A thread's body: either the worker (rounds > 0) or the delayed flusher. */
static void *thread_main(void *arg)
{
    Worker *w = (Worker *)arg;
    static const char chunk[16] = "0123456789abcdef";
    int i;
    if (w->delay_ms > 0) {
        sleep_ms(w->delay_ms);
        flush_thread_deq(w);
    }
    for (i = 0; i < w->rounds; i++) {
        int vlen, j, failed = 0;
        ErlDrvSizeT size, total = 0;
        SysIOVec *iov;
        if (w->pdl)
            driver_pdl_lock(w->pdl);
        if (driver_enq(w->port, (char *)chunk, sizeof chunk) != 0)
            failed++;
        iov = driver_peekq(w->port, &vlen);
        size = driver_sizeq(w->port);
        for (j = 0; iov != NULL && j < vlen; j++)
            total += iov[j].iov_len;
        if (iov == NULL || total != size)
            failed++;
        if (size != (ErlDrvSizeT)-1 && size >= 256
            && driver_deq(w->port, size / 2) == (ErlDrvSizeT)-1)
            failed++;
        if (w->pdl)
            driver_pdl_unlock(w->pdl);
        if (w->fails > 0 && failed == 0)
            w->revived = 1;
        w->fails += failed;
        w->done++;
        if (failed && w->until_gone)
            break;
    }
    if (w->pdl)
        w->last_refc = driver_pdl_dec_refc(w->pdl);
    return NULL;
}

/* $P's thread: holds the port data lock a while, appending "t" before releasing it. */
typedef struct {
    ErlDrvPort port;
    ErlDrvPDL pdl;
    int locked;
} Holder;

static void *holder_main(void *arg)
{
    Holder *h = (Holder *)arg;
    driver_pdl_lock(h->pdl);
    __atomic_store_n(&h->locked, 1, __ATOMIC_RELEASE);
    sleep_ms(100);
    driver_enq(h->port, "t", 1);
    driver_pdl_unlock(h->pdl);
    return NULL;
}

/* Starts a thread on a new Worker stored in *slot; with_pdl 0: none (ddll-only misuse). */
static int start_thread(QueueState *st, ErlDrvTid *tid, Worker **slot, int rounds, int delay,
                        int with_pdl)
{
    Worker *w;
    if ((with_pdl && st->pdl == NULL) || *slot != NULL)
        return -1;
    w = driver_alloc(sizeof(Worker));
    if (w == NULL)
        return -1;
    memset(w, 0, sizeof *w);
    w->port = st->port;
    w->pdl = with_pdl ? st->pdl : NULL;
    w->rounds = rounds;
    w->delay_ms = delay;
    if (w->pdl)
        driver_pdl_inc_refc(w->pdl);
    if (erl_drv_thread_create("queue_drv_worker", tid, thread_main, w, NULL) != 0) {
        if (w->pdl)
            driver_pdl_dec_refc(w->pdl);
        driver_free(w);
        return -1;
    }
    *slot = w;
    return 0;
}

/* The worker started by $u, which outlives its port. */
static ErlDrvTid detached_tid;
static Worker *detached = NULL;

/* Joins the $u worker: its rounds (-1 if none), failed calls, whether a call succeeded
 * after one failed, and what its last driver_pdl_dec_refc returned. */
int queue_drv_join_detached(long *fails, int *revived, long *last_refc)
{
    int rounds;
    if (detached == NULL)
        return -1;
    erl_drv_thread_join(detached_tid, NULL);
    rounds = detached->done;
    *fails = detached->fails;
    *revived = detached->revived;
    *last_refc = detached->last_refc;
    driver_free(detached);
    detached = NULL;
    return rounds;
}

/* Sends {Tag, Port} three ways: erl_drv_output_term, driver_output_term (to the owner)
 * and erl_drv_send_term (to driver_caller); writes their results into out. With kind
 * "bad" the spec is rejected at once (TUPLE of 2 with one term built), with "dup" only
 * while building (a map with a key twice). */
static void send_terms(QueueState *st, const char *kind, char *out, size_t size)
{
    ErlDrvTermData port_id = driver_mk_port(st->port);
    ErlDrvTermData spec[] = {ERL_DRV_ATOM, driver_mk_atom("queue_term"),
                             ERL_DRV_PORT, port_id,
                             ERL_DRV_TUPLE, 2};
    ErlDrvTermData bad[] = {ERL_DRV_NIL, ERL_DRV_TUPLE, 2};
    ErlDrvTermData dup[] = {ERL_DRV_INT, 1, ERL_DRV_NIL, ERL_DRV_INT, 1, ERL_DRV_NIL,
                            ERL_DRV_MAP, 2};
    ErlDrvTermData *data = spec;
    int len = 6, output, old, sent;
    if (strcmp(kind, "bad") == 0) {
        data = bad;
        len = 3;
    } else if (strcmp(kind, "dup") == 0) {
        data = dup;
        len = 8;
    }
    output = erl_drv_output_term(port_id, data, len);
    spec[1] = driver_mk_atom("queue_term_old");
    old = driver_output_term(st->port, data, len);
    spec[1] = driver_mk_atom("queue_sent");
    sent = erl_drv_send_term(port_id, driver_caller(st->port), data, len);
    snprintf(out, size, "output_term=%d old=%d send_term=%d", output, old, sent);
}

#if QUEUE_DRV_FLUSH
static void queue_flush(ErlDrvData data)
{
    QueueState *st = (QueueState *)data;
    char bytes[512];
    size_t n;
    switch (st->flush) {
    case FLUSH_DEQ:
        lock(st);
        driver_deq(st->port, driver_sizeq(st->port));
        unlock(st);
        break;
    case FLUSH_OUTPUT:
        lock(st);
        n = queue_bytes(st->port, bytes, sizeof bytes);
        driver_deq(st->port, driver_sizeq(st->port));
        unlock(st);
        driver_output(st->port, bytes, n);
        break;
    case FLUSH_KEEP:
        driver_output(st->port, "flush", 5);
        break;
    case FLUSH_FAIL:
        driver_failure_atom(st->port, "flush_fail");
        break;
    case FLUSH_THREAD:
        if (start_thread(st, &st->flusher_tid, &st->flusher, 0, 50, 1) != 0)
            driver_output(st->port, "no_thread", 9);
        break;
    case FLUSH_TERM:
        send_terms(st, "", st->flush_terms, sizeof st->flush_terms);
        break;
    }
}
#endif

/* A copy of buf[0..len) as a NUL-terminated string (caller frees). */
static char *c_string(const char *buf, ErlDrvSizeT len)
{
    char *s = driver_alloc(len + 1);
    if (s != NULL) {
        memcpy(s, buf, len);
        s[len] = '\0';
    }
    return s;
}

static long signed_size(ErlDrvSizeT s)
{
    return (long)(ErlDrvSSizeT)s;
}

/* "OFF LEN TXT": a binary holding TXT, and OFF/LEN. */
static ErlDrvBinary *binary_args(const char *args, unsigned long *off, unsigned long *len)
{
    int used = 0;
    ErlDrvBinary *bin;
    size_t tlen;
    if (sscanf(args, "%lu %lu %n", off, len, &used) < 2 || used == 0)
        return NULL;
    tlen = strlen(args + used);
    bin = driver_alloc_binary(tlen);
    if (bin != NULL)
        memcpy(bin->orig_bytes, args + used, tlen);
    return bin;
}

#define MAX_PIECES 16

/* Builds an I/O vector from "SKIP SPEC", calls enqv or pushqv, cleans up. */
static int vector_call(ErlDrvPort port, const char *args, int push, unsigned long *skip_out)
{
    SysIOVec iov[MAX_PIECES];
    ErlDrvBinary *binv[MAX_PIECES];
    ErlDrvBinary *own[MAX_PIECES];
    char *plain[MAX_PIECES];
    ErlIOVec ev;
    unsigned long skip;
    int used = 0, n = 0, i, rc, no_binv = 0;
    const char *p;
    if (sscanf(args, "%lu %n", &skip, &used) < 1)
        return -2;
    *skip_out = skip;
    p = args + used;
    if (*p == '!') {
        no_binv = 1;
        p++;
    }
    ev.size = 0;
    while (*p != '\0' && n < MAX_PIECES) {
        const char *end = strchr(p, ',');
        size_t plen = end ? (size_t)(end - p) : strlen(p);
        char kind = p[0];
        const char *txt = p + 2;
        size_t tlen = plen >= 2 ? plen - 2 : 0;
        own[n] = NULL;
        plain[n] = NULL;
        if (kind == 'b' || kind == 's') {
            own[n] = driver_alloc_binary(tlen);
            memcpy(own[n]->orig_bytes, txt, tlen);
            binv[n] = own[n];
            iov[n].iov_base = own[n]->orig_bytes;
            iov[n].iov_len = tlen;
            if (kind == 's' && tlen >= 2) {
                iov[n].iov_base = own[n]->orig_bytes + 1;
                iov[n].iov_len = tlen - 2;
            }
        } else {
            plain[n] = driver_alloc(tlen + 1);
            memcpy(plain[n], txt, tlen);
            binv[n] = NULL;
            iov[n].iov_base = plain[n];
            iov[n].iov_len = tlen;
        }
        ev.size += iov[n].iov_len;
        n++;
        p = end ? end + 1 : p + plen;
    }
    ev.vsize = n;
    ev.iov = iov;
    ev.binv = no_binv ? NULL : binv;
    rc = push ? driver_pushqv(port, &ev, skip) : driver_enqv(port, &ev, skip);
    for (i = 0; i < n; i++) {
        if (own[i] != NULL)
            driver_free_binary(own[i]);
        if (plain[i] != NULL) {
            memset(plain[i], 'X', iov[i].iov_len);
            driver_free(plain[i]);
        }
    }
    return rc;
}

static ErlDrvSSizeT peek_reply(QueueState *st, char **rbuf, ErlDrvSizeT rlen)
{
    char bytes[512];
    int vlen, vlen2, i, ok = 1;
    ErlDrvSizeT total = 0, size;
    size_t n;
    SysIOVec *iov = driver_peekq(st->port, &vlen);
    SysIOVec *iov2 = driver_peekq(st->port, &vlen2);
    size = driver_sizeq(st->port);
    if (iov == NULL && vlen != 0)
        ok = 0;
    for (i = 0; iov != NULL && i < vlen; i++) {
        if (iov[i].iov_len == 0)
            ok = 0;
        total += iov[i].iov_len;
    }
    if (total != size || iov2 != iov || vlen2 != vlen)
        ok = 0;
    n = queue_bytes(st->port, bytes, sizeof bytes);
    return replyf(rbuf, rlen, "vlen_ok=%s data=%.*s", ok ? "yes" : "no", (int)n, bytes);
}

static ErlDrvSSizeT peekqv_reply(QueueState *st, char **rbuf, ErlDrvSizeT rlen)
{
    ErlIOVec ev;
    char bytes[512];
    int vlen, i, same, binv_ok = 1;
    size_t n = 0;
    ErlDrvSizeT rc;
    SysIOVec *iov;
    memset(&ev, 0, sizeof ev);
    rc = driver_peekqv(st->port, &ev);
    iov = driver_peekq(st->port, &vlen);
    same = ev.vsize == vlen && (vlen == 0 || ev.iov == iov) && ev.size == rc;
    for (i = 0; i < ev.vsize; i++) {
        ErlDrvBinary *b = ev.binv[i];
        char *start = ev.iov[i].iov_base;
        if (b == NULL || start < b->orig_bytes
            || start + ev.iov[i].iov_len > b->orig_bytes + b->orig_size)
            binv_ok = 0;
        if (n + ev.iov[i].iov_len <= sizeof bytes) {
            memcpy(bytes + n, start, ev.iov[i].iov_len);
            n += ev.iov[i].iov_len;
        }
    }
    return replyf(rbuf, rlen, "rc=%ld vsize_ok=%s data=%.*s binv=%s", signed_size(rc),
                 same ? "yes" : "no", (int)n, bytes, binv_ok ? "ok" : "bad");
}

/* Every queue function with a port handle that is not a live port. */
static ErlDrvSSizeT bad_port_reply(ErlDrvPort bad, char **rbuf, ErlDrvSizeT rlen)
{
    ErlDrvBinary *bin = driver_alloc_binary(4);
    char four[4] = {'a', 'b', 'c', 'd'};
    SysIOVec iov[1];
    ErlDrvBinary *binv[1];
    ErlIOVec ev;
    int vlen = 7;
    SysIOVec *peek;
    ErlDrvPDL pdl;
    int enq, push, enq_bin, push_bin, enqv, pushqv;
    ErlDrvSizeT deq, sizeq, peekqv;
    memcpy(bin->orig_bytes, four, 4);
    iov[0].iov_base = bin->orig_bytes;
    iov[0].iov_len = 4;
    binv[0] = bin;
    ev.vsize = 1;
    ev.size = 4;
    ev.iov = iov;
    ev.binv = binv;
    enq = driver_enq(bad, four, 4);
    push = driver_pushq(bad, four, 4);
    enq_bin = driver_enq_bin(bad, bin, 0, 4);
    push_bin = driver_pushq_bin(bad, bin, 0, 4);
    enqv = driver_enqv(bad, &ev, 0);
    pushqv = driver_pushqv(bad, &ev, 0);
    deq = driver_deq(bad, 1);
    sizeq = driver_sizeq(bad);
    peek = driver_peekq(bad, &vlen);
    memset(&ev, 0, sizeof ev);
    peekqv = driver_peekqv(bad, &ev);
    pdl = driver_pdl_create(bad);
    {
        long refc = driver_binary_get_refc(bin);
        driver_free_binary(bin);
        return replyf(rbuf, rlen,
                     "enq=%d pushq=%d enq_bin=%d pushq_bin=%d enqv=%d pushqv=%d "
                     "deq=%ld sizeq=%ld peekq=%s vlen=%d peekqv=%ld pdl=%s refc=%ld",
                     enq, push, enq_bin, push_bin, enqv, pushqv, signed_size(deq),
                     signed_size(sizeq), peek == NULL ? "null" : "set", vlen,
                     signed_size(peekqv), pdl == NULL ? "null" : "set", refc);
    }
}

/* $P (before any PDL exists); the lock it creates becomes the port's (st->pdl). */
static ErlDrvSSizeT pdl_appears_reply(QueueState *st, char **rbuf, ErlDrvSizeT rlen)
{
    Holder h;
    ErlDrvTid tid;
    char data[8];
    size_t n;
    if (st->pdl != NULL)
        return -1;
    driver_deq(st->port, driver_sizeq(st->port));
    driver_enq(st->port, "a", 1);
    h.port = st->port;
    h.pdl = driver_pdl_create(st->port);
    h.locked = 0;
    if (h.pdl == NULL)
        return -1;
    st->pdl = h.pdl;
    if (erl_drv_thread_create("queue_drv_holder", &tid, holder_main, &h, NULL) != 0)
        return -1;
    while (!__atomic_load_n(&h.locked, __ATOMIC_ACQUIRE))
        sleep_ms(1);
    driver_enq(st->port, "c", 1);
    erl_drv_thread_join(tid, NULL);
    lock(st);
    n = queue_bytes(st->port, data, sizeof data);
    unlock(st);
    return replyf(rbuf, rlen, "data=%.*s", (int)n, data);
}

/* $m: every queued slice of a binary holds a reference and is an entry of its own. */
static ErlDrvSSizeT slices_reply(ErlDrvPort port, char **rbuf, ErlDrvSizeT rlen)
{
    ErlDrvBinary *bin = driver_alloc_binary(256);
    SysIOVec iov[2];
    ErlDrvBinary *binv[2];
    ErlIOVec ev;
    long refc[5], after_deq, after_rest;
    int i, vlen = -2;
    if (bin == NULL)
        return -1;
    for (i = 0; i < 256; i++)
        bin->orig_bytes[i] = (char)('a' + i % 26);
    driver_deq(port, driver_sizeq(port));
    driver_enq_bin(port, bin, 0, 64);
    refc[0] = (long)driver_binary_get_refc(bin);
    driver_enq_bin(port, bin, 128, 64);
    refc[1] = (long)driver_binary_get_refc(bin);
    driver_enq_bin(port, bin, 192, 64);
    refc[2] = (long)driver_binary_get_refc(bin);
    driver_pushq_bin(port, bin, 64, 32);
    refc[3] = (long)driver_binary_get_refc(bin);
    for (i = 0; i < 2; i++) {
        iov[i].iov_base = bin->orig_bytes + 32 + 16 * i;
        iov[i].iov_len = 16;
        binv[i] = bin;
    }
    ev.vsize = 2;
    ev.size = 32;
    ev.iov = iov;
    ev.binv = binv;
    driver_enqv(port, &ev, 0);
    refc[4] = (long)driver_binary_get_refc(bin);
    driver_peekq(port, &vlen);
    driver_deq(port, 100);
    after_deq = (long)driver_binary_get_refc(bin);
    driver_deq(port, driver_sizeq(port));
    after_rest = (long)driver_binary_get_refc(bin);
    driver_free_binary(bin);
    return replyf(rbuf, rlen, "refc=%ld,%ld,%ld,%ld,%ld vlen=%d deq100=%ld rest=%ld", refc[0],
                 refc[1], refc[2], refc[3], refc[4], vlen, after_deq, after_rest);
}

static ErlDrvSSizeT queue_control(ErlDrvData data, unsigned int command, char *buf,
                                  ErlDrvSizeT len, char **rbuf, ErlDrvSizeT rlen)
{
    QueueState *st = (QueueState *)data;
    ErlDrvPort port = st->port;
    char *args = c_string(buf, len);
    ErlDrvSSizeT out = -1;
    unsigned long off, n;
    ErlDrvBinary *bin;
    int rc, rc2;
    if (args == NULL)
        return -1;
    lock(st);
    switch (command) {
    case 'e':
        rc = driver_enq(port, buf, len);
        out = replyf(rbuf, rlen, "rc=%d size=%ld", rc, signed_size(driver_sizeq(port)));
        break;
    case 'p':
        rc = driver_pushq(port, buf, len);
        out = replyf(rbuf, rlen, "rc=%d size=%ld", rc, signed_size(driver_sizeq(port)));
        break;
    case 'b':
    case 'B':
        bin = binary_args(args, &off, &n);
        if (bin == NULL)
            break;
        rc = command == 'b' ? driver_enq_bin(port, bin, off, n)
                            : driver_pushq_bin(port, bin, off, n);
        out = replyf(rbuf, rlen, "rc=%d size=%ld refc=%ld", rc,
                    signed_size(driver_sizeq(port)), (long)driver_binary_get_refc(bin));
        driver_free_binary(bin);
        break;
    case 'r':
        bin = binary_args(args, &off, &n);
        if (bin == NULL)
            break;
        rc = driver_enq_bin(port, bin, off, n);
        rc2 = driver_pushq_bin(port, bin, off, n);
        out = replyf(rbuf, rlen, "enq_bin=%d pushq_bin=%d size=%ld refc=%ld", rc, rc2,
                    signed_size(driver_sizeq(port)), (long)driver_binary_get_refc(bin));
        driver_free_binary(bin);
        break;
    case 'm':
        out = slices_reply(port, rbuf, rlen);
        break;
    case 'v':
    case 'V':
        rc = vector_call(port, args, command == 'V', &off);
        if (rc == -2)
            break;
        out = replyf(rbuf, rlen, "rc=%d size=%ld", rc, signed_size(driver_sizeq(port)));
        break;
    case 'd':
        n = strcmp(args, "all") == 0 ? driver_sizeq(port) : strtoul(args, NULL, 10);
        out = replyf(rbuf, rlen, "rc=%ld", signed_size(driver_deq(port, n)));
        break;
    case 's':
        out = replyf(rbuf, rlen, "size=%ld", signed_size(driver_sizeq(port)));
        break;
    case 'q':
        out = peek_reply(st, rbuf, rlen);
        break;
    case 'Q':
        out = peekqv_reply(st, rbuf, rlen);
        break;
    case 'x':
        out = bad_port_reply(strcmp(args, "stale") == 0 ? last_closed : (ErlDrvPort)-1,
                             rbuf, rlen);
        break;
    case 'l': {
        ErlDrvPDL first, second;
        unlock(st);
        first = driver_pdl_create(port);
        second = driver_pdl_create(port);
        if (first != NULL)
            st->pdl = first;
        lock(st);
        out = replyf(rbuf, rlen, "first=%s second=%s", first ? "ok" : "null",
                    second ? "ok" : "null");
        break;
    }
    case 'L':
        if (st->pdl == NULL) {
            out = replyf(rbuf, rlen, "no_pdl");
        } else {
            /* Absolute counts include the runtime's own references (BEAM takes one per
             * port task in flight), so only the changes are shown. */
            long before = (long)driver_pdl_get_refc(st->pdl);
            long inc = (long)driver_pdl_inc_refc(st->pdl);
            long dec = (long)driver_pdl_dec_refc(st->pdl);
            out = replyf(rbuf, rlen, "inc=%+ld dec=%+ld", inc - before, dec - before);
        }
        break;
    case 'f':
        if (strcmp(args, "deq") == 0)
            st->flush = FLUSH_DEQ;
        else if (strcmp(args, "output") == 0)
            st->flush = FLUSH_OUTPUT;
        else if (strcmp(args, "keep") == 0)
            st->flush = FLUSH_KEEP;
        else if (strcmp(args, "fail") == 0)
            st->flush = FLUSH_FAIL;
        else if (strcmp(args, "thread") == 0)
            st->flush = FLUSH_THREAD;
        else if (strcmp(args, "term") == 0)
            st->flush = FLUSH_TERM;
        else
            break;
        out = replyf(rbuf, rlen, "flush=%s", args);
        break;
    case 'o': {
        char text[64];
        send_terms(st, args, text, sizeof text);
        out = replyf(rbuf, rlen, "%s", text);
        break;
    }
    case 'O':
        out = replyf(rbuf, rlen, "flush: %s", st->flush_terms[0] ? st->flush_terms : "none");
        break;
    case 'F':
        unlock(st);
        driver_failure_atom(port, "failed");
        driver_free(args);
        return replyf(rbuf, rlen, "failed");
    case 'z': {
        /* `st` is freed by stop when the port ends: only `port` is used afterwards. */
        int failure = strcmp(args, "failure") == 0;
        long size_before, size_after;
        unlock(st);
        rc = driver_enq(port, "ab", 2);
        size_before = signed_size(driver_sizeq(port));
        if (failure)
            driver_failure_atom(port, "failed");
        else
            driver_exit(port, 0);
        rc2 = driver_enq(port, "cd", 2);
        size_after = signed_size(driver_sizeq(port));
        driver_free(args);
        return replyf(rbuf, rlen, "before=%d,%ld after=%d,%ld", rc, size_before, rc2, size_after);
    }
    case 'P':
        unlock(st);
        out = pdl_appears_reply(st, rbuf, rlen);
        lock(st);
        break;
    case 'a':
        st->announce_stop = 1;
        out = replyf(rbuf, rlen, "announce");
        break;
    case 't':
    case 'T':
        n = strtoul(args, NULL, 10);
        unlock(st);
        rc = start_thread(st, &st->worker_tid, &st->worker, (int)n, 0, command == 't');
        lock(st);
        out = replyf(rbuf, rlen, "started=%d", rc);
        break;
    case 'u':
        n = strtoul(args, NULL, 10);
        unlock(st);
        rc = start_thread(st, &detached_tid, &detached, (int)n, 0, 1);
        if (rc == 0)
            detached->until_gone = 1;
        lock(st);
        out = replyf(rbuf, rlen, "started=%d", rc);
        break;
    case 'k':
        if (st->pdl == NULL)
            break;
        unlock(st);
        driver_pdl_lock(st->pdl);
        driver_pdl_lock(st->pdl);
        driver_pdl_unlock(st->pdl);
        driver_pdl_unlock(st->pdl);
        driver_pdl_unlock(st->pdl);
        lock(st);
        out = replyf(rbuf, rlen, "survived");
        break;
    case 'C':
        out = replyf(rbuf, rlen, "refc=%ld", st->pdl ? (long)driver_pdl_get_refc(st->pdl) : -1L);
        break;
    case 'w':
        unlock(st);
        if (st->worker != NULL) {
            long fails;
            int rounds = st->worker->rounds;
            erl_drv_thread_join(st->worker_tid, NULL);
            fails = st->worker->fails;
            driver_free(st->worker);
            st->worker = NULL;
            lock(st);
            out = replyf(rbuf, rlen, "rounds=%d fails=%ld", rounds, fails);
        } else {
            lock(st);
            out = replyf(rbuf, rlen, "no_worker");
        }
        break;
    default:
        break;
    }
    unlock(st);
    driver_free(args);
    return out;
}

/* port_call: the argument back unchanged (to see which ports accept calls). */
static ErlDrvSSizeT queue_call(ErlDrvData data, unsigned int command, char *buf,
                               ErlDrvSizeT len, char **rbuf, ErlDrvSizeT rlen,
                               unsigned int *flags)
{
    (void)data;
    (void)command;
    (void)flags;
    if (len > rlen) {
        *rbuf = driver_alloc(len);
        if (*rbuf == NULL)
            return -1;
    }
    memcpy(*rbuf, buf, len);
    return (ErlDrvSSizeT)len;
}

static ErlDrvEntry queue_driver_entry = {
    .start = queue_start,
    .stop = queue_stop,
    .output = queue_output,
    .driver_name = STRINGIFY(QUEUE_DRV_NAME),
    .control = queue_control,
#if QUEUE_DRV_FLUSH
    .flush = queue_flush,
#endif
    .call = queue_call,
    .extended_marker = ERL_DRV_EXTENDED_MARKER,
    .major_version = ERL_DRV_EXTENDED_MAJOR_VERSION,
    .minor_version = ERL_DRV_EXTENDED_MINOR_VERSION,
    .driver_flags = ERL_DRV_FLAG_USE_PORT_LOCKING,
};

DRIVER_INIT(QUEUE_DRV_NAME)
{
    return &queue_driver_entry;
}
