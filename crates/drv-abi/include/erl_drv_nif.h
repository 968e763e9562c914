/*
 * ddll: declarations shared by the driver API (erl_driver.h) and the NIF API.
 *
 * Written for the ddll project; binary-compatible with the erl_drv_nif.h of
 * Erlang/OTP 25 (same type names, layouts and constant values), so a driver
 * can be built against either header and loaded by either runtime.
 *
 * Only standard/system headers are used; nothing from an OTP installation.
 */

#ifndef __ERL_DRV_NIF_H__
#define __ERL_DRV_NIF_H__

/* Facts about the running system, filled in by driver_system_info(). */
typedef struct {
    int driver_major_version;
    int driver_minor_version;
    char *erts_version;
    char *otp_release;
    int thread_support;
    int smp_support;
    int async_threads;
    int scheduler_threads;
    int nif_major_version;
    int nif_minor_version;
    int dirty_scheduler_support;
} ErlDrvSysInfo;

/* Options for erl_drv_thread_create(); the stack size is in kilowords. */
typedef struct {
    int suggested_stack_size;
} ErlDrvThreadOpts;

typedef enum {
    ERL_DIRTY_JOB_CPU_BOUND = 1,
    ERL_DIRTY_JOB_IO_BOUND = 2
} ErlDirtyJobFlags;

/* Mode bits: the NIF select call and driver_select() share the low ones. */
enum ErlNifSelectFlags {
    ERL_NIF_SELECT_READ = (1 << 0),
    ERL_NIF_SELECT_WRITE = (1 << 1),
    ERL_NIF_SELECT_STOP = (1 << 2),
    ERL_NIF_SELECT_CANCEL = (1 << 3),
    ERL_NIF_SELECT_CUSTOM_MSG = (1 << 4),
    ERL_NIF_SELECT_ERROR = (1 << 5)
};

/* A process monitor handle: opaque storage, four pointers wide. */
typedef struct {
    unsigned char data[sizeof(void *) * 4];
} ErlDrvMonitor;

/*
 * Basic type sizes. OTP publishes these as SIZEOF_* macros (from its
 * configure run); we derive them from the compiler so drivers that test
 * them still build. A value already defined by the includer wins, as long
 * as it agrees with the compiler.
 */
#if defined(__SIZEOF_LONG__) && defined(__SIZEOF_POINTER__) \
    && defined(__SIZEOF_LONG_LONG__) && defined(__SIZEOF_INT__) \
    && defined(__SIZEOF_SHORT__)
#  define DDLL_SIZEOF_SHORT__ __SIZEOF_SHORT__
#  define DDLL_SIZEOF_INT__ __SIZEOF_INT__
#  define DDLL_SIZEOF_LONG__ __SIZEOF_LONG__
#  define DDLL_SIZEOF_LONG_LONG__ __SIZEOF_LONG_LONG__
#  define DDLL_SIZEOF_VOID_P__ __SIZEOF_POINTER__
#elif defined(_WIN64)
#  define DDLL_SIZEOF_SHORT__ 2
#  define DDLL_SIZEOF_INT__ 4
#  define DDLL_SIZEOF_LONG__ 4
#  define DDLL_SIZEOF_LONG_LONG__ 8
#  define DDLL_SIZEOF_VOID_P__ 8
#elif defined(_WIN32)
#  define DDLL_SIZEOF_SHORT__ 2
#  define DDLL_SIZEOF_INT__ 4
#  define DDLL_SIZEOF_LONG__ 4
#  define DDLL_SIZEOF_LONG_LONG__ 8
#  define DDLL_SIZEOF_VOID_P__ 4
#else
#  error "ddll erl_drv_nif.h: cannot determine basic type sizes for this compiler"
#endif

#ifndef SIZEOF_CHAR
#  define SIZEOF_CHAR 1
#elif SIZEOF_CHAR != 1
#  error SIZEOF_CHAR mismatch
#endif
#ifndef SIZEOF_SHORT
#  define SIZEOF_SHORT DDLL_SIZEOF_SHORT__
#elif SIZEOF_SHORT != DDLL_SIZEOF_SHORT__
#  error SIZEOF_SHORT mismatch
#endif
#ifndef SIZEOF_INT
#  define SIZEOF_INT DDLL_SIZEOF_INT__
#elif SIZEOF_INT != DDLL_SIZEOF_INT__
#  error SIZEOF_INT mismatch
#endif
#ifndef SIZEOF_LONG
#  define SIZEOF_LONG DDLL_SIZEOF_LONG__
#elif SIZEOF_LONG != DDLL_SIZEOF_LONG__
#  error SIZEOF_LONG mismatch
#endif
#ifndef SIZEOF_LONG_LONG
#  define SIZEOF_LONG_LONG DDLL_SIZEOF_LONG_LONG__
#elif SIZEOF_LONG_LONG != DDLL_SIZEOF_LONG_LONG__
#  error SIZEOF_LONG_LONG mismatch
#endif
#ifndef SIZEOF_VOID_P
#  define SIZEOF_VOID_P DDLL_SIZEOF_VOID_P__
#endif

/*
 * 64-bit and pointer-sized integers. The exact C type chosen (long versus
 * long long, long versus int) matters for pointer compatibility and printf
 * formats, so it follows the same preference order as OTP.
 */
#if !defined(__GNUC__) && defined(_WIN32)
typedef unsigned __int64 ErlNapiUInt64;
typedef signed __int64 ErlNapiSInt64;
#  define ERL_NAPI_SINT64_MAX__ 9223372036854775807i64
#  define ERL_NAPI_SINT64_MIN__ (-ERL_NAPI_SINT64_MAX__ - 1i64)
#elif SIZEOF_LONG == 8
typedef unsigned long ErlNapiUInt64;
typedef signed long ErlNapiSInt64;
#  define ERL_NAPI_SINT64_MAX__ 9223372036854775807L
#  define ERL_NAPI_SINT64_MIN__ (-ERL_NAPI_SINT64_MAX__ - 1L)
#elif SIZEOF_LONG_LONG == 8
typedef unsigned long long ErlNapiUInt64;
typedef signed long long ErlNapiSInt64;
#  define ERL_NAPI_SINT64_MAX__ 9223372036854775807LL
#  define ERL_NAPI_SINT64_MIN__ (-ERL_NAPI_SINT64_MAX__ - 1LL)
#else
#  error "ddll erl_drv_nif.h: no 64-bit integer type"
#endif

#if SIZEOF_VOID_P == 8
typedef ErlNapiUInt64 ErlNapiUInt;
typedef ErlNapiSInt64 ErlNapiSInt;
#elif SIZEOF_VOID_P == 4 && SIZEOF_LONG == 4
typedef unsigned long ErlNapiUInt;
typedef signed long ErlNapiSInt;
#elif SIZEOF_VOID_P == 4 && SIZEOF_INT == 4
typedef unsigned int ErlNapiUInt;
typedef signed int ErlNapiSInt;
#else
#  error "ddll erl_drv_nif.h: unsupported pointer size"
#endif

/* Time: the error sentinel is the most negative 64-bit value. */
#define ERTS_NAPI_TIME_ERROR__ ERL_NAPI_SINT64_MIN__

/* Time unit numbers (seconds, milli-, micro-, nanoseconds). */
#define ERTS_NAPI_SEC__ 0
#define ERTS_NAPI_MSEC__ 1
#define ERTS_NAPI_USEC__ 2
#define ERTS_NAPI_NSEC__ 3

/*
 * One I/O vector element. On Windows it mirrors WSABUF. On Unix it is
 * `struct iovec` when the includer says <sys/uio.h> exists (HAVE_SYS_UIO_H,
 * as OTP does), otherwise a struct with the same layout whose base is a
 * char pointer -- the variant that drivers built against an installed OTP
 * see, so it is the default here too.
 */
#if defined(__WIN32__) || defined(_WIN32) || defined(_WIN32_)
typedef struct _SysIOVec {
    unsigned long iov_len;
    char *iov_base;
} SysIOVec;
#else
#  include <sys/types.h>
#  ifdef HAVE_SYS_UIO_H
#    include <sys/uio.h>
typedef struct iovec SysIOVec;
#  else
typedef struct {
    char *iov_base;
    size_t iov_len;
} SysIOVec;
#  endif
#endif

/*
 * Function attributes, so that drivers get the same compiler diagnostics
 * (unused results, allocator pairing) as with OTP's header. Each expands
 * to nothing on compilers without the attribute.
 *   WUR        : warn when the result is ignored
 *   ALLOC_SIZE : argument SZPOS is the size of the returned block
 *   MALLOC_U   : returns fresh, uninitialised memory
 *   MALLOC_D   : DTOR (pointer at argument PTRPOS) releases the result
 */
#define ERL_NAPI_ATTR_WUR
#define ERL_NAPI_ATTR_ALLOC_SIZE(SZPOS)
#define ERL_NAPI_ATTR_MALLOC_U
#define ERL_NAPI_ATTR_MALLOC_US(SZPOS)
#define ERL_NAPI_ATTR_MALLOC_UD(DTOR, PTRPOS)
#define ERL_NAPI_ATTR_MALLOC_USD(SZPOS, DTOR, PTRPOS)
#define ERL_NAPI_ATTR_MALLOC_D(DTOR, PTRPOS)

#ifdef __has_attribute
#  if __has_attribute(warn_unused_result)
#    undef ERL_NAPI_ATTR_WUR
#    define ERL_NAPI_ATTR_WUR __attribute__((warn_unused_result))
#  endif
#  if __has_attribute(alloc_size)
#    undef ERL_NAPI_ATTR_ALLOC_SIZE
#    define ERL_NAPI_ATTR_ALLOC_SIZE(SZPOS) \
        __attribute__((alloc_size(SZPOS))) ERL_NAPI_ATTR_WUR
#  endif
#  if __has_attribute(malloc)
#    undef ERL_NAPI_ATTR_MALLOC_U
#    define ERL_NAPI_ATTR_MALLOC_U __attribute__((malloc)) ERL_NAPI_ATTR_WUR
#    undef ERL_NAPI_ATTR_MALLOC_US
#    define ERL_NAPI_ATTR_MALLOC_US(SZPOS) \
        __attribute__((malloc)) ERL_NAPI_ATTR_ALLOC_SIZE(SZPOS)
#    undef ERL_NAPI_ATTR_MALLOC_D
#    if defined(__GNUC__) && __GNUC__ >= 11
#      define ERL_NAPI_ATTR_MALLOC_D(DTOR, PTRPOS) \
          __attribute__((malloc(DTOR, PTRPOS))) ERL_NAPI_ATTR_WUR
#    else
#      define ERL_NAPI_ATTR_MALLOC_D(DTOR, PTRPOS) ERL_NAPI_ATTR_WUR
#    endif
#    undef ERL_NAPI_ATTR_MALLOC_UD
#    define ERL_NAPI_ATTR_MALLOC_UD(DTOR, PTRPOS) \
        ERL_NAPI_ATTR_MALLOC_U ERL_NAPI_ATTR_MALLOC_D(DTOR, PTRPOS)
#    undef ERL_NAPI_ATTR_MALLOC_USD
#    define ERL_NAPI_ATTR_MALLOC_USD(SZPOS, DTOR, PTRPOS) \
        ERL_NAPI_ATTR_MALLOC_US(SZPOS) ERL_NAPI_ATTR_MALLOC_D(DTOR, PTRPOS)
#  endif
#endif

#endif /* __ERL_DRV_NIF_H__ */
