//! Guest-view path resolution.
//!
//! The kernel walks a path on the host, following symlinks there. Under ptnix the walk
//! must happen in the guest view instead: `/nix` is a bind, a host symlink such as
//! `~/.nix-profile -> /nix/var/nix/profiles/...` must land in the bind, and `..` out of
//! `/nix` must reach the guest `/`. [`resolve`] walks the path component by component
//! (as fs/namei.c does) over a [`HostFs`], and says what path to hand the kernel.
//!
//! Alongside the guest walk it tracks what the kernel would have walked on the host
//! with the original path. While both agree, the original path is left untouched:
//! nothing is rewritten for programs that never go near a bind, so the kernel's own
//! semantics (relative paths, AT_EMPTY_PATH, the `#!` name of a script) stay exact.

use crate::mapping::Mapping;
use crate::path::{self, MAX_SYMLINKS, PATH_MAX};
use crate::Errno;

/// What `lstat` says of a host path, as far as resolution cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Dir,
    Symlink,
    /// A procfs "magic link" (`/proc/PID/{cwd,exe,root,fd/N}`): readlink gives a *host*
    /// path (or `pipe:[...]`), and the kernel jumps to the object rather than following
    /// the text.
    MagicLink,
    Other,
}

/// Filesystem access for resolution. The tracer implements it with real syscalls (and
/// maps `/proc/self` to the tracee); tests implement it with an in-memory model.
pub trait HostFs {
    fn lstat(&mut self, host: &[u8]) -> Result<Kind, Errno>;
    fn readlink(&mut self, host: &[u8]) -> Result<Vec<u8>, Errno>;
    /// Whether `host` is a directory reached without meeting any symlink, in one step
    /// (Linux 5.6+: openat2 with RESOLVE_NO_SYMLINKS); `None` when the filesystem
    /// cannot tell (the walk then asks component by component).
    fn plain_dir(&mut self, _host: &[u8]) -> Option<DirCheck> {
        None
    }
}

/// What a symlink-free lookup of a directory path found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirCheck {
    /// A directory, and no symlink on the way.
    Plain,
    /// A symlink on the way (ELOOP under RESOLVE_NO_SYMLINKS).
    Symlink,
    /// The lookup failed (ENOENT, ENOTDIR, EACCES) before meeting any symlink: the
    /// kernel fails the same way on any path below it, in the guest as on the host.
    Unreachable,
}

/// One path argument to resolve.
#[derive(Clone, Copy, Debug, Default)]
pub struct Request<'a> {
    /// The bytes the tracee passed (without the NUL).
    pub path: &'a [u8],
    /// Follow a symlink in the last component.
    pub follow_last: bool,
    /// The syscall creates or removes the last name: keep a final `.`/`..` literal.
    pub names_entry: bool,
    /// openat2 RESOLVE_NO_SYMLINKS: any symlink that would be followed is ELOOP.
    pub no_symlinks: bool,
    /// openat2 RESOLVE_NO_MAGICLINKS: a procfs magic link that would be followed is
    /// ELOOP.
    pub no_magiclinks: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Hand the kernel the original path.
    Unchanged,
    /// Hand the kernel this host path instead. It may be PATH_MAX long or longer
    /// when the guest path is not (the store directory's name adds to it): the
    /// caller must then shorten it (the tracer does, through a symlink).
    Host(Vec<u8>),
    /// Fail the syscall with this errno without entering the kernel.
    Error(Errno),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolution {
    pub outcome: Outcome,
    /// The guest path reached (canonical up to the last component, which is present
    /// unless it was `.`/`..`); for messages, `/proc` emulation and exec.
    pub guest: Vec<u8>,
}

impl Resolution {
    fn error(e: Errno) -> Resolution {
        Resolution { outcome: Outcome::Error(e), guest: Vec::new() }
    }
}

/// The walk state: the guest path reached, and the host path the kernel would have
/// reached with the untranslated path (`None` once the two diverge).
struct Walk<'m> {
    map: &'m Mapping,
    guest: Vec<u8>,
    kernel: Option<Vec<u8>>,
}

impl Walk<'_> {
    fn check(&mut self) {
        if let Some(k) = &self.kernel {
            if !self.map.maps_to(&self.guest, k) {
                self.kernel = None;
            }
        }
    }
    fn push(&mut self, name: &[u8]) {
        path::push(&mut self.guest, name);
        if let Some(k) = &mut self.kernel {
            path::push(k, name);
        }
        self.check();
    }
    fn pop(&mut self) {
        path::pop(&mut self.guest);
        if let Some(k) = &mut self.kernel {
            path::pop(k);
        }
        self.check();
    }
    /// An absolute symlink target: both walks restart at their root.
    fn to_root(&mut self) {
        self.guest = b"/".to_vec();
        if let Some(k) = &mut self.kernel {
            *k = b"/".to_vec();
        }
        self.check();
    }
    /// A magic link: the kernel jumps to `host`, whose guest name is `to_guest(host)`.
    fn jump(&mut self, host: &[u8]) {
        self.guest = self.map.to_guest(host);
        if let Some(k) = &mut self.kernel {
            *k = host.to_vec();
        }
        self.check();
    }
}

/// Splits off the next component of `rest`, skipping leading slashes. Returns the
/// component and whether anything (a further component or a trailing slash) follows.
fn next_component(rest: &[u8]) -> Option<(&[u8], &[u8])> {
    let start = rest.iter().position(|&b| b != b'/')?;
    let rest = &rest[start..];
    let end = memchr::memchr(b'/', rest).unwrap_or(rest.len());
    Some((&rest[..end], &rest[end..]))
}

/// Resolves `req.path` in the guest view. `cwd` is the guest directory a relative path
/// starts from (the cwd or the dirfd's directory), canonical and absolute.
pub fn resolve(map: &Mapping, fs: &mut impl HostFs, cwd: &[u8], req: Request<'_>) -> Resolution {
    let path = req.path;
    if path.is_empty() {
        // ENOENT, or AT_EMPTY_PATH on the dirfd: the kernel's business.
        return Resolution { outcome: Outcome::Unchanged, guest: Vec::new() };
    }
    if path.len() >= PATH_MAX {
        return Resolution::error(libc::ENAMETOOLONG);
    }
    let mut w = if path[0] == b'/' {
        let mut w = Walk { map, guest: b"/".to_vec(), kernel: Some(b"/".to_vec()) };
        w.check();
        w
    } else {
        Walk { map, guest: cwd.to_vec(), kernel: Some(map.to_host(cwd)) }
    };

    if let Some(r) = fast(map, fs, &w, req) {
        return r;
    }

    // `rest` is what remains to walk; symlink targets are spliced in front of it.
    let mut rest: Vec<u8> = path.to_vec();
    let mut pos = 0usize;
    let mut links = 0u32;
    // A final `.` or `..` kept literally, or a trailing slash, appended to the output.
    let mut suffix: &[u8] = b"";

    while let Some((name, after)) = next_component(&rest[pos..]) {
        let name = name.to_vec();
        let after_start = rest.len() - after.len();
        let more = next_component(after).is_some();
        let trailing_slash = !more && !after.is_empty();
        let last = !more;
        pos = after_start;

        if name == b"." {
            if last {
                suffix = if trailing_slash { b"/./" } else { b"/." };
            }
            continue;
        }
        if name == b".." {
            if last && req.names_entry {
                suffix = if trailing_slash { b"/../" } else { b"/.." };
            } else {
                w.pop();
            }
            continue;
        }
        w.push(&name);
        // Directory position: something follows, so the kernel follows a symlink here
        // and requires a directory ("a trailing slash forces resolution as a directory").
        // Not for the entry a call makes or removes (mkdir, rmdir, unlink...): the
        // kernel looks its last name up in the parent without following it, trailing
        // slash or not (fs/namei.c, filename_parentat: `rmdir ln/` of a symlink to a
        // directory is ENOTDIR, `mkdir ln/` of a dangling one EEXIST).
        let dir_pos = !last || (trailing_slash && !req.names_entry);
        if !dir_pos && !req.follow_last {
            if trailing_slash && suffix.is_empty() {
                suffix = b"/";
            }
            break;
        }
        let host = map.to_host(&w.guest);
        let kind = match fs.lstat(&host) {
            Ok(k) => k,
            // A missing last name is fine (creation); elsewhere the kernel fails the
            // walk itself with this errno on the path we hand it.
            Err(_) if !dir_pos => break,
            Err(_) => return stop(w, &rest[pos..]),
        };
        match kind {
            Kind::Dir => {}
            Kind::Other if dir_pos => return stop(w, &rest[pos..]),
            Kind::Other => {}
            Kind::MagicLink if !dir_pos => break,
            // openat2(2): "RESOLVE_NO_SYMLINKS: Disallow resolution of symbolic links
            // during path resolution. This option implies RESOLVE_NO_MAGICLINKS."
            Kind::Symlink if req.no_symlinks => return Resolution::error(libc::ELOOP),
            Kind::MagicLink if req.no_symlinks || req.no_magiclinks => return Resolution::error(libc::ELOOP),
            Kind::MagicLink | Kind::Symlink => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Resolution::error(libc::ELOOP);
                }
                let target = match fs.readlink(&host) {
                    Ok(t) => t,
                    Err(_) => return stop(w, &rest[pos..]),
                };
                if kind == Kind::MagicLink {
                    if target.first() != Some(&b'/') {
                        // pipe:[...], socket:[...]: not a directory to walk into.
                        return stop(w, &rest[pos..]);
                    }
                    w.jump(&target);
                    continue;
                }
                if target.is_empty() {
                    // An empty symlink resolves to ENOENT (fs/namei.c: "if (!*link)").
                    return finish_error_or_unchanged(w, libc::ENOENT);
                }
                w.pop();
                if target[0] == b'/' {
                    w.to_root();
                }
                // The kernel limits each target to PATH_MAX and the number of links
                // to 40, not their total: the spliced text is bounded by that.
                let mut spliced = target;
                spliced.extend_from_slice(&rest[pos..]);
                rest = spliced;
                pos = 0;
                suffix = b"";
            }
        }
        if trailing_slash && suffix.is_empty() {
            suffix = b"/";
        }
    }
    finish(w, suffix)
}

/// The common case in one or two lookups instead of one per component: a path
/// without `..` whose directories hold no symlink resolves lexically. The directory
/// part is checked with [`HostFs::plain_dir`], once for each bind it passes through
/// (the deepest directory in each), and the last component with one `lstat` when it
/// would be followed. A directory in the last bind that cannot be reached without a
/// symlink being met first (ENOENT: a library search trying `glibc-hwcaps/x86-64-v4`)
/// needs nothing more: the kernel fails the translated path the same way. Anything
/// else (a symlink, a failure in an earlier bind, a filesystem that cannot tell)
/// takes the full walk, which gives the same answer more slowly.
fn fast(map: &Mapping, fs: &mut impl HostFs, start: &Walk<'_>, req: Request<'_>) -> Option<Resolution> {
    let comps: Vec<&[u8]> = path::components(req.path).filter(|c| *c != b".").collect();
    let (&last, dirs) = comps.split_last()?;
    if last == b".." || dirs.contains(&&b".."[..]) || path::components(req.path).last() == Some(b".") {
        return None;
    }
    // The directories: check the deepest one of each bind the path goes through.
    let mut g = start.guest.clone();
    let mut checked_upto = g.clone();
    for d in dirs {
        let bind_before = map.bind_of(&g) as *const _;
        path::push(&mut g, d);
        if map.bind_of(&g) as *const _ != bind_before && checked_upto != g {
            let mut prev = g.clone();
            path::pop(&mut prev);
            if prev != checked_upto && fs.plain_dir(&map.to_host(&prev))? != DirCheck::Plain {
                return None;
            }
            checked_upto = prev;
        }
    }
    let reachable = match g != checked_upto {
        true => match fs.plain_dir(&map.to_host(&g))? {
            DirCheck::Plain => true,
            DirCheck::Symlink => return None,
            DirCheck::Unreachable => false,
        },
        false => true,
    };
    let trailing = req.path.last() == Some(&b'/');
    let mut w = Walk { map, guest: start.guest.clone(), kernel: start.kernel.clone() };
    for c in &comps {
        w.push(c);
    }
    if reachable && (trailing || req.follow_last) {
        if let Ok(Kind::Symlink | Kind::MagicLink) = fs.lstat(&map.to_host(&w.guest)) {
            return None;
        }
    }
    Some(finish(w, if trailing { b"/" } else { b"" }))
}

fn finish(w: Walk<'_>, suffix: &[u8]) -> Resolution {
    if w.kernel.is_some() {
        return Resolution { outcome: Outcome::Unchanged, guest: w.guest };
    }
    let mut host = w.map.to_host(&w.guest);
    if !suffix.is_empty() {
        if host == b"/" {
            host.extend_from_slice(&suffix[1..]);
        } else {
            host.extend_from_slice(suffix);
        }
    }
    Resolution { outcome: Outcome::Host(host), guest: w.guest }
}

/// The walk cannot go on (a missing or non-directory component, an unreadable
/// link): hand the kernel the host path so far plus the unwalked rest, so that it
/// fails with its own errno (ENOENT, ENOTDIR, EACCES).
fn stop(w: Walk<'_>, unwalked: &[u8]) -> Resolution {
    if w.kernel.is_some() {
        return Resolution { outcome: Outcome::Unchanged, guest: w.guest };
    }
    let mut host = w.map.to_host(&w.guest);
    host.extend_from_slice(unwalked);
    Resolution { outcome: Outcome::Host(host), guest: w.guest }
}

fn finish_error_or_unchanged(w: Walk<'_>, e: Errno) -> Resolution {
    if w.kernel.is_some() {
        return Resolution { outcome: Outcome::Unchanged, guest: w.guest };
    }
    Resolution { outcome: Outcome::Error(e), guest: w.guest }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::model::{ModelFs, Node};

    fn fs() -> ModelFs {
        let mut f = ModelFs::new();
        f.add("/s", Node::Dir)
            .add("/s/nix", Node::Dir)
            .add("/s/nix/store", Node::Dir)
            .add("/s/nix/store/a", Node::Dir)
            .add("/s/nix/store/a/bin", Node::Dir)
            .add("/s/nix/store/a/bin/x", Node::File(Vec::new()))
            .add("/s/nix/store/b", Node::Dir)
            .add("/s/nix/store/b/bin", Node::Link(b"/nix/store/a/bin".to_vec()))
            .add("/s/nix/store/b/up", Node::Link(b"../../..".to_vec()))
            .add("/s/nix/var", Node::Dir)
            .add("/home", Node::Dir)
            .add("/home/u", Node::Dir)
            .add("/home/u/.nix-profile", Node::Link(b"/nix/store/b".to_vec()))
            .add("/home/u/f", Node::File(Vec::new()))
            .add("/home/u/loop", Node::Link(b"loop".to_vec()))
            .add("/home/u/empty", Node::Link(Vec::new()))
            .add("/usr", Node::Dir)
            .add("/usr/bin", Node::Dir)
            .add("/usr/bin/sh", Node::File(Vec::new()))
            .add("/proc", Node::Dir)
            .add("/proc/7", Node::Dir)
            .add("/proc/7/cwd", Node::Magic(b"/s/nix/store/a".to_vec()))
            .add("/proc/7/fd", Node::Dir)
            .add("/proc/7/fd/0", Node::Magic(b"pipe:[1]".to_vec()));
        f
    }

    fn run(path: &str, cwd: &str, follow: bool) -> Outcome {
        let m = Mapping::for_store(b"/s").unwrap();
        let req = Request { path: path.as_bytes(), follow_last: follow, names_entry: false, ..Default::default() };
        resolve(&m, &mut fs(), cwd.as_bytes(), req).outcome
    }
    fn host(p: &str) -> Outcome {
        Outcome::Host(p.as_bytes().to_vec())
    }

    #[test]
    fn host_paths_are_untouched() {
        assert_eq!(run("/usr/bin/sh", "/", true), Outcome::Unchanged);
        assert_eq!(run("f", "/home/u", true), Outcome::Unchanged);
        assert_eq!(run("../u/f", "/home/u", true), Outcome::Unchanged);
        assert_eq!(run("/missing/x", "/", true), Outcome::Unchanged);
        assert_eq!(run("/nixos", "/", true), Outcome::Unchanged);
    }

    #[test]
    fn nix_paths_are_mapped() {
        assert_eq!(run("/nix/store/a/bin/x", "/", true), host("/s/nix/store/a/bin/x"));
        assert_eq!(run("/nix", "/", false), host("/s/nix"));
        assert_eq!(run("/nix/new", "/", false), host("/s/nix/new"));
        assert_eq!(run("//nix//store/", "/", false), host("/s/nix/store/"));
    }

    #[test]
    fn symlinks_are_followed_in_the_guest() {
        assert_eq!(run("/home/u/.nix-profile/bin/x", "/", true), host("/s/nix/store/a/bin/x"));
        assert_eq!(run(".nix-profile/bin/x", "/home/u", true), host("/s/nix/store/a/bin/x"));
        // No-follow on the last component: the link itself, in the host's home.
        assert_eq!(run("/home/u/.nix-profile", "/", false), Outcome::Unchanged);
        assert_eq!(run("/home/u/.nix-profile", "/", true), host("/s/nix/store/b"));
        assert_eq!(run("/home/u/.nix-profile/", "/", false), host("/s/nix/store/b/"));
    }

    #[test]
    fn dotdot_leaves_the_bind() {
        assert_eq!(run("/nix/..", "/", true), host("/"));
        assert_eq!(run("/nix/../usr/bin/sh", "/", true), host("/usr/bin/sh"));
        assert_eq!(run("../../usr", "/nix/store", true), host("/usr"));
        assert_eq!(run("/nix/store/b/up/usr", "/", true), host("/usr"));
        // Inside the bind, relative paths that stay there need no rewrite.
        assert_eq!(run("a/bin/x", "/nix/store", true), Outcome::Unchanged);
    }

    #[test]
    fn errors_are_left_to_the_kernel_or_the_kernels_own() {
        assert_eq!(run("/nix/store/a/bin/x/y", "/", true), host("/s/nix/store/a/bin/x/y"));
        assert_eq!(run("/nix/store/a/bin/x/.", "/", true), host("/s/nix/store/a/bin/x/."));
        assert_eq!(run("/nix/missing/../store", "/", true), host("/s/nix/missing/../store"));
        assert_eq!(run("/home/u/loop", "/", true), Outcome::Error(libc::ELOOP));
        assert_eq!(run("/home/u/f/", "/", true), Outcome::Unchanged);
        assert_eq!(run("", "/", true), Outcome::Unchanged);
        assert_eq!(run(&"a/".repeat(2048), "/", true), Outcome::Error(libc::ENAMETOOLONG));
    }

    #[test]
    fn dot_and_dotdot_kept_for_entry_syscalls() {
        let m = Mapping::for_store(b"/s").unwrap();
        let req = Request { path: b"/nix/store/a/..", follow_last: false, names_entry: true, ..Default::default() };
        assert_eq!(resolve(&m, &mut fs(), b"/", req).outcome, host("/s/nix/store/a/.."));
        let req = Request { path: b"/nix/store/.", follow_last: false, names_entry: true, ..Default::default() };
        assert_eq!(resolve(&m, &mut fs(), b"/", req).outcome, host("/s/nix/store/."));
    }

    #[test]
    fn magic_links() {
        // In a directory position the kernel jumps to the object: its host path.
        assert_eq!(run("/proc/7/cwd/bin/x", "/", true), Outcome::Unchanged);
        assert_eq!(run("/proc/7/cwd/../b", "/", true), Outcome::Unchanged);
        // As the last component it is never followed textually.
        assert_eq!(run("/proc/7/fd/0", "/", true), Outcome::Unchanged);
        assert_eq!(run("/proc/7/fd/0/x", "/", true), Outcome::Unchanged);
    }
}
