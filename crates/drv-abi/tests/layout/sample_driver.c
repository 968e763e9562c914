/* A small but broad driver: must build warning-free against OTP's erl_driver.h and
 * ddll's, as C and as C++. Only syntax/type-checked by tests/layout.rs. */
#include <erl_driver.h>
#include <string.h>

typedef struct {
    ErlDrvPort port;
    ErlDrvMutex *lock;
    ErlDrvMonitor monitor;
    ErlDrvTermData owner;
} echo_state;

static ErlDrvData echo_start(ErlDrvPort port, char *command)
{
    echo_state *st = (echo_state *)driver_alloc(sizeof(echo_state));
    (void)command;
    if (st == NULL)
        return ERL_DRV_ERROR_ERRNO;
    st->port = port;
    st->lock = erl_drv_mutex_create((char *)"echo_lock");
    st->owner = driver_connected(port);
    if (driver_monitor_process(port, st->owner, &st->monitor) != 0)
        return ERL_DRV_ERROR_GENERAL;
    set_port_control_flags(port, PORT_CONTROL_FLAG_BINARY);
    return (ErlDrvData)st;
}

static void echo_stop(ErlDrvData handle)
{
    echo_state *st = (echo_state *)handle;
    driver_demonitor_process(st->port, &st->monitor);
    erl_drv_mutex_destroy(st->lock);
    driver_free(st);
}

static void echo_output(ErlDrvData handle, char *buf, ErlDrvSizeT len)
{
    echo_state *st = (echo_state *)handle;
    ErlDrvBinary *bin = driver_alloc_binary(len);
    ErlDrvTermData spec[] = {
        ERL_DRV_ATOM, driver_mk_atom((char *)"echo"),
        ERL_DRV_PORT, driver_mk_port(st->port),
        ERL_DRV_BINARY, (ErlDrvTermData)bin, (ErlDrvTermData)len, 0,
        ERL_DRV_TUPLE, 3,
    };
    memcpy(bin->orig_bytes, buf, len);
    erl_drv_mutex_lock(st->lock);
    erl_drv_output_term(driver_mk_port(st->port), spec, (int)(sizeof(spec) / sizeof(spec[0])));
    erl_drv_mutex_unlock(st->lock);
    driver_free_binary(bin);
    driver_output2(st->port, buf, len, NULL, 0);
}

static void echo_outputv(ErlDrvData handle, ErlIOVec *ev)
{
    echo_state *st = (echo_state *)handle;
    char *first = ev->vsize > 0 ? ev->iov[0].iov_base : NULL;
    ErlDrvSizeT first_len = ev->vsize > 0 ? ev->iov[0].iov_len : 0;
    int vlen = 0;
    SysIOVec *queued;
    driver_enqv(st->port, ev, 0);
    queued = driver_peekq(st->port, &vlen);
    if (queued != NULL && vlen > 0)
        driver_deq(st->port, queued[0].iov_len);
    driver_output(st->port, first, first_len);
}

static ErlDrvSSizeT echo_control(ErlDrvData handle, unsigned int command, char *buf,
                                 ErlDrvSizeT len, char **rbuf, ErlDrvSizeT rlen)
{
    echo_state *st = (echo_state *)handle;
    ErlDrvSysInfo info;
    (void)command;
    driver_system_info(&info, sizeof(info));
    if (len > rlen) {
        ErlDrvBinary *bin = driver_alloc_binary(len);
        memcpy(bin->orig_bytes, buf, len);
        *rbuf = (char *)bin;
    } else {
        memcpy(*rbuf, buf, len);
    }
    driver_set_timer(st->port, 10);
    return (ErlDrvSSizeT)len;
}

static ErlDrvSSizeT echo_call(ErlDrvData handle, unsigned int command, char *buf,
                              ErlDrvSizeT len, char **rbuf, ErlDrvSizeT rlen,
                              unsigned int *flags)
{
    *flags |= DRIVER_CALL_KEEP_BUFFER;
    return echo_control(handle, command, buf, len, rbuf, rlen);
}

static void echo_timeout(ErlDrvData handle)
{
    echo_state *st = (echo_state *)handle;
    unsigned long left = 0;
    ErlDrvTime now = erl_drv_monotonic_time(ERL_DRV_MSEC);
    if (now == ERL_DRV_TIME_ERROR)
        driver_failure_atom(st->port, (char *)"no_time");
    driver_read_timer(st->port, &left);
    driver_cancel_timer(st->port);
}

static void echo_async_work(void *arg) { (void)arg; }
static void echo_async_free(void *arg) { driver_free(arg); }

static void echo_ready_input(ErlDrvData handle, ErlDrvEvent event)
{
    echo_state *st = (echo_state *)handle;
    unsigned int key = driver_async_port_key(st->port);
    driver_select(st->port, event, ERL_DRV_READ | ERL_DRV_USE, 0);
    driver_async(st->port, &key, echo_async_work, driver_alloc(1), echo_async_free);
}

static void echo_ready_async(ErlDrvData handle, ErlDrvThreadData data)
{
    (void)handle;
    (void)data;
}

static void echo_process_exit(ErlDrvData handle, ErlDrvMonitor *monitor)
{
    echo_state *st = (echo_state *)handle;
    if (driver_compare_monitors(monitor, &st->monitor) == 0)
        driver_exit(st->port, 0);
}

static void echo_stop_select(ErlDrvEvent event, void *reserved)
{
    (void)event;
    (void)reserved;
}

static void *echo_thread(void *arg) { return arg; }

static int echo_init(void)
{
    ErlDrvTid tid;
    void *result = NULL;
    ErlDrvThreadOpts *opts = erl_drv_thread_opts_create((char *)"opts");
    opts->suggested_stack_size = 64;
    if (erl_drv_thread_create((char *)"echo", &tid, echo_thread, NULL, opts) == 0)
        erl_drv_thread_join(tid, &result);
    erl_drv_thread_opts_destroy(opts);
    return 0;
}

static ErlDrvEntry echo_entry;

DRIVER_INIT(echo_drv)
{
    echo_entry.init = echo_init;
    echo_entry.start = echo_start;
    echo_entry.stop = echo_stop;
    echo_entry.output = echo_output;
    echo_entry.ready_input = echo_ready_input;
    echo_entry.driver_name = (char *)"echo_drv";
    echo_entry.control = echo_control;
    echo_entry.timeout = echo_timeout;
    echo_entry.outputv = echo_outputv;
    echo_entry.ready_async = echo_ready_async;
    echo_entry.call = echo_call;
    echo_entry.extended_marker = (int)ERL_DRV_EXTENDED_MARKER;
    echo_entry.major_version = ERL_DRV_EXTENDED_MAJOR_VERSION;
    echo_entry.minor_version = ERL_DRV_EXTENDED_MINOR_VERSION;
    echo_entry.driver_flags = ERL_DRV_FLAG_USE_PORT_LOCKING | ERL_DRV_FLAG_SOFT_BUSY;
    echo_entry.process_exit = echo_process_exit;
    echo_entry.stop_select = echo_stop_select;
    return &echo_entry;
}
