/*
 * async_drv: driver_async jobs, ready_async, async_free, and the pool size
 * in driver_system_info. It has no timeout callback.
 *
 * Every job ends exactly once: in ready_async, or in async_free (port gone,
 * cancelled, pool shut down). The driver counts this over all its ports.
 *
 * control (port_control/3); data is text, the reply is text:
 * The id driver_async returns is replied as its kind: "queued" (positive),
 * "ran" (0: no pool, the job already ran) or "failed" (-1); BEAM's ids count
 * jobs of the whole VM, so their values are not comparable.
 *
 *   1 DATA -> driver_async(port, NULL, ...): the job reverses DATA on a pool
 *             thread; ready_async outputs "done:" ++ reversed. Reply: the id.
 *   2 DATA -> the same with key = driver_async_port_key(port).
 *             Reply: "ID KEY" (KEY as written back by driver_async).
 *   3 MS   -> a job that sleeps MS ms; ready_async outputs "slept MS".
 *             Reply: the id.
 *  12 DATA -> as 1, but the reply is the id's value.
 *  13      -> driver_async on the handle of the port stopped last (a dead
 *             handle): the id's kind ("failed"; the driver frees the job
 *             itself), or "none" before any port stopped.
 *   4      -> "submitted invoked readied freed ended twice": job counts of
 *             the whole driver (readied: ready_async calls, freed: async_free
 *             calls, ended: jobs ended, twice: jobs ended more than once).
 *   5      -> driver_set_timer(port, 10): its return value (OTP 25: 0, though
 *             the driver has no timeout; the timer expires without effect).
 *   6 N    -> N jobs, the even ones keyed with the port key, the odd ones
 *             without key. Once all are ready: output "blast N disorder D",
 *             D = keyed jobs whose ready_async came out of submission order.
 *   7      -> driver_async_cancel (a ddll extension; "unsupported" where the
 *             runtime lacks it): queue a 200 ms job then a quick one on the
 *             port's key, cancel the quick one twice, then id 0:
 *             "RC1 RC2 RC3" (1 0 0).
 *   8      -> driver_system_info's async_threads.
 *   9 N    -> bench: N no-op jobs whose ready_async does nothing; replies the
 *             ns the submits took.
 *  10 N    -> bench: N no-op jobs; once the last is ready, outputs
 *             "elapsed NS", from before the first submit.
 *  14 MS   -> the port's data lock and async jobs: creates the port's PDL
 *             (once), notes its reference count, submits a job that sleeps
 *             MS ms, and replies "+D", D = how much the count grew (each job
 *             holds one reference for its life: 1).
 *  15      -> "+D": the PDL's count now against the one noted by 14 (0 once
 *             the job has ended).
 *  11 N    -> bench: a chain of N no-op jobs (each ready_async submits the
 *             next); at the end outputs "elapsed NS". Needs a pool (without
 *             one the chain would recurse N deep).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "erl_driver.h"
#include "reply.h"

/* A ddll extension that OTP 25 no longer has: weak, so the driver loads
 * under BEAM too (where it stays NULL). */
int driver_async_cancel(long id);
#pragma weak driver_async_cancel

enum kind { ECHO, SLEEP, BLAST };

#define MAX_TRACKED (1 << 20)

typedef struct {
    ErlDrvPort port;
    unsigned long blast_total, blast_ready, blast_next_keyed, blast_disorder;
    unsigned long bench_total, bench_ready;
    ErlDrvTime bench_t0;
    int chain;
    ErlDrvPDL pdl;
    ErlDrvSInt pdl_base;
} AsyncState;

typedef struct {
    enum kind kind;
    unsigned long index;   /* in `ended` */
    unsigned long serial;  /* blast: submission number */
    int keyed;
    unsigned long sleep_ms;
    size_t len;
    char data[64];
} Job;

static unsigned long submitted, invoked, readied, freed, ended, twice;
static unsigned char ended_flags[MAX_TRACKED];

/* The no-op jobs of the benches: no allocation, nothing to free. A ready
 * `nop_job` counts towards the bench in progress, a `quiet_job` does not. */
static char nop_job, quiet_job;

static void count(unsigned long *counter)
{
    __atomic_add_fetch(counter, 1, __ATOMIC_SEQ_CST);
}

static void end_job(Job *job)
{
    if (__atomic_exchange_n(&ended_flags[job->index % MAX_TRACKED], 1,
                            __ATOMIC_SEQ_CST))
        count(&twice);
    count(&ended);
    driver_free(job);
}

static void job_invoke(void *data)
{
    Job *job = data;
    size_t i;
    count(&invoked);
    switch (job->kind) {
    case ECHO:
        for (i = 0; i < job->len / 2; i++) {
            char c = job->data[i];
            job->data[i] = job->data[job->len - 1 - i];
            job->data[job->len - 1 - i] = c;
        }
        break;
    case SLEEP: {
        struct timespec ts;
        ts.tv_sec = (time_t)(job->sleep_ms / 1000);
        ts.tv_nsec = (long)(job->sleep_ms % 1000) * 1000000L;
        nanosleep(&ts, NULL);
        break;
    }
    case BLAST:
        break;
    }
}

static void job_free(void *data)
{
    count(&freed);
    end_job(data);
}

static void nop_invoke(void *data)
{
    (void)data;
}

static Job *new_job(enum kind kind, const char *buf, ErlDrvSizeT len)
{
    Job *job = driver_alloc(sizeof(Job));
    if (job == NULL)
        return NULL;
    memset(job, 0, sizeof *job);
    job->kind = kind;
    job->index = __atomic_fetch_add(&submitted, 1, __ATOMIC_SEQ_CST);
    if (len > sizeof job->data)
        len = sizeof job->data;
    memcpy(job->data, buf, len);
    job->len = len;
    return job;
}

static ErlDrvData async_start(ErlDrvPort port, char *command)
{
    AsyncState *st = driver_alloc(sizeof(AsyncState));
    (void)command;
    if (st == NULL)
        return ERL_DRV_ERROR_GENERAL;
    memset(st, 0, sizeof *st);
    st->port = port;
    return (ErlDrvData)st;
}

/* The handle of the port stopped last (dead from then on). */
static ErlDrvPort last_stopped;
static int have_stopped;

static void async_stop(ErlDrvData data)
{
    AsyncState *st = (AsyncState *)data;
    last_stopped = st->port;
    have_stopped = 1;
    driver_free(data);
}

static void bench_ready(AsyncState *st)
{
    char text[64];
    st->bench_ready++;
    if (st->chain && st->bench_ready < st->bench_total)
        driver_async(st->port, NULL, nop_invoke, &nop_job, NULL);
    if (st->bench_ready == st->bench_total) {
        snprintf(text, sizeof text, "elapsed %lld",
                 (long long)(erl_drv_monotonic_time(ERL_DRV_NSEC) - st->bench_t0));
        output_text(st->port, text);
    }
}

static void async_ready(ErlDrvData data, ErlDrvThreadData thread_data)
{
    AsyncState *st = (AsyncState *)data;
    Job *job = (Job *)thread_data;
    char text[96];
    if ((void *)thread_data == (void *)&nop_job) {
        bench_ready(st);
        return;
    }
    if ((void *)thread_data == (void *)&quiet_job)
        return;
    count(&readied);
    switch (job->kind) {
    case ECHO:
        memcpy(text, "done:", 5);
        memcpy(text + 5, job->data, job->len);
        driver_output(st->port, text, 5 + job->len);
        break;
    case SLEEP:
        snprintf(text, sizeof text, "slept %lu", job->sleep_ms);
        output_text(st->port, text);
        break;
    case BLAST:
        if (job->keyed) {
            if (job->serial != st->blast_next_keyed)
                st->blast_disorder++;
            st->blast_next_keyed = job->serial + 2;
        }
        if (++st->blast_ready == st->blast_total) {
            snprintf(text, sizeof text, "blast %lu disorder %lu",
                     st->blast_total, st->blast_disorder);
            output_text(st->port, text);
        }
        break;
    }
    end_job(job);
}

static long submit(AsyncState *st, Job *job, unsigned int *key)
{
    return driver_async(st->port, key, job_invoke, job, job_free);
}

static const char *id_kind(long id)
{
    return id > 0 ? "queued" : id == 0 ? "ran" : "failed";
}

static ErlDrvSSizeT async_control(ErlDrvData data, unsigned int command,
                                  char *buf, ErlDrvSizeT len,
                                  char **rbuf, ErlDrvSizeT rlen)
{
    AsyncState *st = (AsyncState *)data;
    char text[128];
    unsigned long n = arg_number(buf, len), i;
    unsigned int key;
    long id;
    Job *job;
    switch (command) {
    case 1:
        if ((job = new_job(ECHO, buf, len)) == NULL)
            return -1;
        snprintf(text, sizeof text, "%s", id_kind(submit(st, job, NULL)));
        break;
    case 12:
        if ((job = new_job(ECHO, buf, len)) == NULL)
            return -1;
        snprintf(text, sizeof text, "%ld", submit(st, job, NULL));
        break;
    case 2:
        if ((job = new_job(ECHO, buf, len)) == NULL)
            return -1;
        key = driver_async_port_key(st->port);
        id = submit(st, job, &key);
        snprintf(text, sizeof text, "%s %u", id_kind(id), key);
        break;
    case 3:
        if ((job = new_job(SLEEP, "", 0)) == NULL)
            return -1;
        job->sleep_ms = n;
        snprintf(text, sizeof text, "%s", id_kind(submit(st, job, NULL)));
        break;
    case 4:
        snprintf(text, sizeof text, "%lu %lu %lu %lu %lu %lu",
                 __atomic_load_n(&submitted, __ATOMIC_SEQ_CST),
                 __atomic_load_n(&invoked, __ATOMIC_SEQ_CST),
                 __atomic_load_n(&readied, __ATOMIC_SEQ_CST),
                 __atomic_load_n(&freed, __ATOMIC_SEQ_CST),
                 __atomic_load_n(&ended, __ATOMIC_SEQ_CST),
                 __atomic_load_n(&twice, __ATOMIC_SEQ_CST));
        break;
    case 5:
        snprintf(text, sizeof text, "%d", driver_set_timer(st->port, 10));
        break;
    case 6:
        st->blast_total = n;
        st->blast_ready = 0;
        st->blast_next_keyed = 0;
        st->blast_disorder = 0;
        for (i = 0; i < n; i++) {
            if ((job = new_job(BLAST, "", 0)) == NULL)
                return -1;
            job->serial = i;
            job->keyed = i % 2 == 0;
            key = driver_async_port_key(st->port);
            submit(st, job, job->keyed ? &key : NULL);
        }
        snprintf(text, sizeof text, "ok");
        break;
    case 7: {
        long blocker, quick;
        int rc1, rc2, rc3;
        if (!driver_async_cancel) {
            snprintf(text, sizeof text, "unsupported");
            break;
        }
        if ((job = new_job(SLEEP, "", 0)) == NULL)
            return -1;
        job->sleep_ms = 200;
        key = driver_async_port_key(st->port);
        blocker = submit(st, job, &key);
        if ((job = new_job(ECHO, "x", 1)) == NULL)
            return -1;
        key = driver_async_port_key(st->port);
        quick = submit(st, job, &key);
        (void)blocker;
        rc1 = driver_async_cancel(quick);
        rc2 = driver_async_cancel(quick);
        rc3 = driver_async_cancel(0);
        snprintf(text, sizeof text, "%d %d %d", rc1, rc2, rc3);
        break;
    }
    case 8: {
        ErlDrvSysInfo info;
        driver_system_info(&info, sizeof info);
        snprintf(text, sizeof text, "%d", info.async_threads);
        break;
    }
    case 9: {
        ErlDrvTime t0 = erl_drv_monotonic_time(ERL_DRV_NSEC);
        for (i = 0; i < n; i++)
            driver_async(st->port, NULL, nop_invoke, &quiet_job, NULL);
        snprintf(text, sizeof text, "%lld",
                 (long long)(erl_drv_monotonic_time(ERL_DRV_NSEC) - t0));
        break;
    }
    case 10:
    case 11:
        if (n == 0)
            return -1;
        st->bench_total = n;
        st->bench_ready = 0;
        st->chain = command == 11;
        st->bench_t0 = erl_drv_monotonic_time(ERL_DRV_NSEC);
        for (i = 0; i < (st->chain ? 1 : n); i++)
            driver_async(st->port, NULL, nop_invoke, &nop_job, NULL);
        snprintf(text, sizeof text, "ok");
        break;
    case 14:
        if (st->pdl == NULL && (st->pdl = driver_pdl_create(st->port)) == NULL)
            return -1;
        st->pdl_base = driver_pdl_get_refc(st->pdl);
        if ((job = new_job(SLEEP, "", 0)) == NULL)
            return -1;
        job->sleep_ms = n;
        submit(st, job, NULL);
        snprintf(text, sizeof text, "+%ld",
                 (long)(driver_pdl_get_refc(st->pdl) - st->pdl_base));
        break;
    case 15:
        if (st->pdl == NULL)
            return -1;
        snprintf(text, sizeof text, "+%ld",
                 (long)(driver_pdl_get_refc(st->pdl) - st->pdl_base));
        break;
    case 13:
        if (!have_stopped) {
            snprintf(text, sizeof text, "none");
            break;
        }
        if ((job = new_job(ECHO, "dead", 4)) == NULL)
            return -1;
        id = driver_async(last_stopped, NULL, job_invoke, job, job_free);
        if (id < 0)
            end_job(job); /* the runtime gave it back */
        snprintf(text, sizeof text, "%s", id_kind(id));
        break;
    default:
        return -1;
    }
    return reply(rbuf, rlen, text);
}

static ErlDrvEntry async_entry = {
    .start = async_start,
    .stop = async_stop,
    .driver_name = "async_drv",
    .control = async_control,
    .ready_async = async_ready,
    .extended_marker = ERL_DRV_EXTENDED_MARKER,
    .major_version = ERL_DRV_EXTENDED_MAJOR_VERSION,
    .minor_version = ERL_DRV_EXTENDED_MINOR_VERSION,
};

DRIVER_INIT(async_drv)
{
    return &async_entry;
}
