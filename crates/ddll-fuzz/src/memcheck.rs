//! `--valgrind`: the isolated driver's host runs under valgrind's memcheck, which ends it at
//! the first invalid read or write, use of uninitialised memory or bad free, with the exit
//! status [`ERROR_EXIT`]: the driver's ports exit with `{driver_crashed, {exit, 86}}`, like
//! any crash, at the operation that was running. memcheck's report (XML, one file per host)
//! says what and where: the finding is the error's kind at the innermost frame in the driver.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The host's exit status when memcheck reports an error (`--error-exitcode`).
pub const ERROR_EXIT: i32 = 86;

/// The crash `Why` that an error reported by memcheck shows, as Erlang prints it.
pub fn crash_why() -> String {
    format!("{{exit,{ERROR_EXIT}}}")
}

/// Whether valgrind can be started.
pub fn available() -> Result<(), String> {
    match std::process::Command::new("valgrind")
        .arg("--version")
        .output()
    {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "valgrind --version failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Err(format!("--valgrind needs valgrind installed: {e}")),
    }
}

/// The command that starts a host under memcheck: its report goes to standard error (the
/// replay's `ddll script --isolate --valgrind`) or, with `xml_dir`, to one XML file per host
/// there and nowhere else (the fuzzer's).
pub fn launcher_prefix(xml_dir: Option<&Path>) -> Vec<OsString> {
    let mut args: Vec<OsString> = [
        "valgrind",
        "--tool=memcheck",
        "-q",
        "--leak-check=no",
        // In XML mode memcheck checks leaks at exit whatever `--leak-check` says: a host
        // that exits while a thread still holds a block then "possibly lost" it, a finding
        // that depends on timing (seen under load). Leaks are not what the fuzzer looks for.
        "--show-leak-kinds=none",
        "--errors-for-leak-kinds=none",
        "--exit-on-first-error=yes",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    args.push(format!("--error-exitcode={ERROR_EXIT}").into());
    if let Some(dir) = xml_dir {
        args.push("--xml=yes".into());
        let mut file = OsString::from("--xml-file=");
        file.push(dir.join("memcheck.%p.xml"));
        args.push(file);
        args.push("--log-file=/dev/null".into());
    }
    args
}

/// One frame of a memcheck stack.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frame {
    pub ip: String,
    pub obj: String,
    pub function: String,
    pub file: String,
    pub line: String,
}

impl Frame {
    /// `function (file:line)`, or what of it is known.
    pub fn describe(&self) -> String {
        let name = if self.function.is_empty() {
            self.ip.as_str()
        } else {
            self.function.as_str()
        };
        if self.file.is_empty() {
            let obj = Path::new(&self.obj)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            format!("{name} ({obj})")
        } else {
            format!("{name} ({}:{})", self.file, self.line)
        }
    }
}

/// An error memcheck reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemError {
    /// memcheck's kind: `InvalidRead`, `InvalidWrite`, `UninitCondition`, `UninitValue`,
    /// `SyscallParam`, `InvalidFree`, ...
    pub kind: String,
    /// What memcheck says, e.g. `Invalid read of size 1`.
    pub what: String,
    /// The error's stack, innermost first.
    pub stack: Vec<Frame>,
    /// The index in `stack` of the innermost frame in the driver's library (else 0).
    pub place: usize,
    /// The auxiliary lines (`Address ... is 0 bytes after a block of size 3 alloc'd`).
    pub aux: Vec<String>,
}

impl MemError {
    /// The place that makes errors the same finding: the innermost frame in the driver.
    pub fn frame(&self) -> String {
        self.stack
            .get(self.place)
            .map(Frame::describe)
            .unwrap_or_else(|| "?".to_owned())
    }

    /// The function of that frame (or its address), for a file name.
    pub fn function(&self) -> String {
        self.stack
            .get(self.place)
            .map(|f| {
                if f.function.is_empty() {
                    f.ip.clone()
                } else {
                    f.function.clone()
                }
            })
            .unwrap_or_default()
    }
}

/// The folder of the hosts' XML reports.
#[derive(Debug)]
pub struct Reports {
    pub dir: PathBuf,
    /// The driver's library, whose frames are the place of an error.
    library: PathBuf,
}

impl Reports {
    pub fn new(dir: PathBuf, library: PathBuf) -> Reports {
        Reports { dir, library }
    }

    /// The errors in the reports written so far, each report with an error removed (a host
    /// ends at its first error, so its report is complete once the host is gone).
    pub fn take(&self) -> Vec<MemError> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut errors = Vec::new();
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            if let Some(error) = parse(&text, &self.library) {
                errors.push(error);
                let _ = std::fs::remove_file(&path);
            } else if text.contains("</valgrindoutput>") {
                // A host that ended without an error.
                let _ = std::fs::remove_file(&path);
            }
        }
        errors
    }
}

/// The text between `<tag>` and `</tag>` in `text` from `from`: (text, end).
fn element<'a>(text: &'a str, tag: &str, from: usize) -> Option<(&'a str, usize)> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = text[from..].find(&open)? + from + open.len();
    let end = text[start..].find(&close)? + start;
    Some((&text[start..end], end + close.len()))
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

fn field(block: &str, tag: &str) -> String {
    element(block, tag, 0)
        .map(|(t, _)| unescape(t.trim()))
        .unwrap_or_default()
}

/// The first `<error>` of a memcheck XML report, its place the innermost frame in `library`.
pub fn parse(text: &str, library: &Path) -> Option<MemError> {
    let (error, _) = element(text, "error", 0)?;
    let kind = field(error, "kind");
    let what = match element(error, "what", 0) {
        Some((w, _)) => unescape(w.trim()),
        None => element(error, "xwhat", 0)
            .map(|(x, _)| field(x, "text"))
            .unwrap_or_default(),
    };
    let mut stack = Vec::new();
    let mut rest_from = 0;
    if let Some((frames, end)) = element(error, "stack", 0) {
        rest_from = end;
        let mut at = 0;
        while let Some((frame, end)) = element(frames, "frame", at) {
            stack.push(Frame {
                ip: field(frame, "ip"),
                obj: field(frame, "obj"),
                function: field(frame, "fn"),
                file: field(frame, "file"),
                line: field(frame, "line"),
            });
            at = end;
        }
    }
    let mut aux = Vec::new();
    let mut at = rest_from;
    while let Some((line, end)) = element(error, "auxwhat", at) {
        aux.push(unescape(line.trim()));
        at = end;
    }
    let place = stack
        .iter()
        .position(|f| Path::new(&f.obj) == library)
        .unwrap_or(0);
    Some(MemError {
        kind,
        what,
        stack,
        place,
        aux,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "<valgrindoutput>\n<error>\n  <unique>0x0</unique>\n  \
        <kind>InvalidRead</kind>\n  <what>Invalid read of size 1</what>\n  <stack>\n    \
        <frame>\n      <ip>0x4845D2A</ip>\n      <obj>/usr/lib/libc.so.6</obj>\n      \
        <fn>memcpy</fn>\n    </frame>\n    <frame>\n      <ip>0x109157</ip>\n      \
        <obj>/d/vg_drv.so</obj>\n      <fn>vg_output</fn>\n      <file>vg_drv.c</file>\n      \
        <line>42</line>\n    </frame>\n  </stack>\n  <auxwhat>Address 0x1 is 0 bytes after \
        a block of size 3 alloc&apos;d</auxwhat>\n  <stack>\n    <frame>\n      \
        <fn>malloc</fn>\n    </frame>\n  </stack>\n</error>\n";

    #[test]
    fn the_place_is_the_innermost_frame_in_the_driver() {
        let e = parse(REPORT, Path::new("/d/vg_drv.so")).expect("an error");
        assert_eq!(e.kind, "InvalidRead");
        assert_eq!(e.what, "Invalid read of size 1");
        assert_eq!(e.stack.len(), 2, "only the error's own stack: {e:?}");
        assert_eq!(e.frame(), "vg_output (vg_drv.c:42)");
        assert_eq!(e.function(), "vg_output");
        assert_eq!(
            e.aux,
            ["Address 0x1 is 0 bytes after a block of size 3 alloc'd"]
        );
        // Another library: the innermost frame.
        let other = parse(REPORT, Path::new("/d/other.so")).expect("an error");
        assert_eq!(other.frame(), "memcpy (libc.so.6)");
        assert_eq!(
            parse("<valgrindoutput></valgrindoutput>", Path::new("/x")),
            None
        );
    }
}
