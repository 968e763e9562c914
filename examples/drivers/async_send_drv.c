/*
 * async_send_drv: messages sent from async threads, and memory freed on another thread (what
 * OTP's driver_SUITE otp_9302 and thr_free_drv check).
 *
 * output (any data): queues five async jobs on one key (so one pool thread runs them, in
 * order); the first sleeps 500 ms. Each job sends {Port, Tag} to the process that sent the
 * command, with erl_drv_send_term from the pool thread: block, job, middle, job, end_of_jobs.
 * The jobs have no ready_async work (ready_async and async_free free them).
 *
 * control 1 N -> driver_alloc's N blocks of 1 to N*8 bytes here, then a driver thread
 *                driver_free's them all; replies "freed N" once the thread is joined.
 */
#include <string.h>
#include <unistd.h>

#include "erl_driver.h"
#include "reply.h"

typedef struct {
    ErlDrvTermData port;
    ErlDrvTermData receiver;
    ErlDrvTermData tag;
    int sleep_ms;
} Job;

static ErlDrvData as_start(ErlDrvPort port, char *command)
{
    (void)command;
    return (ErlDrvData)port;
}

static void job_run(void *data)
{
    Job *job = (Job *)data;
    ErlDrvTermData spec[] = {
        ERL_DRV_PORT, job->port,
        ERL_DRV_ATOM, job->tag,
        ERL_DRV_TUPLE, 2,
    };
    if (job->sleep_ms > 0)
        usleep((useconds_t)job->sleep_ms * 1000);
    erl_drv_send_term(job->port, job->receiver, spec, sizeof spec / sizeof spec[0]);
}

static void job_free(void *data)
{
    driver_free(data);
}

static void as_ready_async(ErlDrvData data, ErlDrvThreadData thread_data)
{
    (void)data;
    driver_free(thread_data);
}

static void as_output(ErlDrvData data, char *buf, ErlDrvSizeT len)
{
    static const char *const tags[] = {"block", "job", "middle", "job", "end_of_jobs"};
    ErlDrvPort port = (ErlDrvPort)data;
    unsigned int key = 7;
    size_t i;
    (void)buf;
    (void)len;
    for (i = 0; i < sizeof tags / sizeof tags[0]; i++) {
        Job *job = driver_alloc(sizeof(Job));
        if (job == NULL)
            return;
        job->port = driver_mk_port(port);
        job->receiver = driver_caller(port);
        job->tag = driver_mk_atom((char *)tags[i]);
        job->sleep_ms = i == 0 ? 500 : 0;
        driver_async(port, &key, job_run, job, job_free);
    }
}

typedef struct {
    void **blocks;
    unsigned long count;
} Blocks;

static void *free_blocks(void *arg)
{
    Blocks *b = (Blocks *)arg;
    unsigned long i;
    for (i = 0; i < b->count; i++)
        driver_free(b->blocks[i]);
    return NULL;
}

static ErlDrvSSizeT as_control(ErlDrvData data, unsigned int command, char *buf,
                               ErlDrvSizeT len, char **rbuf, ErlDrvSizeT rlen)
{
    Blocks b;
    ErlDrvTid tid;
    unsigned long i;
    (void)data;
    if (command != 1)
        return -1;
    b.count = arg_number(buf, len);
    b.blocks = driver_alloc(b.count * sizeof(void *) + 1);
    if (b.blocks == NULL)
        return -1;
    for (i = 0; i < b.count; i++) {
        b.blocks[i] = driver_alloc(1 + i * 8);
        if (b.blocks[i] == NULL)
            return -1;
        memset(b.blocks[i], (int)i, 1 + i * 8);
    }
    if (erl_drv_thread_create("async_send_free", &tid, free_blocks, &b, NULL) != 0)
        return -1;
    erl_drv_thread_join(tid, NULL);
    driver_free(b.blocks);
    return replyf(rbuf, rlen, "freed %lu", b.count);
}

static ErlDrvEntry async_send_entry = {
    .start = as_start,
    .output = as_output,
    .driver_name = "async_send_drv",
    .control = as_control,
    .ready_async = as_ready_async,
    .extended_marker = ERL_DRV_EXTENDED_MARKER,
    .major_version = ERL_DRV_EXTENDED_MAJOR_VERSION,
    .minor_version = ERL_DRV_EXTENDED_MINOR_VERSION,
};

DRIVER_INIT(async_send_drv)
{
    return &async_send_entry;
}
