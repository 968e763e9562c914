//! format_error texts (taken from OTP 25 `erl`), option parsing and the convenience table.

use ddll_core::convenience::{Call, Convenience, ConvenienceError, Step};
use ddll_core::term::Term;
use ddll_core::{
    format_error, full_path, DdllError, ErrorTerm, LoadError, LoadOptions, MonitorRef,
    Notification, Pending, Reply, Status, Tag, UnloadOptions, UpDown,
};

fn check_format(term: ErrorTerm<'_>, expected: Option<&str>) {
    let system = |code: i32| (code == -11).then(|| "libfoo.so: cannot open".to_owned());
    let got = format_error(term, &system).ok();
    assert_eq!(got.as_deref(), expected, "{term:?}");
}

#[test]
fn format_error_texts() {
    use ErrorTerm::{Atom, OpenError};
    let cases: &[(ErrorTerm<'_>, Option<&str>)] = &[
        (
            Atom("inconsistent"),
            Some("Driver name and/or driver options are inconsistent with currently loaded driver"),
        ),
        (
            Atom("linked_in_driver"),
            Some("Driver is statically linked and cannot be loaded/unloaded"),
        ),
        (
            Atom("permanent"),
            Some("DDLL driver is permanent an cannot be unloaded/loaded"),
        ),
        (Atom("not_loaded"), Some("DDLL driver is not loaded")),
        (
            Atom("not_loaded_by_this_process"),
            Some("DDLL driver was not loaded by this process"),
        ),
        (
            Atom("not_pending"),
            Some("DDLL load not pending for this driver name"),
        ),
        (
            Atom("already_loaded"),
            Some("DDLL driver is already loaded successfully"),
        ),
        (
            Atom("pending_reload"),
            Some("Driver reloading is already pending"),
        ),
        (
            Atom("pending_process"),
            Some("Driver is loaded by others when attempting option {reload, pending_driver}"),
        ),
        (
            Atom("load_cancelled"),
            Some("Loading was cancelled from other process"),
        ),
        (Atom("no_error"), Some("No error")),
        (
            Atom("no_driver_init"),
            Some("No driver init in dynamic library"),
        ),
        (Atom("driver_init_failed"), Some("Driver init failed")),
        (Atom("bad_driver_name"), Some("Bad driver name")),
        (Atom("driver_name_to_long"), Some("Driver name to long")),
        (
            Atom("driver_incorrect_version"),
            Some("Driver compiled with incorrect version of erl_driver.h"),
        ),
        (
            Atom("no_ddll_available"),
            Some("DDLL functionality not available on this platform"),
        ),
        (
            Atom("unspecified_error"),
            Some("Unspecified dynamic library error"),
        ),
        (
            Atom("symbol_not_found"),
            Some("Symbol not found in dynamic library"),
        ),
        (Atom("foo"), None),
        (OpenError(-1), Some("No driver init in dynamic library")),
        (OpenError(-8), Some("Symbol not found in dynamic library")),
        (OpenError(0), Some("No error")),
        (OpenError(-9), Some("Unspecified error")),
        (OpenError(1), Some("Unspecified error")),
        (OpenError(100_000_000_000), Some("Unspecified error")),
        (OpenError(-10), Some("Unknown dlload error")),
        (OpenError(-11), Some("libfoo.so: cannot open")),
        (OpenError(-100), Some("Unknown dlload error")),
    ];
    for (term, expected) in cases {
        check_format(*term, *expected);
    }
}

#[test]
fn error_atoms_and_codes() {
    for code in -12..=2 {
        let e = LoadError::from_code(code);
        assert_eq!(e.to_code(), code);
        assert_eq!(LoadError::OpenError(code).normalized(), e);
        let atom = e.atom();
        assert_eq!(atom.is_some(), (-8..=0).contains(&code), "code {code}");
    }
    assert_eq!(
        DdllError::Load(LoadError::BadDriverName).atom(),
        Some("bad_driver_name")
    );
    assert_eq!(DdllError::Load(LoadError::OpenError(-10)).atom(), None);
    assert_eq!(
        DdllError::NotLoadedByThisProcess.atom(),
        Some("not_loaded_by_this_process")
    );
    assert_eq!(
        DdllError::Permanent.to_string(),
        "DDLL driver is permanent an cannot be unloaded/loaded"
    );
    assert_eq!(
        DdllError::Load(LoadError::OpenError(-20)).to_string(),
        "Unknown dlload error"
    );
}

#[test]
fn full_path_strips_trailing_separators() {
    for (dir, name, expected) in [
        ("/lib/a", "da", "/lib/a/da"),
        ("/lib/a/", "da", "/lib/a/da"),
        ("/lib/a//\\", "da", "/lib/a/da"),
        ("", "da", "/da"),
        ("/", "da", "/da"),
        ("rel", "x", "rel/x"),
    ] {
        assert_eq!(full_path(dir, name), expected);
    }
}

fn tuple<'a>(a: &'a str, b: Term<'a>) -> Term<'a> {
    Term::Tuple(vec![Term::Atom(a), b])
}

#[test]
fn load_option_parsing() {
    use Term::{Atom, List, Other};
    let kill = tuple("driver_options", List(vec![Atom("kill_ports")]));
    let cases: Vec<(Term<'_>, Result<LoadOptions, DdllError>)> = vec![
        (List(vec![]), Ok(LoadOptions::default())),
        (
            List(vec![
                kill.clone(),
                tuple("monitor", Atom("pending")),
                tuple("reload", Atom("pending_driver")),
            ]),
            Ok(LoadOptions {
                kill_ports: true,
                monitor: Some(Pending::Pending),
                reload: Some(Pending::PendingDriver),
            }),
        ),
        (
            List(vec![
                tuple("monitor", Atom("pending")),
                tuple("monitor", Atom("pending_driver")),
            ]),
            Ok(LoadOptions {
                monitor: Some(Pending::PendingDriver),
                ..LoadOptions::default()
            }),
        ),
        (
            List(vec![tuple("driver_options", List(vec![]))]),
            Ok(LoadOptions::default()),
        ),
        (
            List(vec![tuple("driver_options", List(vec![Atom("other")]))]),
            Err(DdllError::BadArg),
        ),
        (
            List(vec![tuple("driver_options", Other)]),
            Err(DdllError::BadArg),
        ),
        (
            List(vec![tuple("monitor", Atom("always"))]),
            Err(DdllError::BadArg),
        ),
        (
            List(vec![tuple("bogus", Atom("pending"))]),
            Err(DdllError::BadArg),
        ),
        (List(vec![Atom("kill_ports")]), Err(DdllError::BadArg)),
        (
            List(vec![Term::Tuple(vec![
                Atom("monitor"),
                Atom("pending"),
                Atom("x"),
            ])]),
            Err(DdllError::BadArg),
        ),
        (Other, Err(DdllError::BadArg)),
    ];
    for (term, expected) in cases {
        assert_eq!(LoadOptions::parse(&term), expected, "{term:?}");
        if let Ok(opts) = expected {
            assert_eq!(LoadOptions::parse(&List(opts.to_terms())), Ok(opts));
        }
    }
}

#[test]
fn unload_option_parsing() {
    use Term::{Atom, List, Other};
    let cases: Vec<(Term<'_>, Result<UnloadOptions, DdllError>)> = vec![
        (List(vec![]), Ok(UnloadOptions::default())),
        (
            List(vec![
                tuple("monitor", Atom("pending_driver")),
                Atom("kill_ports"),
            ]),
            Ok(UnloadOptions {
                kill_ports: true,
                monitor: Some(Pending::PendingDriver),
            }),
        ),
        (
            List(vec![tuple(
                "driver_options",
                List(vec![Atom("kill_ports")]),
            )]),
            Err(DdllError::BadArg),
        ),
        (List(vec![Atom("pending")]), Err(DdllError::BadArg)),
        (Other, Err(DdllError::BadArg)),
    ];
    for (term, expected) in cases {
        assert_eq!(UnloadOptions::parse(&term), expected, "{term:?}");
    }
}

#[test]
fn convenience_options_and_results() {
    let pd = Some(Pending::PendingDriver);
    let load = |kill_ports, reload| {
        Call::TryLoad(LoadOptions {
            kill_ports,
            monitor: pd,
            reload,
        })
    };
    assert_eq!(Convenience::Load.call(), load(false, None));
    assert_eq!(Convenience::LoadDriver.call(), load(true, None));
    assert_eq!(Convenience::Reload.call(), load(false, pd));
    assert_eq!(Convenience::ReloadDriver.call(), load(true, pd));
    assert_eq!(
        Convenience::Unload.call(),
        Call::TryUnload(UnloadOptions::default())
    );
    assert_eq!(
        Convenience::UnloadDriver.call(),
        Call::TryUnload(UnloadOptions {
            kill_ports: true,
            monitor: pd
        })
    );

    let bad_name = Step::Done(Err(ConvenienceError::Call(DdllError::Load(
        LoadError::BadDriverName,
    ))));
    assert_eq!(
        Convenience::Load.first_step(Err(DdllError::Inconsistent)),
        bad_name
    );
    assert_eq!(
        Convenience::Unload.first_step(Err(DdllError::NotLoaded)),
        Step::Done(Err(ConvenienceError::Call(DdllError::NotLoaded)))
    );
    let r = MonitorRef(7);
    let pending = Ok(Reply {
        status: Status::PendingDriver,
        monitor: Some(r),
    });
    assert_eq!(Convenience::LoadDriver.first_step(pending), Step::Wait(r));
    let done = Ok(Reply {
        status: Status::PendingProcess,
        monitor: None,
    });
    assert_eq!(
        Convenience::UnloadDriver.first_step(done),
        Step::Done(Ok(()))
    );

    let msg = |kind, tag| Notification {
        to: 1u8,
        kind,
        monitor: r,
        driver: "da".into(),
        tag,
        immediate: false,
    };
    let cases = [
        (Convenience::Load, UpDown::Up, Tag::Loaded, Some(Ok(()))),
        (
            Convenience::Load,
            UpDown::Down,
            Tag::LoadCancelled,
            Some(Err(ConvenienceError::LoadCancelled)),
        ),
        (
            Convenience::Reload,
            UpDown::Up,
            Tag::Permanent,
            Some(Err(ConvenienceError::Permanent)),
        ),
        (
            Convenience::Reload,
            UpDown::Down,
            Tag::LoadFailure(LoadError::NoDriverInit),
            Some(Err(ConvenienceError::LoadFailure(LoadError::NoDriverInit))),
        ),
        (Convenience::Load, UpDown::Down, Tag::Unloaded, None),
        (
            Convenience::UnloadDriver,
            UpDown::Down,
            Tag::Unloaded,
            Some(Ok(())),
        ),
        (
            Convenience::UnloadDriver,
            UpDown::Up,
            Tag::UnloadCancelled,
            Some(Ok(())),
        ),
        (
            Convenience::UnloadDriver,
            UpDown::Up,
            Tag::Permanent,
            Some(Err(ConvenienceError::Permanent)),
        ),
        (Convenience::UnloadDriver, UpDown::Up, Tag::Loaded, None),
    ];
    for (f, kind, tag, expected) in cases {
        assert_eq!(
            f.finish(&msg(kind, tag)),
            expected,
            "{f:?} {kind:?} {tag:?}"
        );
    }
}
