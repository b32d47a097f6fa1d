//! `struct sockaddr_un` in and out of the tracee.
//!
//! unix(7): `sun_family` (2 bytes) then `sun_path[108]`. A pathname socket's path is
//! NUL-terminated or runs to `addrlen`; an abstract socket starts with a NUL byte and
//! has no filesystem path (ptnix leaves it alone).

/// `sizeof(sun_path)`.
pub const SUN_PATH_MAX: usize = 108;
const SUN_PATH_OFFSET: usize = 2;

/// The filesystem path of a `sockaddr_un`, if `raw` (the `addrlen` bytes the tracee
/// passed) is one: AF_UNIX, not abstract, not unnamed.
pub fn unix_path(raw: &[u8]) -> Option<&[u8]> {
    if raw.len() <= SUN_PATH_OFFSET {
        return None;
    }
    let family = u16::from_ne_bytes([raw[0], raw[1]]);
    if family != libc::AF_UNIX as u16 {
        return None;
    }
    let p = &raw[SUN_PATH_OFFSET..raw.len().min(SUN_PATH_OFFSET + SUN_PATH_MAX)];
    if p.first().copied().unwrap_or(0) == 0 {
        return None;
    }
    let end = memchr::memchr(0, p).unwrap_or(p.len());
    Some(&p[..end])
}

/// Builds a `sockaddr_un` for `path`, NUL-terminated, and its `addrlen`; `None` when
/// the path does not fit in `sun_path`.
pub fn build(path: &[u8]) -> Option<Vec<u8>> {
    if path.len() >= SUN_PATH_MAX {
        return None;
    }
    let mut v = (libc::AF_UNIX as u16).to_ne_bytes().to_vec();
    v.extend_from_slice(path);
    v.push(0);
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let a = build(b"/nix/var/nix/daemon-socket/socket").unwrap();
        assert_eq!(unix_path(&a), Some(&b"/nix/var/nix/daemon-socket/socket"[..]));
        assert!(build(&[b'a'; 108]).is_none());
    }

    #[test]
    fn not_a_path() {
        let mut abs = build(b"x").unwrap();
        abs[2] = 0;
        assert_eq!(unix_path(&abs), None);
        assert_eq!(unix_path(&[1, 0]), None);
        let inet = [2u8, 0, 1, 2, 3, 4];
        assert_eq!(unix_path(&inet), None);
        // Not NUL-terminated: runs to addrlen.
        let mut raw = (libc::AF_UNIX as u16).to_ne_bytes().to_vec();
        raw.extend_from_slice(b"/tmp/s");
        assert_eq!(unix_path(&raw), Some(&b"/tmp/s"[..]));
    }
}
