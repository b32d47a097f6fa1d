//! The bind table: which guest path prefix is backed by which host directory.
//!
//! `ptnix run --store DIR` is the single bind `/nix -> DIR/nix`; every other guest path
//! is the host path itself (the implicit bind `/ -> /`). Binds behave like mount points:
//! the most specific one wins, and `..` is resolved in the guest tree.

use crate::path::has_prefix;
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bind {
    pub guest: Vec<u8>,
    pub host: Vec<u8>,
}

/// A bind's guest path seen from its parent directory: the entry a listing of
/// `parent` must show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountPoint {
    pub parent: Vec<u8>,
    pub name: Vec<u8>,
    pub host: Vec<u8>,
}

impl MountPoint {
    /// The last component of the directory it is listed in (empty for `/`).
    pub fn parent_name(&self) -> &[u8] {
        self.parent.rsplit(|&c| c == b'/').next().unwrap_or_default()
    }
}

#[derive(Clone, Debug)]
pub struct Mapping {
    /// Sorted by guest path length, longest first: the first match is the most specific.
    binds: Vec<Bind>,
    /// Sorted by host path length, longest first, for host -> guest.
    by_host: Vec<Bind>,
    mount_points: Vec<MountPoint>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct BadBind(pub String);

impl fmt::Display for BadBind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks that `p` is absolute and canonical (no `.`, `..`, `//` or trailing `/`), and
/// returns it without a trailing slash (except for `/` itself).
fn canonical(p: &[u8], what: &str) -> Result<Vec<u8>, BadBind> {
    let shown = String::from_utf8_lossy(p);
    if p.first() != Some(&b'/') {
        return Err(BadBind(format!("{what} path `{shown}` is not absolute")));
    }
    let trimmed = if p.len() > 1 { p.strip_suffix(b"/").unwrap_or(p) } else { p };
    for c in trimmed.split(|&b| b == b'/').skip(1) {
        if trimmed.len() > 1 && (c.is_empty() || c == b"." || c == b"..") {
            return Err(BadBind(format!("{what} path `{shown}` is not canonical")));
        }
    }
    if trimmed.contains(&0) {
        return Err(BadBind(format!("{what} path `{shown}` contains a NUL byte")));
    }
    Ok(trimmed.to_vec())
}

impl Mapping {
    /// Builds the table from `(host, guest)` pairs. A later bind of the same guest path
    /// replaces an earlier one. Without a bind for `/`, `/` is the host's `/`.
    pub fn new<I, H, G>(binds: I) -> Result<Mapping, BadBind>
    where
        I: IntoIterator<Item = (H, G)>,
        H: AsRef<[u8]>,
        G: AsRef<[u8]>,
    {
        let mut v: Vec<Bind> = Vec::new();
        for (h, g) in binds {
            let b = Bind { host: canonical(h.as_ref(), "host")?, guest: canonical(g.as_ref(), "guest")? };
            v.retain(|old| old.guest != b.guest);
            v.push(b);
        }
        if !v.iter().any(|b| b.guest == b"/") {
            v.push(Bind { guest: b"/".to_vec(), host: b"/".to_vec() });
        }
        v.sort_by(|a, b| b.guest.len().cmp(&a.guest.len()));
        let mut by_host = v.clone();
        by_host.sort_by(|a, b| b.host.len().cmp(&a.host.len()));
        let mount_points = v
            .iter()
            .filter(|b| b.guest != b"/")
            .map(|b| {
                let mut parent = b.guest.clone();
                crate::path::pop(&mut parent);
                let name = b.guest[b.guest.iter().rposition(|&c| c == b'/').unwrap() + 1..].to_vec();
                MountPoint { parent, name, host: b.host.clone() }
            })
            .collect();
        Ok(Mapping { binds: v, by_host, mount_points })
    }

    /// The entries listings must show for the binds (one per bind but `/`).
    pub fn mount_points(&self) -> &[MountPoint] {
        &self.mount_points
    }

    /// Whether a listing of the guest directory `dir` must show a mount point.
    pub fn lists_mount_points(&self, dir: &[u8]) -> bool {
        self.mount_points.iter().any(|m| m.parent == dir)
    }

    /// Whether `name` is the last component of a directory whose listing shows a mount
    /// point (so that an open of `name` relative to some directory may be one).
    pub fn may_name_listed_dir(&self, name: &[u8]) -> bool {
        self.mount_points.iter().any(|m| m.parent_name() == name)
    }

    /// The usual ptnix table: `store_root/nix` shown at `/nix`.
    pub fn for_store(store_root: &[u8]) -> Result<Mapping, BadBind> {
        let mut host = canonical(store_root, "store")?;
        crate::path::push(&mut host, b"nix");
        Mapping::new([(host, b"/nix".to_vec())])
    }

    /// The host directory of `/nix/store` when every path below it maps by that prefix
    /// alone (no bind lies inside the store): what the in-process fast path assumes.
    pub fn plain_store(&self) -> Option<Vec<u8>> {
        if self.binds.iter().any(|b| has_prefix(&b.guest, b"/nix/store") && b.guest.len() > b"/nix/store".len()) {
            return None;
        }
        Some(self.to_host(b"/nix/store"))
    }

    /// The host directory `/nix` stands for when every path below it maps by prefix
    /// alone: `/nix` is bound itself, and nothing below it is.
    pub fn plain_nix(&self) -> Option<Vec<u8>> {
        let nix = self.binds.iter().find(|b| b.guest == b"/nix")?;
        if self.binds.iter().any(|b| has_prefix(&b.guest, b"/nix") && b.guest.len() > b"/nix".len()) {
            return None;
        }
        Some(nix.host.clone())
    }

    /// Where the guest's root is the host's own (`/` bound to `/`): the guest paths of
    /// the other binds, below and above which a host path is not the guest's.
    pub fn host_root_binds(&self) -> Option<Vec<Vec<u8>>> {
        let root = self.binds.iter().find(|b| b.guest == b"/")?;
        (root.host == b"/").then(|| self.binds.iter().filter(|b| b.guest != b"/").map(|b| b.guest.clone()).collect())
    }

    pub fn binds(&self) -> &[Bind] {
        &self.binds
    }

    /// The bind that serves absolute guest path `guest` (the root bind for anything
    /// else: a relative or empty path names no bind).
    pub fn bind_of(&self, guest: &[u8]) -> &Bind {
        let root = self.binds.last().expect("the root bind is always present");
        self.binds.iter().find(|b| has_prefix(guest, &b.guest)).unwrap_or(root)
    }

    /// Splits `guest` into the host prefix of its bind and the rest (empty or `/...`).
    fn split<'a>(&'a self, guest: &'a [u8]) -> (&'a [u8], &'a [u8]) {
        if guest.first() != Some(&b'/') {
            return (b"", guest); // not a guest path: nothing to map
        }
        let b = self.bind_of(guest);
        let rest = &guest[b.guest.len()..];
        if b.guest == b"/" {
            // `/` + "usr/lib": keep the slash that separates them.
            if b.host == b"/" {
                return (b"", guest);
            }
            return (&b.host, if guest.len() > 1 { guest } else { b"" });
        }
        (&b.host, rest)
    }

    /// Host path of absolute canonical guest path `guest`.
    pub fn to_host(&self, guest: &[u8]) -> Vec<u8> {
        let (h, rest) = self.split(guest);
        let mut out = Vec::with_capacity(h.len() + rest.len());
        out.extend_from_slice(h);
        out.extend_from_slice(rest);
        if out.is_empty() {
            out.push(b'/');
        }
        out
    }

    /// True when `to_host(guest) == host`, without allocating.
    pub fn maps_to(&self, guest: &[u8], host: &[u8]) -> bool {
        let (h, rest) = self.split(guest);
        if h.is_empty() && rest.is_empty() {
            return host == b"/";
        }
        host.len() == h.len() + rest.len() && host.starts_with(h) && host.ends_with(rest)
    }

    /// Guest path of absolute host path `host`: the inverse of [`Mapping::to_host`] for
    /// paths inside a bind. A host path no bind reaches is returned unchanged (it is
    /// not visible in the guest; there is no better name for it).
    pub fn to_guest(&self, host: &[u8]) -> Vec<u8> {
        for b in &self.by_host {
            if b.host == b"/" {
                if b.guest == b"/" {
                    return host.to_vec();
                }
                let mut g = b.guest.clone();
                if host.len() > 1 {
                    g.extend_from_slice(host);
                }
                return g;
            }
            if has_prefix(host, &b.host) {
                let rest = &host[b.host.len()..];
                if b.guest == b"/" {
                    return if rest.is_empty() { b"/".to_vec() } else { rest.to_vec() };
                }
                let mut g = b.guest.clone();
                g.extend_from_slice(rest);
                return g;
            }
        }
        host.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> Mapping {
        Mapping::for_store(b"/home/u/.local/share/nix/root").unwrap()
    }

    #[test]
    fn store_bind_maps_both_ways() {
        let m = store();
        assert_eq!(m.to_host(b"/nix/store/abc"), b"/home/u/.local/share/nix/root/nix/store/abc");
        assert_eq!(m.to_host(b"/nix"), b"/home/u/.local/share/nix/root/nix");
        assert_eq!(m.to_host(b"/nixos"), b"/nixos");
        assert_eq!(m.to_host(b"/"), b"/");
        assert_eq!(m.to_host(b"/usr/bin"), b"/usr/bin");
        assert_eq!(m.to_guest(b"/home/u/.local/share/nix/root/nix/store/abc"), b"/nix/store/abc");
        assert_eq!(m.to_guest(b"/home/u/.local/share/nix/root/nix"), b"/nix");
        assert_eq!(m.to_guest(b"/home/u/.local/share/nix/root"), b"/home/u/.local/share/nix/root");
        assert_eq!(m.to_guest(b"/usr"), b"/usr");
        assert!(m.maps_to(b"/nix/store", b"/home/u/.local/share/nix/root/nix/store"));
        assert!(m.maps_to(b"/usr", b"/usr"));
        assert!(m.maps_to(b"/", b"/"));
        assert!(!m.maps_to(b"/nix", b"/nix"));
    }

    #[test]
    fn the_store_is_plain_unless_a_bind_lies_inside_it() {
        assert_eq!(store().plain_store().unwrap(), b"/home/u/.local/share/nix/root/nix/store");
        let inside = Mapping::new([(b"/s/nix".to_vec(), b"/nix".to_vec()), (b"/data".to_vec(), b"/nix/store/x-data".to_vec())]).unwrap();
        assert_eq!(inside.plain_store(), None);
        let beside = Mapping::new([(b"/s/nix".to_vec(), b"/nix".to_vec()), (b"/data".to_vec(), b"/nix/storage".to_vec())]).unwrap();
        assert_eq!(beside.plain_store().unwrap(), b"/s/nix/store");
        let whole = Mapping::new([(b"/s/store".to_vec(), b"/nix/store".to_vec())]).unwrap();
        assert_eq!(whole.plain_store().unwrap(), b"/s/store");
    }

    #[test]
    fn all_of_nix_is_plain_unless_a_bind_lies_inside_it() {
        assert_eq!(store().plain_nix().unwrap(), b"/home/u/.local/share/nix/root/nix");
        let inside = Mapping::new([(b"/s/nix".to_vec(), b"/nix".to_vec()), (b"/data".to_vec(), b"/nix/var/x".to_vec())]).unwrap();
        assert_eq!(inside.plain_nix(), None);
        let beside = Mapping::new([(b"/s/nix".to_vec(), b"/nix".to_vec()), (b"/data".to_vec(), b"/nixos".to_vec())]).unwrap();
        assert_eq!(beside.plain_nix().unwrap(), b"/s/nix");
        assert_eq!(beside.host_root_binds().unwrap(), vec![b"/nixos".to_vec(), b"/nix".to_vec()]);
        let rootfs = Mapping::new([(b"/rootfs".to_vec(), b"/".to_vec()), (b"/s/nix".to_vec(), b"/nix".to_vec())]).unwrap();
        assert_eq!(rootfs.host_root_binds(), None);
        // The store bound alone: /nix itself is the host's.
        let store_only = Mapping::new([(b"/s/store".to_vec(), b"/nix/store".to_vec())]).unwrap();
        assert_eq!(store_only.plain_nix(), None);
    }

    /// Found by the e2e suite: readlink("") made ptnix map an empty guest path, and a
    /// panic there killed every tracee.
    #[test]
    fn non_absolute_paths_do_not_panic() {
        let m = store();
        assert_eq!(m.to_host(b""), b"/");
        assert_eq!(m.to_host(b"rel"), b"rel");
        assert!(!m.maps_to(b"", b"/x"));
    }

    #[test]
    fn rootfs_bind() {
        let m = Mapping::new([(&b"/tmp/empty"[..], &b"/"[..]), (b"/usr", b"/usr")]).unwrap();
        assert_eq!(m.to_host(b"/"), b"/tmp/empty");
        assert_eq!(m.to_host(b"/etc"), b"/tmp/empty/etc");
        assert_eq!(m.to_host(b"/usr/bin"), b"/usr/bin");
        assert_eq!(m.to_guest(b"/tmp/empty/etc"), b"/etc");
        assert_eq!(m.to_guest(b"/tmp/empty"), b"/");
        assert_eq!(m.to_guest(b"/usr/lib"), b"/usr/lib");
        assert!(m.maps_to(b"/etc", b"/tmp/empty/etc"));
        assert!(m.maps_to(b"/", b"/tmp/empty"));
    }

    #[test]
    fn mount_points_name_their_parent() {
        let m = store();
        assert_eq!(
            m.mount_points(),
            &[MountPoint { parent: b"/".to_vec(), name: b"nix".to_vec(), host: b"/home/u/.local/share/nix/root/nix".to_vec() }]
        );
        let m = Mapping::new([(&b"/h"[..], &b"/a/b"[..])]).unwrap();
        assert_eq!(m.mount_points()[0].parent, b"/a");
        assert_eq!(m.mount_points()[0].name, b"b");
        assert!(m.lists_mount_points(b"/a") && !m.lists_mount_points(b"/"));
        // An open of `a` relative to some directory may be of /a; `nix`'s parent is /.
        assert!(m.may_name_listed_dir(b"a"));
        assert!(!m.may_name_listed_dir(b"b") && !store().may_name_listed_dir(b"nix"));
    }

    #[test]
    fn rejects_relative_and_dotted() {
        assert!(Mapping::for_store(b"relative").is_err());
        assert!(Mapping::for_store(b"/a/../b").is_err());
        assert!(Mapping::for_store(b"/a//b").is_err());
        assert_eq!(Mapping::for_store(b"/a/b/").unwrap().to_host(b"/nix"), b"/a/b/nix");
    }
}
