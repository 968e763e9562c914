//! Driver threads and synchronisation: mutexes, condition variables, rwlocks, thread-specific
//! data and threads, on POSIX threads (the runtime's own implementation is pthread-based too,
//! and drivers may block in these calls, which pthreads handle without any runtime help).

use std::cell::UnsafeCell;
use std::ffi::{c_char, c_int, c_void, CStr, CString};

use super::guard;
use crate::types::{
    ErlDrvCond, ErlDrvMutex, ErlDrvRWLock, ErlDrvTSDKey, ErlDrvThreadOpts, ErlDrvTid,
};

/// Copies a driver-supplied object name (NULL gives an empty name).
///
/// # Safety
/// `name` is NULL or NUL-terminated.
unsafe fn owned_name(name: *const c_char) -> CString {
    if name.is_null() {
        CString::default()
    } else {
        // SAFETY: NUL-terminated by contract.
        unsafe { CStr::from_ptr(name) }.to_owned()
    }
}

struct Mutex {
    raw: UnsafeCell<libc::pthread_mutex_t>,
    name: CString,
}

struct Cond {
    raw: UnsafeCell<libc::pthread_cond_t>,
    name: CString,
}

struct RwLock {
    raw: UnsafeCell<libc::pthread_rwlock_t>,
    name: CString,
}

/// `ErlDrvMutex *erl_drv_mutex_create(char *name)`.
///
/// # Safety
/// `name` is NULL or NUL-terminated.
pub unsafe extern "C" fn erl_drv_mutex_create(name: *mut c_char) -> *mut ErlDrvMutex {
    guard("erl_drv_mutex_create", std::ptr::null_mut(), || {
        let mutex = Box::new(Mutex {
            raw: UnsafeCell::new(libc::PTHREAD_MUTEX_INITIALIZER),
            // SAFETY: forwarded contract.
            name: unsafe { owned_name(name) },
        });
        Box::into_raw(mutex).cast()
    })
}

/// `void erl_drv_mutex_destroy(ErlDrvMutex *mtx)`.
///
/// # Safety
/// `mtx` came from `erl_drv_mutex_create`, is unlocked and not used afterwards.
pub unsafe extern "C" fn erl_drv_mutex_destroy(mtx: *mut ErlDrvMutex) {
    if mtx.is_null() {
        return;
    }
    // SAFETY: created by erl_drv_mutex_create as a Box<Mutex> (contract); destroyed once.
    let mutex = unsafe { Box::from_raw(mtx.cast::<Mutex>()) };
    // SAFETY: an initialised, unlocked mutex (contract).
    unsafe { libc::pthread_mutex_destroy(mutex.raw.get()) };
}

/// Borrows a driver mutex.
///
/// # Safety
/// `mtx` came from `erl_drv_mutex_create` and is not destroyed.
unsafe fn mutex<'a>(mtx: *mut ErlDrvMutex) -> &'a Mutex {
    // SAFETY: by contract.
    unsafe { &*mtx.cast::<Mutex>() }
}

/// `int erl_drv_mutex_trylock(ErlDrvMutex *mtx)`: 0 when locked, EBUSY otherwise.
///
/// # Safety
/// `mtx` is a live driver mutex.
pub unsafe extern "C" fn erl_drv_mutex_trylock(mtx: *mut ErlDrvMutex) -> c_int {
    // SAFETY: live mutex (contract).
    unsafe { libc::pthread_mutex_trylock(mutex(mtx).raw.get()) }
}

/// `void erl_drv_mutex_lock(ErlDrvMutex *mtx)`.
///
/// # Safety
/// `mtx` is a live driver mutex not held by this thread.
pub unsafe extern "C" fn erl_drv_mutex_lock(mtx: *mut ErlDrvMutex) {
    // SAFETY: live mutex (contract).
    unsafe { libc::pthread_mutex_lock(mutex(mtx).raw.get()) };
}

/// `void erl_drv_mutex_unlock(ErlDrvMutex *mtx)`.
///
/// # Safety
/// `mtx` is a live driver mutex held by this thread.
pub unsafe extern "C" fn erl_drv_mutex_unlock(mtx: *mut ErlDrvMutex) {
    // SAFETY: live mutex held by this thread (contract).
    unsafe { libc::pthread_mutex_unlock(mutex(mtx).raw.get()) };
}

/// `char *erl_drv_mutex_name(ErlDrvMutex *mtx)`: the name given at creation (NULL for NULL).
///
/// # Safety
/// `mtx` is NULL or a live driver mutex.
pub unsafe extern "C" fn erl_drv_mutex_name(mtx: *mut ErlDrvMutex) -> *mut c_char {
    if mtx.is_null() {
        return std::ptr::null_mut();
    }
    // SAFETY: live mutex (contract); the name lives as long as it.
    unsafe { mutex(mtx) }.name.as_ptr().cast_mut()
}

/// `ErlDrvCond *erl_drv_cond_create(char *name)`.
///
/// # Safety
/// `name` is NULL or NUL-terminated.
pub unsafe extern "C" fn erl_drv_cond_create(name: *mut c_char) -> *mut ErlDrvCond {
    guard("erl_drv_cond_create", std::ptr::null_mut(), || {
        let cond = Box::new(Cond {
            raw: UnsafeCell::new(libc::PTHREAD_COND_INITIALIZER),
            // SAFETY: forwarded contract.
            name: unsafe { owned_name(name) },
        });
        Box::into_raw(cond).cast()
    })
}

/// Borrows a driver condition variable.
///
/// # Safety
/// `cnd` came from `erl_drv_cond_create` and is not destroyed.
unsafe fn cond<'a>(cnd: *mut ErlDrvCond) -> &'a Cond {
    // SAFETY: by contract.
    unsafe { &*cnd.cast::<Cond>() }
}

/// `void erl_drv_cond_destroy(ErlDrvCond *cnd)`.
///
/// # Safety
/// `cnd` came from `erl_drv_cond_create`, has no waiters and is not used afterwards.
pub unsafe extern "C" fn erl_drv_cond_destroy(cnd: *mut ErlDrvCond) {
    if cnd.is_null() {
        return;
    }
    // SAFETY: a Box<Cond> from erl_drv_cond_create (contract); destroyed once.
    let cond = unsafe { Box::from_raw(cnd.cast::<Cond>()) };
    // SAFETY: initialised, without waiters (contract).
    unsafe { libc::pthread_cond_destroy(cond.raw.get()) };
}

/// `void erl_drv_cond_signal(ErlDrvCond *cnd)`.
///
/// # Safety
/// `cnd` is a live driver condition variable.
pub unsafe extern "C" fn erl_drv_cond_signal(cnd: *mut ErlDrvCond) {
    // SAFETY: live (contract).
    unsafe { libc::pthread_cond_signal(cond(cnd).raw.get()) };
}

/// `void erl_drv_cond_broadcast(ErlDrvCond *cnd)`.
///
/// # Safety
/// `cnd` is a live driver condition variable.
pub unsafe extern "C" fn erl_drv_cond_broadcast(cnd: *mut ErlDrvCond) {
    // SAFETY: live (contract).
    unsafe { libc::pthread_cond_broadcast(cond(cnd).raw.get()) };
}

/// `void erl_drv_cond_wait(ErlDrvCond *cnd, ErlDrvMutex *mtx)`.
///
/// # Safety
/// Both live; `mtx` is held by this thread.
pub unsafe extern "C" fn erl_drv_cond_wait(cnd: *mut ErlDrvCond, mtx: *mut ErlDrvMutex) {
    // SAFETY: both live and the mutex held (contract).
    unsafe { libc::pthread_cond_wait(cond(cnd).raw.get(), mutex(mtx).raw.get()) };
}

/// `char *erl_drv_cond_name(ErlDrvCond *cnd)`.
///
/// # Safety
/// `cnd` is NULL or live.
pub unsafe extern "C" fn erl_drv_cond_name(cnd: *mut ErlDrvCond) -> *mut c_char {
    if cnd.is_null() {
        return std::ptr::null_mut();
    }
    // SAFETY: live (contract).
    unsafe { cond(cnd) }.name.as_ptr().cast_mut()
}

/// `ErlDrvRWLock *erl_drv_rwlock_create(char *name)`.
///
/// # Safety
/// `name` is NULL or NUL-terminated.
pub unsafe extern "C" fn erl_drv_rwlock_create(name: *mut c_char) -> *mut ErlDrvRWLock {
    guard("erl_drv_rwlock_create", std::ptr::null_mut(), || {
        let lock = Box::new(RwLock {
            raw: UnsafeCell::new(libc::PTHREAD_RWLOCK_INITIALIZER),
            // SAFETY: forwarded contract.
            name: unsafe { owned_name(name) },
        });
        Box::into_raw(lock).cast()
    })
}

/// Borrows a driver rwlock.
///
/// # Safety
/// `lock` came from `erl_drv_rwlock_create` and is not destroyed.
unsafe fn rwlock<'a>(lock: *mut ErlDrvRWLock) -> &'a RwLock {
    // SAFETY: by contract.
    unsafe { &*lock.cast::<RwLock>() }
}

/// `void erl_drv_rwlock_destroy(ErlDrvRWLock *rwlck)`.
///
/// # Safety
/// `rwlck` came from `erl_drv_rwlock_create`, is unlocked and not used afterwards.
pub unsafe extern "C" fn erl_drv_rwlock_destroy(rwlck: *mut ErlDrvRWLock) {
    if rwlck.is_null() {
        return;
    }
    // SAFETY: a Box<RwLock> (contract); destroyed once.
    let lock = unsafe { Box::from_raw(rwlck.cast::<RwLock>()) };
    // SAFETY: initialised and unlocked (contract).
    unsafe { libc::pthread_rwlock_destroy(lock.raw.get()) };
}

/// `int erl_drv_rwlock_tryrlock(ErlDrvRWLock *rwlck)`: 0 when read-locked, EBUSY otherwise.
///
/// # Safety
/// `rwlck` is live.
pub unsafe extern "C" fn erl_drv_rwlock_tryrlock(rwlck: *mut ErlDrvRWLock) -> c_int {
    // SAFETY: live (contract).
    let rc = unsafe { libc::pthread_rwlock_tryrdlock(rwlock(rwlck).raw.get()) };
    if rc == 0 {
        0
    } else {
        libc::EBUSY
    }
}

/// `void erl_drv_rwlock_rlock(ErlDrvRWLock *rwlck)`.
///
/// # Safety
/// `rwlck` is live.
pub unsafe extern "C" fn erl_drv_rwlock_rlock(rwlck: *mut ErlDrvRWLock) {
    // SAFETY: live (contract).
    unsafe { libc::pthread_rwlock_rdlock(rwlock(rwlck).raw.get()) };
}

/// `void erl_drv_rwlock_runlock(ErlDrvRWLock *rwlck)`.
///
/// # Safety
/// `rwlck` is live and read-locked by this thread.
pub unsafe extern "C" fn erl_drv_rwlock_runlock(rwlck: *mut ErlDrvRWLock) {
    // SAFETY: live and held (contract).
    unsafe { libc::pthread_rwlock_unlock(rwlock(rwlck).raw.get()) };
}

/// `int erl_drv_rwlock_tryrwlock(ErlDrvRWLock *rwlck)`: 0 when write-locked, EBUSY otherwise.
///
/// # Safety
/// `rwlck` is live.
pub unsafe extern "C" fn erl_drv_rwlock_tryrwlock(rwlck: *mut ErlDrvRWLock) -> c_int {
    // SAFETY: live (contract).
    let rc = unsafe { libc::pthread_rwlock_trywrlock(rwlock(rwlck).raw.get()) };
    if rc == 0 {
        0
    } else {
        libc::EBUSY
    }
}

/// `void erl_drv_rwlock_rwlock(ErlDrvRWLock *rwlck)`.
///
/// # Safety
/// `rwlck` is live.
pub unsafe extern "C" fn erl_drv_rwlock_rwlock(rwlck: *mut ErlDrvRWLock) {
    // SAFETY: live (contract).
    unsafe { libc::pthread_rwlock_wrlock(rwlock(rwlck).raw.get()) };
}

/// `void erl_drv_rwlock_rwunlock(ErlDrvRWLock *rwlck)`.
///
/// # Safety
/// `rwlck` is live and write-locked by this thread.
pub unsafe extern "C" fn erl_drv_rwlock_rwunlock(rwlck: *mut ErlDrvRWLock) {
    // SAFETY: live and held (contract).
    unsafe { libc::pthread_rwlock_unlock(rwlock(rwlck).raw.get()) };
}

/// `char *erl_drv_rwlock_name(ErlDrvRWLock *rwlck)`.
///
/// # Safety
/// `rwlck` is NULL or live.
pub unsafe extern "C" fn erl_drv_rwlock_name(rwlck: *mut ErlDrvRWLock) -> *mut c_char {
    if rwlck.is_null() {
        return std::ptr::null_mut();
    }
    // SAFETY: live (contract).
    unsafe { rwlock(rwlck) }.name.as_ptr().cast_mut()
}

/// `int erl_drv_tsd_key_create(char *name, ErlDrvTSDKey *key)`: 0, or an errno value.
///
/// # Safety
/// `key` is valid for writing.
pub unsafe extern "C" fn erl_drv_tsd_key_create(
    name: *mut c_char,
    key: *mut ErlDrvTSDKey,
) -> c_int {
    let _ = name;
    if key.is_null() {
        return libc::EINVAL;
    }
    let mut raw: libc::pthread_key_t = 0;
    // SAFETY: `raw` is a valid out-pointer; no destructor.
    let rc = unsafe { libc::pthread_key_create(&mut raw, None) };
    if rc != 0 {
        return rc;
    }
    let Ok(value) = ErlDrvTSDKey::try_from(raw) else {
        // SAFETY: `raw` was just created.
        unsafe { libc::pthread_key_delete(raw) };
        return libc::EAGAIN;
    };
    // SAFETY: valid for writing (contract).
    unsafe { *key = value };
    0
}

/// `void erl_drv_tsd_key_destroy(ErlDrvTSDKey key)`.
///
/// # Safety
/// `key` came from `erl_drv_tsd_key_create` and is not used afterwards.
pub unsafe extern "C" fn erl_drv_tsd_key_destroy(key: ErlDrvTSDKey) {
    // SAFETY: a live key (contract); pthread rejects invalid ones with EINVAL.
    unsafe { libc::pthread_key_delete(key as libc::pthread_key_t) };
}

/// `void erl_drv_tsd_set(ErlDrvTSDKey key, void *data)`.
///
/// # Safety
/// `key` is live.
pub unsafe extern "C" fn erl_drv_tsd_set(key: ErlDrvTSDKey, data: *mut c_void) {
    // SAFETY: a live key (contract).
    unsafe { libc::pthread_setspecific(key as libc::pthread_key_t, data) };
}

/// `void *erl_drv_tsd_get(ErlDrvTSDKey key)`.
///
/// # Safety
/// `key` is live.
pub unsafe extern "C" fn erl_drv_tsd_get(key: ErlDrvTSDKey) -> *mut c_void {
    // SAFETY: a live key (contract).
    unsafe { libc::pthread_getspecific(key as libc::pthread_key_t) }
}

/// `ErlDrvThreadOpts *erl_drv_thread_opts_create(char *name)`: default options
/// (`suggested_stack_size = -1`, meaning the default size).
///
/// # Safety
/// None beyond the C API's.
pub unsafe extern "C" fn erl_drv_thread_opts_create(name: *mut c_char) -> *mut ErlDrvThreadOpts {
    let _ = name;
    Box::into_raw(Box::new(ErlDrvThreadOpts {
        suggested_stack_size: -1,
    }))
}

/// `void erl_drv_thread_opts_destroy(ErlDrvThreadOpts *opts)`.
///
/// # Safety
/// `opts` came from `erl_drv_thread_opts_create` and is not used afterwards.
pub unsafe extern "C" fn erl_drv_thread_opts_destroy(opts: *mut ErlDrvThreadOpts) {
    if !opts.is_null() {
        // SAFETY: a Box from erl_drv_thread_opts_create (contract), freed once.
        drop(unsafe { Box::from_raw(opts) });
    }
}

/// A driver thread's identity: its pthread and name. Threads created by
/// `erl_drv_thread_create` own theirs until joined; other threads get one on first
/// `erl_drv_thread_self`, leaked for the life of the process (as a thread's tid must stay
/// comparable).
///
/// **Unload safety.** A thread runs the code of the driver library its entry function lives
/// in (found with `dladdr`), so it holds that library mapped: `code` is released when the
/// function returns, or, for a thread ended with `erl_drv_thread_exit`, when it is joined.
/// The runtime still unloads the driver when erl_ddll says so (calling `finish`, which may
/// join the driver's threads, as in BEAM); only the library's close waits for the holds.
struct Thread {
    pthread: libc::pthread_t,
    name: CString,
    code: std::sync::Mutex<Option<crate::driver::LibraryHold>>,
}

impl Thread {
    fn new(pthread: libc::pthread_t, name: CString) -> Thread {
        Thread {
            pthread,
            name,
            code: std::sync::Mutex::new(None),
        }
    }

    /// Lets go of the driver library (it may close now, if this was its last user).
    fn release_code(&self) {
        let hold = self.code.lock().unwrap_or_else(|e| e.into_inner()).take();
        drop(hold);
    }
}

thread_local! {
    static SELF: std::cell::Cell<*mut Thread> = const { std::cell::Cell::new(std::ptr::null_mut()) };
}

/// What a new driver thread starts with.
struct Start {
    func: unsafe extern "C" fn(*mut c_void) -> *mut c_void,
    arg: *mut c_void,
    me: *mut Thread,
}

extern "C" fn thread_main(start: *mut c_void) -> *mut c_void {
    // SAFETY: `start` is the Box<Start> handed over by erl_drv_thread_create, taken once.
    let Start { func, arg, me } = *unsafe { Box::from_raw(start.cast::<Start>()) };
    SELF.with(|s| s.set(me));
    // Nothing with a destructor is live across the call: erl_drv_thread_exit may end the
    // thread inside it (pthread_exit unwinds these frames).
    // SAFETY: the driver's thread function with its own argument, as it asked.
    let result = unsafe { func(arg) };
    // SAFETY: `me` stays alive until the thread is joined, which is after this returns.
    unsafe { (*me).release_code() };
    result
}

/// `int erl_drv_thread_create(char *name, ErlDrvTid *tid, void *(*func)(void *), void *arg,
/// ErlDrvThreadOpts *opts)`: 0, or an errno value.
///
/// # Safety
/// `tid` is valid for writing; `func` is a thread function that may be called with `arg`.
pub unsafe extern "C" fn erl_drv_thread_create(
    name: *mut c_char,
    tid: *mut ErlDrvTid,
    func: Option<unsafe extern "C" fn(*mut c_void) -> *mut c_void>,
    arg: *mut c_void,
    opts: *mut ErlDrvThreadOpts,
) -> c_int {
    let (Some(func), false) = (func, tid.is_null()) else {
        return libc::EINVAL;
    };
    // SAFETY: forwarded contract.
    let thread = Thread::new(0, unsafe { owned_name(name) });
    *thread.code.lock().unwrap_or_else(|e| e.into_inner()) =
        crate::driver::LibraryHold::of_address(func as usize);
    let me = Box::into_raw(Box::new(thread));
    let start = Box::into_raw(Box::new(Start { func, arg, me }));
    // SAFETY: zeroed attr storage is initialised by pthread_attr_init before use.
    let mut attr: libc::pthread_attr_t = unsafe { std::mem::zeroed() };
    // SAFETY: `attr` is valid storage.
    unsafe { libc::pthread_attr_init(&mut attr) };
    // SAFETY: `opts` is NULL or valid (contract).
    if let Some(opts) = unsafe { opts.as_ref() } {
        if opts.suggested_stack_size > 0 {
            // The size is given in kilowords, as in the runtime.
            let bytes = (opts.suggested_stack_size as usize)
                .saturating_mul(1024 * std::mem::size_of::<usize>())
                .max(libc::PTHREAD_STACK_MIN);
            // SAFETY: initialised attr; an invalid size is rejected by pthread, not UB.
            unsafe { libc::pthread_attr_setstacksize(&mut attr, bytes) };
        }
    }
    // SAFETY: `me` is a live Box (above).
    let pthread = unsafe { &mut (*me).pthread };
    // SAFETY: valid out-pointer, initialised attr, a C-ABI start routine and its Box argument.
    let rc = unsafe { libc::pthread_create(pthread, &attr, thread_main, start.cast()) };
    // SAFETY: initialised above.
    unsafe { libc::pthread_attr_destroy(&mut attr) };
    if rc != 0 {
        // SAFETY: the thread did not start, so both boxes are still ours.
        unsafe {
            drop(Box::from_raw(start));
            drop(Box::from_raw(me));
        }
        return rc;
    }
    // SAFETY: valid for writing (contract).
    unsafe { *tid = me.cast() };
    0
}

/// `ErlDrvTid erl_drv_thread_self(void)`.
///
/// # Safety
/// None.
pub unsafe extern "C" fn erl_drv_thread_self() -> ErlDrvTid {
    SELF.with(|s| {
        if s.get().is_null() {
            // SAFETY: pthread_self has no preconditions and cannot fail.
            let id = unsafe { libc::pthread_self() };
            let me = Box::into_raw(Box::new(Thread::new(id, CString::default())));
            s.set(me);
        }
        s.get().cast()
    })
}

/// `int erl_drv_equal_tids(ErlDrvTid a, ErlDrvTid b)`: non-zero when equal.
///
/// # Safety
/// Both are tids from this API.
pub unsafe extern "C" fn erl_drv_equal_tids(a: ErlDrvTid, b: ErlDrvTid) -> c_int {
    if a.is_null() || b.is_null() {
        return c_int::from(a == b);
    }
    // SAFETY: both are live Thread records (contract).
    let (a, b) = unsafe { (&*a.cast::<Thread>(), &*b.cast::<Thread>()) };
    // SAFETY: pthread_equal only compares.
    unsafe { libc::pthread_equal(a.pthread, b.pthread) }
}

/// `void erl_drv_thread_exit(void *resp)`: ends the calling driver thread.
///
/// # Safety
/// Called on a thread created by `erl_drv_thread_create`, from C frames only.
pub unsafe extern "C" fn erl_drv_thread_exit(resp: *mut c_void) {
    // SAFETY: contract: a driver thread whose frames are C (no Rust destructors skipped).
    unsafe { libc::pthread_exit(resp) }
}

/// `int erl_drv_thread_join(ErlDrvTid tid, void **respp)`: 0, or an errno value.
///
/// # Safety
/// `tid` came from `erl_drv_thread_create` and is joined once; `respp` is NULL or writable.
pub unsafe extern "C" fn erl_drv_thread_join(tid: ErlDrvTid, respp: *mut *mut c_void) -> c_int {
    if tid.is_null() {
        return libc::EINVAL;
    }
    // SAFETY: a live Thread record (contract).
    let pthread = unsafe { (*tid.cast::<Thread>()).pthread };
    let mut result: *mut c_void = std::ptr::null_mut();
    // SAFETY: a joinable thread created by erl_drv_thread_create (contract).
    let rc = unsafe { libc::pthread_join(pthread, &mut result) };
    if rc == 0 {
        if !respp.is_null() {
            // SAFETY: writable (contract).
            unsafe { *respp = result };
        }
        // SAFETY: joined once: its record is no longer referenced by the thread.
        drop(unsafe { Box::from_raw(tid.cast::<Thread>()) });
    }
    rc
}

/// `char *erl_drv_thread_name(ErlDrvTid tid)`.
///
/// # Safety
/// `tid` is NULL or a live tid.
pub unsafe extern "C" fn erl_drv_thread_name(tid: ErlDrvTid) -> *mut c_char {
    if tid.is_null() {
        return std::ptr::null_mut();
    }
    // SAFETY: a live Thread record (contract).
    unsafe { &*tid.cast::<Thread>() }.name.as_ptr().cast_mut()
}
