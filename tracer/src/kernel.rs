//! Facts about the running kernel that change ptrace behaviour.

/// (major, minor) of the running kernel, from uname(2).
pub fn version() -> (u32, u32) {
    // SAFETY: utsname is plain old data filled by the kernel.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } != 0 {
        return (0, 0);
    }
    let release: Vec<u8> = u.release.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
    parse_release(&release)
}

fn parse_release(r: &[u8]) -> (u32, u32) {
    let mut parts = r.split(|&b| b == b'.').map(|p| {
        p.iter().take_while(|b| b.is_ascii_digit()).fold(0u32, |n, d| n.saturating_mul(10).saturating_add(u32::from(d - b'0')))
    });
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// Whether the running kernel is at least `major.minor`.
pub fn at_least(major: u32, minor: u32) -> bool {
    version() >= (major, minor)
}

/// Before Linux 4.8 the PTRACE_EVENT_SECCOMP stop came *before* the syscall-entry
/// stop, so a tracer that resumes a seccomp stop with PTRACE_SYSCALL sees an entry stop
/// and only then the exit stop. Since 4.8 (commit 93e35efb8de4, "x86/ptrace: run seccomp
/// after ptrace") the seccomp stop comes after the entry stop, and PTRACE_SYSCALL from a
/// seccomp stop leads straight to the exit stop. CentOS 7 runs 3.10.
pub fn seccomp_stop_precedes_entry_stop() -> bool {
    version() < (4, 8)
}

#[cfg(test)]
mod tests {
    #[test]
    fn release_parsing() {
        assert_eq!(super::parse_release(b"3.10.0-1160.el7.x86_64"), (3, 10));
        assert_eq!(super::parse_release(b"6.18.44-fc"), (6, 18));
        assert_eq!(super::parse_release(b"4.8"), (4, 8));
    }
}
