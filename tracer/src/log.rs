//! `ptnix run -v`: each translation, strace-style, to stderr or `--log FILE`.
//!
//! `-v` logs what ptnix changed (rewritten paths, exec plans, refused or answered
//! syscalls); `-vv` also logs the traced syscalls it left alone.

use std::io::Write;

pub struct Logger {
    out: Box<dyn Write + Send>,
    pub level: u8,
}

impl Logger {
    pub fn new(level: u8, out: Box<dyn Write + Send>) -> Logger {
        Logger { out, level }
    }

    pub fn line(&mut self, pid: i32, msg: std::fmt::Arguments<'_>) {
        let _ = writeln!(self.out, "ptnix: [{pid}] {msg}");
    }
}

/// A path for a log line: quoted, printable ASCII as is, other bytes as \xNN (paths
/// are bytes, not UTF-8).
pub fn quote(p: &[u8]) -> String {
    let mut s = String::with_capacity(p.len() + 2);
    s.push('"');
    for &b in p {
        match b {
            b'"' | b'\\' => {
                s.push('\\');
                s.push(b as char);
            }
            0x20..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s.push('"');
    s
}

/// `-ENOENT` for a negative return value, the number otherwise.
pub fn ret(v: i64) -> String {
    if v < 0 {
        let e = std::io::Error::from_raw_os_error(-v as i32).to_string();
        let e = e.split(" (os error").next().unwrap_or(&e).to_string();
        format!("-1 ({e})")
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn quoting() {
        assert_eq!(super::quote(b"/nix/a b"), "\"/nix/a b\"");
        assert_eq!(super::quote(b"\xff\"x"), "\"\\xff\\\"x\"");
        assert_eq!(super::ret(-2), "-1 (No such file or directory)");
        assert_eq!(super::ret(5), "5");
    }
}
