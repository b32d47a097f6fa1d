//! `/proc/PID/...` names, and the process-identity files whose contents ptnix
//! rewrites for programs it started through their loader.
//!
//! The kernel ran the loader (`LOADER --argv0 NAME PROGRAM ARGS`), so it shows the
//! loader where a real `/nix` would show the program: in `cmdline` (the argument
//! strings the kernel copied at exec) and in the task name (`comm`, also in `stat` and
//! `status`), which fs/exec.c sets from the filename execve was given:
//! `__set_task_comm(me, kbasename(bprm->filename), true)`.

use crate::path::parse_decimal;

/// Whose `/proc` directory a path names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// `self` or `thread-self`: the process that makes the call.
    Caller,
    Pid(u64),
}

/// A file directly under a process's (or one of its threads') `/proc` directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcFile<'a> {
    pub owner: Owner,
    pub file: &'a [u8],
}

/// Parses `/proc/(self|thread-self|N)[/task/T]/FILE`.
pub fn parse(path: &[u8]) -> Option<ProcFile<'_>> {
    let rest = path.strip_prefix(b"/proc/")?;
    let parts: Vec<&[u8]> = rest.split(|&b| b == b'/').collect();
    let (who, file) = match parts.as_slice() {
        [w, f] => (*w, *f),
        [w, b"task", t, f] if parse_decimal(t).is_some() => (*w, *f),
        _ => return None,
    };
    let owner = match who {
        b"self" | b"thread-self" => Owner::Caller,
        n => Owner::Pid(parse_decimal(n)?),
    };
    (!file.is_empty()).then_some(ProcFile { owner, file })
}

/// include/linux/sched.h: `TASK_COMM_LEN 16`, with the NUL: a task name keeps at most
/// 15 bytes of the program's name.
pub const COMM_MAX: usize = 15;

/// The task name the kernel gives a process that execs `filename`.
pub fn comm_of(filename: &[u8]) -> Vec<u8> {
    let base = match memchr::memrchr(b'/', filename) {
        Some(i) => &filename[i + 1..],
        None => filename,
    };
    base[..base.len().min(COMM_MAX)].to_vec()
}

/// `status` escapes the name (fs/proc/array.c, proc_task_name:
/// `seq_escape_str(m, tcomm, ESCAPE_SPACE | ESCAPE_SPECIAL, "\n\\")`): only a newline
/// and a backslash are escaped.
fn escaped(comm: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(comm.len());
    for &b in comm {
        match b {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\\' => out.extend_from_slice(b"\\\\"),
            _ => out.push(b),
        }
    }
    out
}

/// The contents of `comm`, `stat` or `status` (named by `file`) with the task name
/// `old` replaced by `new`. `None` when the file is another one, or shows another name
/// (the program renamed itself, say with `prctl(PR_SET_NAME)`).
pub fn rename_task(file: &[u8], text: &[u8], old: &[u8], new: &[u8]) -> Option<Vec<u8>> {
    match file {
        b"comm" => {
            let name = text.strip_suffix(b"\n")?;
            (name == old).then(|| [new, b"\n"].concat())
        }
        // "PID (NAME) STATE ...": the name may itself hold ") ", so it ends at the last.
        b"stat" => {
            let open = memchr::memchr(b'(', text)?;
            let close = memchr::memmem::rfind(text, b") ")?;
            (close > open && &text[open + 1..close] == old).then(|| [&text[..=open], new, &text[close..]].concat())
        }
        b"status" => {
            let line = [b"Name:\t", &escaped(old)[..], b"\n"].concat();
            let rest = text.strip_prefix(&line[..])?;
            Some([b"Name:\t", &escaped(new)[..], b"\n", rest].concat())
        }
        _ => None,
    }
}

/// The umask in a `/proc/PID/status` text ("Umask:\t0022", Linux 4.7). The task
/// name on the first line is the tracee's to choose, but the kernel escapes a newline
/// in it (`\n`): the first line that starts with "Umask:" is the kernel's.
pub fn umask(status: &[u8]) -> Option<u32> {
    let at = memchr::memmem::find(status, b"\nUmask:\t")? + 8;
    let digits = &status[at..];
    let end = memchr::memchr(b'\n', digits).unwrap_or(digits.len());
    let digits = &digits[..end];
    if digits.is_empty() || digits.len() > 4 || !digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
        return None;
    }
    Some(digits.iter().fold(0, |m, d| m * 8 + u32::from(d - b'0')))
}

/// `stat` or `status` of a process that reads its own: a snapshot taken while ptrace
/// held it stopped says `t` ("tracing stop"), where the process reading the live file
/// sees itself running (`R`). Other files are returned as they are.
pub fn running_state(file: &[u8], text: &[u8]) -> Vec<u8> {
    let mut out = text.to_vec();
    match file {
        b"stat" => {
            if let Some(close) = memchr::memmem::rfind(text, b") ") {
                if text.get(close + 2) == Some(&b't') {
                    out[close + 2] = b'R';
                }
            }
        }
        b"status" => {
            const FROM: &[u8] = b"\nState:\tt (tracing stop)\n";
            const TO: &[u8] = b"\nState:\tR (running)\n";
            if let Some(i) = memchr::memmem::find(text, FROM) {
                out = [&text[..i], TO, &text[i + FROM.len()..]].concat();
            }
        }
        _ => {}
    }
    out
}

/// The command line a program started as `loader_argv` (`LOADER [--audit OBJECT]
/// [--argv0 NAME] PROGRAM`, then its arguments) would have natively: its own argv[0] (NAME, or
/// PROGRAM for a loader without `--argv0`), then its arguments. `None` when
/// `cmdline` does not start with `loader_argv` (the program rewrote its arguments).
pub fn program_cmdline(cmdline: &[u8], loader_argv: &[Vec<u8>]) -> Option<Vec<u8>> {
    let mut rest = cmdline;
    for a in loader_argv {
        rest = rest.strip_prefix(&a[..])?.strip_prefix(b"\0")?;
    }
    // LOADER [--audit OBJECT] [--argv0 NAME] PROGRAM: NAME, else PROGRAM.
    let (program, head) = loader_argv.split_last()?;
    let mut argv0 = program;
    for pair in head.get(1..)?.chunks(2) {
        match pair {
            [flag, name] if flag == b"--argv0" => argv0 = name,
            [flag, _] if flag == b"--audit" => {}
            _ => return None,
        }
    }
    Some([&argv0[..], b"\0", rest].concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn umask_is_read_from_its_own_line() {
        assert_eq!(umask(b"Name:\tsh\nUmask:\t0022\nState:\tS\n"), Some(0o22));
        assert_eq!(umask(b"Name:\tx\nUmask:\t0777\n"), Some(0o777));
        // A task name cannot hold a newline (the kernel writes `\n`).
        assert_eq!(umask(b"Name:\tUmask:\t0000\\n\nUmask:\t0077\n"), Some(0o77));
        assert_eq!(umask(b"Name:\tx\nState:\tS\n"), None);
        assert_eq!(umask(b"Name:\tx\nUmask:\t0089\n"), None);
    }

    #[test]
    fn proc_names() {
        let f = |p: &[u8]| parse(p).map(|f| (f.owner, f.file.to_vec()));
        assert_eq!(f(b"/proc/self/cmdline"), Some((Owner::Caller, b"cmdline".to_vec())));
        assert_eq!(f(b"/proc/12/task/13/comm"), Some((Owner::Pid(12), b"comm".to_vec())));
        assert_eq!(f(b"/proc/thread-self/stat"), Some((Owner::Caller, b"stat".to_vec())));
        assert_eq!(f(b"/proc/12/task/x/comm"), None);
        assert_eq!(f(b"/proc/cmdline"), None);
        assert_eq!(f(b"/proc/12/"), None);
        assert_eq!(f(b"/home/12/comm"), None);
    }

    #[test]
    fn comm_is_the_basename_cut_to_15() {
        assert_eq!(comm_of(b"/nix/store/x-glibc/lib/ld-linux-x86-64.so.2"), b"ld-linux-x86-64");
        assert_eq!(comm_of(b"prog"), b"prog");
        assert_eq!(comm_of(b"/proc/self/exe"), b"exe");
    }

    #[test]
    fn task_name_in_each_file() {
        assert_eq!(rename_task(b"comm", b"ld-linux\n", b"ld-linux", b"bash").unwrap(), b"bash\n");
        assert_eq!(rename_task(b"comm", b"other\n", b"ld-linux", b"bash"), None);
        let stat = b"42 (ld-linux) S 1 42 42 0 -1";
        assert_eq!(rename_task(b"stat", stat, b"ld-linux", b"a) b").unwrap(), b"42 (a) b) S 1 42 42 0 -1");
        assert_eq!(rename_task(b"stat", b"42 (x) y) S 1", b"x) y", b"z").unwrap(), b"42 (z) S 1");
        let status = b"Name:\tld-linux\nUmask:\t0022\n";
        assert_eq!(rename_task(b"status", status, b"ld-linux", b"a\\b\nc").unwrap(), b"Name:\ta\\\\b\\nc\nUmask:\t0022\n");
        assert_eq!(rename_task(b"environ", status, b"ld-linux", b"x"), None);
    }

    #[test]
    fn own_state_is_running() {
        assert_eq!(running_state(b"stat", b"42 (a) b) t 1 2"), b"42 (a) b) R 1 2");
        assert_eq!(running_state(b"stat", b"42 (x) S 1"), b"42 (x) S 1");
        let st = b"Name:\tx\nUmask:\t0022\nState:\tt (tracing stop)\nTgid:\t4\n";
        assert_eq!(running_state(b"status", st), b"Name:\tx\nUmask:\t0022\nState:\tR (running)\nTgid:\t4\n");
        assert_eq!(running_state(b"comm", b"t\n"), b"t\n");
    }

    #[test]
    fn cmdline_without_the_loader() {
        let with = [b"/l".to_vec(), b"--argv0".to_vec(), b"bash".to_vec(), b"/p/bash".to_vec()];
        assert_eq!(program_cmdline(b"/l\0--argv0\0bash\0/p/bash\0-c\0x\0", &with).unwrap(), b"bash\0-c\0x\0");
        assert_eq!(program_cmdline(b"/l\0--argv0\0bash\0/p/bash\0", &with).unwrap(), b"bash\0");
        assert_eq!(program_cmdline(b"bash -c x\0", &with), None);
        let without = [b"/l".to_vec(), b"/p/bash".to_vec()];
        assert_eq!(program_cmdline(b"/l\0/p/bash\0a\0", &without).unwrap(), b"/p/bash\0a\0");
        let audited: Vec<Vec<u8>> = ["/l", "--audit", "/t/shim.so", "--argv0", "bash", "/p/bash"].iter().map(|s| s.as_bytes().to_vec()).collect();
        assert_eq!(program_cmdline(b"/l\0--audit\0/t/shim.so\0--argv0\0bash\0/p/bash\0-c\0", &audited).unwrap(), b"bash\0-c\0");
        let odd: Vec<Vec<u8>> = ["/l", "--list", "/p/bash"].iter().map(|s| s.as_bytes().to_vec()).collect();
        assert_eq!(program_cmdline(b"/l\0--list\0/p/bash\0", &odd), None);
    }
}
