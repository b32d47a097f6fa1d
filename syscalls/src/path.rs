//! Byte-string path helpers. Paths are bytes, never UTF-8 (a Linux file name is any
//! sequence of bytes other than `/` and NUL).

/// Longest path the kernel accepts, including the terminating NUL (`PATH_MAX`).
pub const PATH_MAX: usize = 4096;
/// Longest single component (`NAME_MAX`).
pub const NAME_MAX: usize = 255;
/// `MAXSYMLINKS` in fs/namei.c: "the maximum number of symlinks that may be followed
/// in one path resolution" before ELOOP.
pub const MAX_SYMLINKS: u32 = 40;

/// Iterates the non-empty components of `path` (`a//b/` yields `a`, `b`).
pub fn components(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    path.split(|&b| b == b'/').filter(|c| !c.is_empty())
}

/// True when `prefix` is `path` or a directory above it, compared component-wise:
/// `/nix` is a prefix of `/nix/store` but not of `/nixos`.
pub fn has_prefix(path: &[u8], prefix: &[u8]) -> bool {
    if prefix == b"/" {
        return path.first() == Some(&b'/');
    }
    path.starts_with(prefix) && (path.len() == prefix.len() || path[prefix.len()] == b'/')
}

/// Appends component `name` to the absolute canonical path `dir`.
pub fn push(dir: &mut Vec<u8>, name: &[u8]) {
    if dir.last() != Some(&b'/') {
        dir.push(b'/');
    }
    dir.extend_from_slice(name);
}

/// Removes the last component of an absolute canonical path; `/` stays `/`.
pub fn pop(dir: &mut Vec<u8>) {
    match memchr::memrchr(b'/', dir) {
        Some(0) | None => dir.truncate(1),
        Some(i) => dir.truncate(i),
    }
}

/// Parses a decimal number made only of ASCII digits (a `/proc` pid or fd name).
pub fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_is_component_wise() {
        assert!(has_prefix(b"/nix/store", b"/nix"));
        assert!(has_prefix(b"/nix", b"/nix"));
        assert!(!has_prefix(b"/nixos", b"/nix"));
        assert!(has_prefix(b"/anything", b"/"));
        assert!(!has_prefix(b"rel", b"/"));
    }

    #[test]
    fn push_pop() {
        let mut p = b"/".to_vec();
        push(&mut p, b"a");
        push(&mut p, b"b");
        assert_eq!(p, b"/a/b");
        pop(&mut p);
        assert_eq!(p, b"/a");
        pop(&mut p);
        assert_eq!(p, b"/");
        pop(&mut p);
        assert_eq!(p, b"/");
    }

    #[test]
    fn components_skip_empty() {
        let c: Vec<&[u8]> = components(b"//a///b/").collect();
        assert_eq!(c, vec![&b"a"[..], &b"b"[..]]);
    }

    #[test]
    fn decimal() {
        assert_eq!(parse_decimal(b"123"), Some(123));
        assert_eq!(parse_decimal(b"12a"), None);
        assert_eq!(parse_decimal(b""), None);
    }
}
