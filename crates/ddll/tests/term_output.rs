//! Term output through the real C ABI: the exported `erl_drv_output_term`, `erl_drv_send_term`,
//! `driver_output_term` and `driver_send_term` (looked up by name, as a driver links them), on a
//! real port, with one table of specs: the erl_driver documentation's examples and every
//! rejection of the runtime. Each row gives the return value and the message the receiver must
//! find (none for a rejection). BEAM's answers for the same cases are in
//! `scenarios/term_*.expected`.

mod support;

use std::ffi::{c_char, c_int, CString};
use std::sync::Arc;
use std::time::Duration;

use ddll::{Atom, Process, Runtime, Term};
use drv_abi::types::{ErlDrvBinary, ErlDrvPort, ErlDrvSizeT, ErlDrvTermData};
use drv_term::tags::*;

type OutputTerm = unsafe extern "C" fn(ErlDrvTermData, *mut ErlDrvTermData, c_int) -> c_int;
type SendTerm =
    unsafe extern "C" fn(ErlDrvTermData, ErlDrvTermData, *mut ErlDrvTermData, c_int) -> c_int;
type OldOutputTerm = unsafe extern "C" fn(ErlDrvPort, *mut ErlDrvTermData, c_int) -> c_int;
type OldSendTerm =
    unsafe extern "C" fn(ErlDrvPort, ErlDrvTermData, *mut ErlDrvTermData, c_int) -> c_int;

/// The API functions as a driver sees them (the shim's exports).
struct Api {
    output_term: OutputTerm,
    send_term: SendTerm,
    old_output_term: OldOutputTerm,
    old_send_term: OldSendTerm,
    mk_atom: unsafe extern "C" fn(*mut c_char) -> ErlDrvTermData,
    mk_port: unsafe extern "C" fn(ErlDrvPort) -> ErlDrvTermData,
    connected: unsafe extern "C" fn(ErlDrvPort) -> ErlDrvTermData,
    alloc_binary: unsafe extern "C" fn(ErlDrvSizeT) -> *mut ErlDrvBinary,
    free_binary: unsafe extern "C" fn(*mut ErlDrvBinary),
}

impl Api {
    /// Looks the functions up in the process's global symbols (the runtime must be up, so
    /// that the shim is loaded).
    fn get() -> Api {
        let this = libloading::os::unix::Library::this();
        macro_rules! sym {
            ($name:literal) => {
                // SAFETY: each name is an API function with the signature of the field it
                // fills (the shim's signatures are checked against the def file at build time).
                *unsafe { this.get($name.as_bytes()) }.expect(concat!("the shim exports ", $name))
            };
        }
        Api {
            output_term: sym!("erl_drv_output_term"),
            send_term: sym!("erl_drv_send_term"),
            old_output_term: sym!("driver_output_term"),
            old_send_term: sym!("driver_send_term"),
            mk_atom: sym!("driver_mk_atom"),
            mk_port: sym!("driver_mk_port"),
            connected: sym!("driver_connected"),
            alloc_binary: sym!("driver_alloc_binary"),
            free_binary: sym!("driver_free_binary"),
        }
    }

    fn atom(&self, name: &str) -> ErlDrvTermData {
        let name = CString::new(name).expect("no NUL");
        // SAFETY: a NUL-terminated string; the function does not keep it.
        unsafe { (self.mk_atom)(name.as_ptr().cast_mut()) }
    }
}

/// Which function a row goes through.
#[derive(Clone, Copy, Debug)]
enum Via {
    Output,
    OldOutput,
    /// `erl_drv_send_term` to this receiver.
    Send(ErlDrvTermData),
    /// `driver_send_term` to this receiver.
    OldSend(ErlDrvTermData),
}

struct Fixture {
    rt: Runtime,
    api: Api,
    me: Arc<Process>,
    other: Arc<Process>,
    dead: Arc<Process>,
    port: ddll::Port,
    handle: ErlDrvPort,
    port_td: ErlDrvTermData,
    bin50: *mut ErlDrvBinary,
}

impl Fixture {
    fn new() -> Option<Fixture> {
        let drivers = support::own_drivers()?;
        let rt = Runtime::new().expect("runtime");
        let api = Api::get();
        let me = rt.spawn(Some("owner"));
        let other = rt.spawn(Some("other"));
        let dead = rt.spawn(Some("dead"));
        rt.exit(dead.pid(), Term::Atom(Atom::new("kill")));
        rt.try_load(
            me.pid(),
            &drivers.to_string_lossy(),
            "term_drv",
            Default::default(),
        )
        .expect("term_drv loads");
        let port = rt
            .open_port(me.pid(), "term_drv", Default::default())
            .expect("opens");
        // ddll's port handle is the port's number.
        let handle = port.local_id().expect("a local port") as usize as ErlDrvPort;
        // SAFETY: a port handle of this runtime.
        let port_td = unsafe { (api.mk_port)(handle) };
        // SAFETY: plain allocation.
        let bin50 = unsafe { (api.alloc_binary)(50) };
        assert!(!bin50.is_null());
        for i in 0..50u8 {
            // SAFETY: the binary has 50 data bytes.
            unsafe { *(*bin50).orig_bytes.as_mut_ptr().add(usize::from(i)) = i as c_char };
        }
        Some(Fixture {
            rt,
            api,
            me,
            other,
            dead,
            port,
            handle,
            port_td,
            bin50,
        })
    }

    fn pid(&self, p: &Process) -> ErlDrvTermData {
        p.pid().to_local_term_data().expect("a small pid")
    }

    /// Calls `via` with `spec` from port `port_td` (or the fixture's port).
    fn call(&self, via: Via, spec: &[ErlDrvTermData], port_td: ErlDrvTermData) -> c_int {
        let mut spec = spec.to_vec();
        let (data, len) = (spec.as_mut_ptr(), spec.len() as c_int);
        let handle = if port_td == self.port_td {
            self.handle
        } else {
            // A handle that no port has.
            usize::MAX as ErlDrvPort
        };
        // SAFETY: `data` holds `len` words; every pointer in the specs below points at live
        // memory (statics and the fixture's binary).
        unsafe {
            match via {
                Via::Output => (self.api.output_term)(port_td, data, len),
                Via::OldOutput => (self.api.old_output_term)(handle, data, len),
                Via::Send(to) => (self.api.send_term)(port_td, to, data, len),
                Via::OldSend(to) => (self.api.old_send_term)(handle, to, data, len),
            }
        }
    }

    /// The erl_driver documentation's `{tcp, Port, [100 | Bin50]}`, from the fixture's port
    /// and binary.
    fn tcp(&self) -> Vec<ErlDrvTermData> {
        vec![
            ERL_DRV_ATOM,
            self.api.atom("tcp"),
            ERL_DRV_PORT,
            self.port_td,
            ERL_DRV_INT,
            100,
            ERL_DRV_BINARY,
            self.bin50 as usize as ErlDrvTermData,
            50,
            0,
            ERL_DRV_LIST,
            2,
            ERL_DRV_TUPLE,
            3,
        ]
    }

    /// The next message of `p`, printed; "none" if there is none.
    fn message(&self, p: &Process) -> String {
        p.receive(Some(Duration::ZERO))
            .map(Term::from)
            .map_or_else(|| "none".to_owned(), |t| t.to_string())
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // SAFETY: the fixture's own reference; terms that share the binary hold their own.
        unsafe { (self.api.free_binary)(self.bin50) };
        let _ = self.rt.port_close(self.me.pid(), &self.port);
    }
}

static ABC: &[u8] = b"abc";
static S123: &[u8] = b"123";
static EXT_OK: &[u8] = &[131, 104, 2, 100, 0, 2, b'o', b'k', 107, 0, 2, b'a', b'b'];
static EXT_BAD: &[u8] = &[131, 255];
static EXT_DUP: &[u8] = &[
    131, 116, 0, 0, 0, 2, 100, 0, 1, b'k', 97, 1, 100, 0, 1, b'k', 97, 2,
];
static HALF: f64 = 3.5;
static NAN: f64 = f64::NAN;
static INF: f64 = f64::NEG_INFINITY;
static I64_MIN: i64 = i64::MIN;
static U64_MAX: u64 = u64::MAX;

fn ptr<T: ?Sized>(r: &'static T) -> ErlDrvTermData {
    r as *const T as *const u8 as usize as ErlDrvTermData
}
fn neg(v: i64) -> ErlDrvTermData {
    v as ErlDrvTermData
}

#[test]
fn every_documented_example_and_rejection_through_the_abi() {
    let Some(f) = Fixture::new() else { return };
    let (a, port, bin) = (
        |n: &str| f.api.atom(n),
        f.port_td,
        f.bin50 as usize as ErlDrvTermData,
    );
    let port_text = format!("#Port<0.{}>", f.port.local_id().expect("local"));
    let bin50_text = format!(
        "<<{}>>",
        (0..50).map(|i| i.to_string()).collect::<Vec<_>>().join(",")
    );
    let owner = f.pid(&f.me);
    // SAFETY: the fixture's port handle.
    let connected = unsafe { (f.api.connected)(f.handle) };
    assert_eq!(
        connected, owner,
        "driver_connected is the owner, in drv-term's encoding"
    );
    let (other, dead) = (f.pid(&f.other), f.pid(&f.dead));
    let owner_text = Term::Pid(*f.me.pid()).to_string();
    let other_text = Term::Pid(*f.other.pid()).to_string();
    use Via::*;
    // (via, spec, return value, message expected by the receiver)
    let rows: Vec<(Via, Vec<ErlDrvTermData>, c_int, String)> = vec![
        // The erl_driver documentation's examples.
        (
            Output,
            f.tcp(),
            1,
            format!("{{tcp,{port_text},[100|{bin50_text}]}}"),
        ),
        (
            OldOutput,
            vec![
                ERL_DRV_ATOM,
                a("x"),
                ERL_DRV_STRING,
                ptr(ABC),
                3,
                ERL_DRV_ATOM,
                a("y"),
                ERL_DRV_NIL,
                ERL_DRV_LIST,
                4,
            ],
            1,
            r#"[x,"abc",y]"#.into(),
        ),
        (
            Output,
            vec![
                ERL_DRV_NIL,
                ERL_DRV_STRING_CONS,
                ptr(S123),
                3,
                ERL_DRV_STRING_CONS,
                ptr(ABC),
                3,
            ],
            1,
            r#""abc123""#.into(),
        ),
        // The other types, to the owner and to other processes.
        (
            Send(other),
            vec![
                ERL_DRV_PID,
                owner,
                ERL_DRV_FLOAT,
                ptr(&HALF),
                ERL_DRV_UINT,
                !0,
                ERL_DRV_TUPLE,
                3,
            ],
            1,
            format!("{{{owner_text},3.5,18446744073709551615}}"),
        ),
        (
            OldSend(other),
            vec![
                ERL_DRV_INT64,
                ptr(&I64_MIN),
                ERL_DRV_UINT64,
                ptr(&U64_MAX),
                ERL_DRV_EXT2TERM,
                ptr(EXT_OK),
                EXT_OK.len() as _,
                ERL_DRV_BUF2BINARY,
                ptr(ABC),
                2,
                ERL_DRV_LIST,
                4,
            ],
            1,
            r#"[-9223372036854775808,18446744073709551615,{ok,"ab"}|<<"ab">>]"#.into(),
        ),
        (
            Output,
            vec![
                ERL_DRV_ATOM,
                a("b"),
                ERL_DRV_INT,
                neg(-2),
                ERL_DRV_ATOM,
                a("a"),
                ERL_DRV_PID,
                other,
                ERL_DRV_MAP,
                2,
            ],
            1,
            format!("#{{a => {other_text},b => -2}}"),
        ),
        // Every rejection: -1, nothing sent.
        (Output, vec![18], -1, "none".into()),
        (Output, vec![0], -1, "none".into()),
        (Output, vec![ERL_DRV_ATOM], -1, "none".into()),
        (Output, vec![ERL_DRV_BINARY, bin, 50], -1, "none".into()),
        (Output, vec![ERL_DRV_ATOM, 5], -1, "none".into()),
        (Output, vec![ERL_DRV_PORT, a("p")], -1, "none".into()),
        (Output, vec![ERL_DRV_PID, port], -1, "none".into()),
        (Output, vec![ERL_DRV_BINARY, 0, 0, 0], -1, "none".into()),
        (Output, vec![ERL_DRV_BINARY, bin, 41, 10], -1, "none".into()),
        (Output, vec![ERL_DRV_BINARY, bin, !0, 1], -1, "none".into()),
        (Output, vec![ERL_DRV_BUF2BINARY, 0, 3], -1, "none".into()),
        (Output, vec![ERL_DRV_STRING, 0, 3], -1, "none".into()),
        (
            Output,
            vec![ERL_DRV_STRING, ptr(ABC), neg(-1)],
            -1,
            "none".into(),
        ),
        (
            Output,
            vec![ERL_DRV_NIL, ERL_DRV_STRING_CONS, 0, 3],
            -1,
            "none".into(),
        ),
        (
            Output,
            vec![ERL_DRV_NIL, ERL_DRV_STRING_CONS, ptr(ABC), neg(-2)],
            -1,
            "none".into(),
        ),
        (
            Output,
            vec![ERL_DRV_STRING_CONS, ptr(ABC), 3],
            -1,
            "none".into(),
        ),
        (
            Output,
            vec![ERL_DRV_NIL, ERL_DRV_LIST, 0],
            -1,
            "none".into(),
        ),
        (
            Output,
            vec![ERL_DRV_NIL, ERL_DRV_LIST, neg(-1)],
            -1,
            "none".into(),
        ),
        (
            Output,
            vec![ERL_DRV_INT, 1, ERL_DRV_NIL, ERL_DRV_LIST, 3],
            -1,
            "none".into(),
        ),
        (Output, vec![ERL_DRV_TUPLE, neg(-1)], -1, "none".into()),
        (
            Output,
            vec![ERL_DRV_INT, 1, ERL_DRV_TUPLE, 2],
            -1,
            "none".into(),
        ),
        (Output, vec![ERL_DRV_MAP, neg(-1)], -1, "none".into()),
        (
            Output,
            vec![ERL_DRV_INT, 1, ERL_DRV_MAP, 1],
            -1,
            "none".into(),
        ),
        (
            Output,
            vec![
                ERL_DRV_INT,
                1,
                ERL_DRV_NIL,
                ERL_DRV_INT,
                1,
                ERL_DRV_NIL,
                ERL_DRV_MAP,
                2,
            ],
            -1,
            "none".into(),
        ),
        (Output, vec![ERL_DRV_EXT2TERM, 0, 3], -1, "none".into()),
        (
            Output,
            vec![ERL_DRV_EXT2TERM, ptr(EXT_OK), 0],
            -1,
            "none".into(),
        ),
        (
            Output,
            vec![ERL_DRV_EXT2TERM, ptr(EXT_BAD), EXT_BAD.len() as _],
            -1,
            "none".into(),
        ),
        (
            Output,
            vec![ERL_DRV_EXT2TERM, ptr(EXT_DUP), EXT_DUP.len() as _],
            -1,
            "none".into(),
        ),
        (Output, vec![ERL_DRV_FLOAT, ptr(&NAN)], -1, "none".into()),
        (Output, vec![ERL_DRV_FLOAT, ptr(&INF)], -1, "none".into()),
        (Output, vec![], -1, "none".into()),
        (Output, vec![ERL_DRV_NIL, ERL_DRV_NIL], -1, "none".into()),
        (
            OldOutput,
            vec![ERL_DRV_NIL, ERL_DRV_ATOM, 7],
            -1,
            "none".into(),
        ),
        (Send(other), vec![ERL_DRV_ATOM, 5], -1, "none".into()),
        (
            OldSend(other),
            vec![ERL_DRV_INT, 1, ERL_DRV_TUPLE, 2],
            -1,
            "none".into(),
        ),
    ];
    for (via, spec, rc, message) in rows {
        let got = f.call(via, &spec, f.port_td);
        let receiver = match via {
            Send(_) | OldSend(_) => &f.other,
            _ => &f.me,
        };
        assert_eq!(
            (got, f.message(receiver)),
            (rc, message),
            "{via:?} {spec:?}"
        );
        assert_eq!(f.message(&f.me), "none", "no other message for {spec:?}");
        assert_eq!(f.message(&f.other), "none", "no other message for {spec:?}");
    }

    // Ports and receivers: (via, spec, port as term data, return value).
    let good = vec![ERL_DRV_ATOM, a("ok")];
    let bad = vec![ERL_DRV_ATOM, 5];
    let dup = vec![
        ERL_DRV_INT,
        1,
        ERL_DRV_NIL,
        ERL_DRV_INT,
        1,
        ERL_DRV_NIL,
        ERL_DRV_MAP,
        2,
    ];
    let no_port = ddll::Port::local(u64::MAX >> 8)
        .to_local_term_data()
        .expect("small");
    let not_a_pid = a("nobody");
    let cases: Vec<(Via, &Vec<ErlDrvTermData>, ErlDrvTermData, c_int)> = vec![
        // A dead receiver: 0; a bad spec is still -1; duplicate keys are found after the
        // receiver (0).
        (Send(dead), &good, port, 0),
        (OldSend(dead), &good, port, 0),
        (Send(dead), &bad, port, -1),
        (Send(dead), &dup, port, 0),
        // A receiver that is no pid: 0 (a bad spec: -1).
        (Send(not_a_pid), &good, port, 0),
        (Send(not_a_pid), &dup, port, 0),
        (Send(not_a_pid), &bad, port, -1),
        // A port that does not exist, or no port value at all: -1 whatever the spec.
        (Output, &good, no_port, -1),
        (Output, &bad, no_port, -1),
        (Output, &good, a("not_a_port"), -1),
        (OldOutput, &good, no_port, -1),
        (Send(other), &good, no_port, -1),
        (OldSend(other), &dup, no_port, -1),
        (Send(dead), &dup, no_port, -1),
    ];
    for (via, spec, port_td, rc) in cases {
        assert_eq!(
            f.call(via, spec, port_td),
            rc,
            "{via:?} {spec:?} from {port_td:#x}"
        );
        assert_eq!(f.message(&f.me), "none");
        assert_eq!(f.message(&f.other), "none");
    }
}

/// A binary larger than BEAM's heap-binary limit is shared with the driver, not copied: the
/// term holds a reference until it is dropped.
#[test]
fn large_binaries_are_shared_and_small_ones_copied() {
    let Some(f) = Fixture::new() else { return };
    // SAFETY: plain allocation.
    let big = unsafe { (f.api.alloc_binary)(1000) };
    assert!(!big.is_null());
    let refc = |b: *mut ErlDrvBinary| {
        // SAFETY: a live binary of this allocator.
        unsafe { drv_queue::raw::binary_get_refc(b) }
    };
    let spec =
        |b: *mut ErlDrvBinary, len| vec![ERL_DRV_BINARY, b as usize as ErlDrvTermData, len, 0];
    assert_eq!(f.call(Via::Output, &spec(big, 1000), f.port_td), 1);
    assert_eq!(refc(big), 2, "the queued term shares the binary");
    let Some(Term::Binary(shared)) = f.me.receive(Some(Duration::ZERO)).map(Term::from) else {
        panic!("a binary")
    };
    assert_eq!(shared.len(), 1000);
    drop(shared);
    assert_eq!(refc(big), 1);
    assert_eq!(f.call(Via::Output, &spec(f.bin50, 50), f.port_td), 1);
    assert_eq!(refc(f.bin50), 1, "a 50-byte binary is copied");
    assert!(f.me.receive(Some(Duration::ZERO)).is_some());
    // Inside a tuple: the message, taken as it is (one buffer), holds the reference, and so
    // does a Term made from it (the two share one handle): it goes with the last of them.
    let mut nested = vec![ERL_DRV_INT, 7];
    nested.extend(spec(big, 1000));
    nested.extend([ERL_DRV_TUPLE, 2]);
    assert_eq!(f.call(Via::Output, &nested, f.port_td), 1);
    assert_eq!(refc(big), 2);
    let flat = f.me.receive(Some(Duration::ZERO)).expect("the message");
    assert_eq!(
        flat.view()
            .tuple()
            .and_then(|mut t| t.nth(1)?.binary())
            .map(<[u8]>::len),
        Some(1000),
        "the view reads the shared binary in place"
    );
    let term = flat.to_term();
    assert_eq!(refc(big), 2, "the Term shares the flat term's handle");
    assert!(
        matches!(&term, Term::Tuple(items) if matches!(&items[1], Term::Binary(b) if b.len() == 1000)),
        "{term}"
    );
    drop(flat);
    assert_eq!(refc(big), 2, "the Term still holds it");
    drop(term);
    assert_eq!(refc(big), 1);
    // SAFETY: our reference.
    unsafe { (f.api.free_binary)(big) };
}

/// Behind a deep backlog (terms built straight into the mailbox's logs), every spec gives the
/// return value and the message it gives at an empty mailbox, in order: terms a log holds,
/// terms it does not (a shared binary, a map, a spec longer than a log builds), rejected specs,
/// and a dead receiver.
#[test]
fn a_deep_backlog_of_terms_keeps_each_term_and_result() {
    let Some(f) = Fixture::new() else { return };
    // SAFETY: plain allocation.
    let big = unsafe { (f.api.alloc_binary)(1000) };
    assert!(!big.is_null());
    let a = |n: &str| f.api.atom(n);
    let tcp = f.tcp();
    let mut long_list: Vec<ErlDrvTermData> = (0..200).flat_map(|i| [ERL_DRV_INT, i]).collect();
    long_list.extend([ERL_DRV_NIL, ERL_DRV_LIST, 201]);
    // Records larger than the first guess of their size (a long string in few words).
    static LONG: [u8; 3000] = [b'x'; 3000];
    let dead = f.pid(&f.dead);
    let rows: Vec<(Via, Vec<ErlDrvTermData>)> = vec![
        (Via::Output, tcp.clone()),
        (
            Via::OldOutput,
            vec![
                ERL_DRV_STRING,
                ptr(ABC),
                3,
                ERL_DRV_FLOAT,
                ptr(&HALF),
                ERL_DRV_TUPLE,
                2,
            ],
        ),
        (
            Via::Output,
            vec![ERL_DRV_BINARY, big as usize as ErlDrvTermData, 1000, 0],
        ),
        (
            Via::Output,
            vec![ERL_DRV_ATOM, a("k"), ERL_DRV_INT, 1, ERL_DRV_MAP, 1],
        ),
        (Via::Output, vec![ERL_DRV_STRING, ptr(&LONG), 3000]),
        (Via::Output, long_list),
        (Via::Output, vec![ERL_DRV_ATOM, 5]),
        (Via::Output, vec![ERL_DRV_INT, 1, ERL_DRV_TUPLE, 2]),
        (Via::Send(dead), tcp.clone()),
        (Via::Send(f.pid(&f.me)), vec![ERL_DRV_INT64, ptr(&I64_MIN)]),
    ];
    // Each row at an empty mailbox: its result and message.
    let expected: Vec<(c_int, String)> = rows
        .iter()
        .map(|(via, spec)| (f.call(*via, spec, f.port_td), f.message(&f.me)))
        .collect();
    assert_eq!(f.message(&f.me), "none");
    // A deep backlog: past 17 blocks of 1,024 messages, terms go to logs.
    let backlog = 20_000;
    for _ in 0..backlog {
        assert_eq!(f.call(Via::Output, &tcp, f.port_td), 1);
    }
    let rounds = 300;
    for _ in 0..rounds {
        for ((via, spec), (rc, _)) in rows.iter().zip(&expected) {
            assert_eq!(f.call(*via, spec, f.port_td), *rc, "{via:?} {spec:?}");
        }
    }
    let tcp_text = &expected[0].1;
    for n in 0..backlog {
        assert_eq!(&f.message(&f.me), tcp_text, "backlog message {n}");
    }
    for round in 0..rounds {
        for ((via, spec), (_, message)) in rows.iter().zip(&expected) {
            if message != "none" {
                assert_eq!(
                    &f.message(&f.me),
                    message,
                    "round {round}: {via:?} {spec:?}"
                );
            }
        }
    }
    assert_eq!(f.message(&f.me), "none");
    // SAFETY: our reference; the messages that shared it are gone.
    unsafe { (f.api.free_binary)(big) };
}

/// Threads that send terms at once to an owner with a deep backlog (each built into the log
/// under the mailbox's lock, in turns): every term arrives once, each thread's in the order it
/// sent them.
#[test]
fn threads_sending_into_a_deep_backlog_keep_their_order() {
    let Some(f) = Fixture::new() else { return };
    let (output_term, port_td) = (f.api.output_term, f.port_td);
    let (threads, each) = (4i64, 12_000i64);
    std::thread::scope(|scope| {
        for thread in 0..threads {
            scope.spawn(move || {
                for n in 0..each {
                    let mut spec = [
                        ERL_DRV_INT,
                        thread as ErlDrvTermData,
                        ERL_DRV_INT,
                        n as ErlDrvTermData,
                        ERL_DRV_TUPLE,
                        2,
                    ];
                    // SAFETY: a spec of six words without pointers, from a live port.
                    let sent = unsafe { output_term(port_td, spec.as_mut_ptr(), 6) };
                    assert_eq!(sent, 1);
                }
            });
        }
    });
    let mut next = vec![0i64; threads as usize];
    while let Some(message) = f.me.receive(Some(Duration::ZERO)) {
        let Term::Tuple(items) = Term::from(message) else {
            panic!("not a tuple")
        };
        let [Term::Int(thread), Term::Int(n)] = items[..] else {
            panic!("not {{Thread, N}}: {items:?}")
        };
        assert_eq!(
            n, next[thread as usize],
            "thread {thread}'s terms out of order"
        );
        next[thread as usize] += 1;
    }
    assert_eq!(next, vec![each; threads as usize], "terms lost");
}
