//! `#!` lines, parsed exactly as fs/binfmt_script.c (Linux 5.1+) parses them.
//!
//! The kernel reads the first BINPRM_BUF_SIZE (256) bytes of the file. The line ends
//! at the first `\n`; trailing spaces and tabs are dropped; the interpreter is the
//! first word after `#!` and optional spaces/tabs; everything after the next run of
//! spaces/tabs is one single optional argument (spaces inside it are kept). If no `\n`
//! comes within the buffer, the line is cut at the buffer's end, but "if there is no
//! later space/tab/NUL we must assume the interpreter path is truncated" and the exec
//! fails with ENOEXEC. Bytes are bytes: a NUL ends a string, as in C.

/// BINPRM_BUF_SIZE since Linux 5.1 (128 before).
pub const BINPRM_BUF_SIZE: usize = 256;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shebang {
    pub interpreter: Vec<u8>,
    pub arg: Option<Vec<u8>>,
}

/// Why a `#!` file cannot be executed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShebangError {
    /// Not a `#!` file at all: another binary format decides.
    NotScript,
    /// A `#!` file the kernel refuses with ENOEXEC (no interpreter name, or one cut
    /// off by the end of the buffer).
    NoExec,
}

fn spacetab(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

/// C-string view: up to the first NUL.
fn until_nul(s: &[u8]) -> &[u8] {
    &s[..memchr::memchr(0, s).unwrap_or(s.len())]
}

/// Parses the start of a file (`head`, at least as much as the kernel would read).
pub fn parse(head: &[u8]) -> Result<Shebang, ShebangError> {
    let buf = &head[..head.len().min(BINPRM_BUF_SIZE)];
    if buf.len() < 2 || &buf[..2] != b"#!" {
        return Err(ShebangError::NotScript);
    }
    // The kernel's buffer is zero-filled past the end of a short file.
    let mut line: Vec<u8> = buf.to_vec();
    line.resize(BINPRM_BUF_SIZE, 0);
    let buf_end = BINPRM_BUF_SIZE - 1;
    let end = match memchr::memchr(b'\n', &line) {
        Some(nl) => nl,
        None => {
            let Some(first) = (2..=buf_end).find(|&i| !spacetab(line[i])) else {
                return Err(ShebangError::NoExec); // the whole buffer is spaces/tabs
            };
            if !(first..=buf_end).any(|i| spacetab(line[i]) || line[i] == 0) {
                return Err(ShebangError::NoExec); // the interpreter path is truncated
            }
            buf_end
        }
    };
    line.truncate(end);
    while line.last().is_some_and(|&c| spacetab(c)) {
        line.pop();
    }
    let line = until_nul(&line);
    let mut i = 2;
    while i < line.len() && spacetab(line[i]) {
        i += 1;
    }
    if i >= line.len() {
        return Err(ShebangError::NoExec); // no interpreter name found
    }
    let name_start = i;
    while i < line.len() && !spacetab(line[i]) {
        i += 1;
    }
    let interpreter = line[name_start..i].to_vec();
    while i < line.len() && spacetab(line[i]) {
        i += 1;
    }
    let arg = (i < line.len()).then(|| line[i..].to_vec());
    Ok(Shebang { interpreter, arg })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(head: &[u8]) -> (Vec<u8>, Option<Vec<u8>>) {
        let s = parse(head).unwrap();
        (s.interpreter, s.arg)
    }

    #[test]
    fn common_forms() {
        assert_eq!(ok(b"#!/bin/sh\necho"), (b"/bin/sh".to_vec(), None));
        assert_eq!(ok(b"#! /bin/sh -e \n"), (b"/bin/sh".to_vec(), Some(b"-e".to_vec())));
        assert_eq!(
            ok(b"#!/nix/store/x/bin/env bash -x\n"),
            (b"/nix/store/x/bin/env".to_vec(), Some(b"bash -x".to_vec()))
        );
        assert_eq!(ok(b"#!\t/bin/sh\t\t-a\t-b\t\n"), (b"/bin/sh".to_vec(), Some(b"-a\t-b".to_vec())));
        assert_eq!(ok(b"#!/bin/sh"), (b"/bin/sh".to_vec(), None));
    }

    #[test]
    fn refusals() {
        assert_eq!(parse(b"\x7fELF"), Err(ShebangError::NotScript));
        assert_eq!(parse(b"#"), Err(ShebangError::NotScript));
        assert_eq!(parse(b"#!\n"), Err(ShebangError::NoExec));
        assert_eq!(parse(b"#!   \t \n"), Err(ShebangError::NoExec));
    }

    #[test]
    fn long_lines() {
        // An interpreter name that runs past the buffer: truncated, ENOEXEC.
        let mut long = b"#!/".to_vec();
        long.extend(std::iter::repeat(b'a').take(300));
        assert_eq!(parse(&long), Err(ShebangError::NoExec));
        // A long argument is cut at the buffer's end.
        let mut arg = b"#!/bin/sh ".to_vec();
        arg.extend(std::iter::repeat(b'b').take(300));
        let (i, a) = ok(&arg);
        assert_eq!(i, b"/bin/sh");
        assert_eq!(a.unwrap().len(), BINPRM_BUF_SIZE - 1 - 10);
    }

    #[test]
    fn nul_ends_strings() {
        assert_eq!(ok(b"#!/bin/sh\0junk\n"), (b"/bin/sh".to_vec(), None));
        assert_eq!(ok(b"#!/bin/sh -e\0x\n"), (b"/bin/sh".to_vec(), Some(b"-e".to_vec())));
    }
}
