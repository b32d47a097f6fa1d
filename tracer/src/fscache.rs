//! What ptnix remembers about the host filesystem between syscalls, and why each
//! memory cannot go stale.
//!
//! Two kinds of places never change under a user's feet:
//!
//! - *Valid store objects.* Nix makes a store path immutable once it is built or
//!   added: `canonicalisePathMetaData` removes every write permission and sets the
//!   modification time to 1 (1970-01-01T00:00:01Z), and nothing in Nix changes a valid
//!   path afterwards; a path with the same name always has the same contents, even
//!   after it is collected and added again. A store path that is still being built is
//!   writable and has a current mtime, so it is never remembered. What can still
//!   happen to a valid path is deletion (garbage collection, by this ptnix or another
//!   one sharing the store), after which it may be built again, writable for a while.
//!   So what is remembered about an object is used only while the object's top
//!   directory is the one that was canonical when it was remembered: the same inode
//!   and change time (a chmod, a new directory in its place, changes either), checked
//!   with one lstat per object per stop. Store symlinks are not remembered at all.
//!   (Not an fstat of a descriptor held on the directory, which costs a third: Nix's
//!   garbage collector counts every store path a process holds open, ptnix's own
//!   descriptors included, as in use, and would refuse to delete it.)
//! - *Sealed host directories*: a directory that is root's and not writable by group
//!   or others, below directories that are all the same (`/usr/lib`, `/etc`), when
//!   ptnix does not run as root. Only root can change what is in them. Directories
//!   whose contents the system changes by itself (`/proc`, `/sys`, `/dev`, `/run`) are
//!   never sealed.
//!
//! Anything else (the user's home, `/tmp`, the store directory itself, `/nix/var`)
//! is looked up afresh every time: tests change such paths between two lookups
//! (`tests/tests/cache_validity.rs`).

use hashbrown::HashMap;
use ptnix_syscalls::path::has_prefix;
use ptnix_syscalls::resolve::{DirCheck, Kind};
use ptnix_syscalls::Errno;
use crate::hostfs::lstat;

/// Bounded so that a walk over a huge store cannot grow ptnix without limit.
const MAX_ENTRIES: usize = 1 << 16;
/// Bytes of file contents kept (ELF and `#!` headers of store programs).
const MAX_READ_BYTES: usize = 8 << 20;

/// Whose contents the system changes by itself, root-owned or not.
const VOLATILE: [&[u8]; 4] = [b"/proc", b"/sys", b"/dev", b"/run"];

/// What a dynamic loader understands, from the strings in its file: glibc's ld.so
/// (2.33+) and musl's list `--argv0` among their options, older loaders do not have
/// the string at all; glibc's also names the auditor entry points it looks up
/// (`la_objsearch`, rtld-audit(7)) and takes `--audit`. `audit` only from glibc 2.35
/// (its ld.so defines the version GLIBC_2.35): before, any auditor turned lazy
/// binding into the profiling path for good, every PLT call through the loader, and
/// BIND_NOW off (BZ #15533).
#[derive(Clone, Copy, Default)]
pub struct LoaderKind {
    pub argv0: bool,
    pub audit: bool,
}

#[derive(Default)]
pub struct FsCache {
    /// Host path of the store directory (`STORE/nix/store`), with a trailing `/`.
    store_prefix: Vec<u8>,
    /// ptnix runs as root: then no host directory is beyond the user's reach.
    as_root: bool,
    /// Loader path -> what it understands.
    pub loaders: HashMap<Vec<u8>, LoaderKind>,
    /// Immutable store objects (host path of the top directory) and how to recognise
    /// that directory again.
    objects: HashMap<Vec<u8>, Object>,
    /// Counts stops: each object is checked again at most once per stop.
    generation: u64,
    /// Host directory -> it and every directory above it are sealed.
    sealed: HashMap<Vec<u8>, bool>,
    /// Directory checks (see [`DirCheck`]; a symlink is not kept).
    dirs: HashMap<Vec<u8>, DirCheck>,
    /// lstat: what kind of file, or ENOENT/ENOTDIR.
    entries: HashMap<Vec<u8>, Result<Kind, Errno>>,
    /// Symlink contents in sealed directories.
    links: HashMap<Vec<u8>, Vec<u8>>,
    /// Contents of files in immutable store objects: (path, offset, length) -> bytes.
    reads: HashMap<(Vec<u8>, u64, usize), Vec<u8>>,
    read_bytes: usize,
    /// Whether execve may run a file of an immutable store object.
    execs: HashMap<Vec<u8>, Result<(), Errno>>,
    /// Whether such a program refers to a function of the in-process object's through
    /// its GOT alone (`elf::got_references`).
    got_refs: HashMap<Vec<u8>, bool>,
}

/// A canonical store object's top directory as it was when ptnix first saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Object {
    id: (u64, i64, i64),
    /// The stop at which it was last seen unchanged.
    checked: u64,
}

fn bounded_insert<K: std::hash::Hash + Eq, V>(m: &mut HashMap<K, V>, k: K, v: V) {
    if m.len() >= MAX_ENTRIES {
        m.clear();
    }
    m.insert(k, v);
}

fn parent(p: &[u8]) -> Option<&[u8]> {
    match memchr::memrchr(b'/', p)? {
        0 if p.len() > 1 => Some(b"/"),
        0 => None,
        i => Some(&p[..i]),
    }
}

impl FsCache {
    pub fn new(store_dir_host: &[u8]) -> FsCache {
        let mut store_prefix = store_dir_host.to_vec();
        store_prefix.push(b'/');
        // SAFETY: geteuid cannot fail.
        let as_root = unsafe { libc::geteuid() } == 0;
        FsCache { store_prefix, as_root, ..FsCache::default() }
    }

    /// The top directory of the store object `local` lies in, if any.
    fn object_of<'p>(&self, local: &'p [u8]) -> Option<&'p [u8]> {
        let rest = local.strip_prefix(self.store_prefix.as_slice())?;
        let end = memchr::memchr(b'/', rest).unwrap_or(rest.len());
        (end > 0).then(|| &local[..self.store_prefix.len() + end])
    }

    /// A new stop begins: objects are checked again when next used.
    pub fn next_stop(&mut self) {
        self.generation += 1;
    }

    /// Whether the store object at `top` is canonicalised (no write bit, mtime 1) and
    /// is still the directory whose facts ptnix remembers; if it is another now, they
    /// are forgotten.
    fn immutable(&mut self, top: &[u8]) -> bool {
        let generation = self.generation;
        if self.objects.get(top).is_some_and(|o| o.checked == generation) {
            return true;
        }
        let st = lstat(top).ok();
        let canonical = st.as_ref().is_some_and(|st| st.st_mode & 0o222 == 0 && st.st_mtime == 1);
        let id = st.map(|st| (st.st_ino, st.st_ctime, st.st_ctime_nsec));
        match self.objects.get_mut(top) {
            Some(o) if canonical && Some(o.id) == id => {
                o.checked = generation;
                return true;
            }
            Some(_) => {
                self.objects.remove(top);
                self.forget_below(top);
            }
            None => {}
        }
        // Only the immutable answer is kept: a writable path may become valid later.
        if let (true, Some(id)) = (canonical, id) {
            bounded_insert(&mut self.objects, top.to_vec(), Object { id, checked: generation });
        }
        canonical
    }

    /// Drops everything remembered about paths in the object at `top`.
    fn forget_below(&mut self, top: &[u8]) {
        self.dirs.retain(|k, _| !has_prefix(k, top));
        self.entries.retain(|k, _| !has_prefix(k, top));
        self.reads.retain(|k, _| !has_prefix(&k.0, top));
        self.execs.retain(|k, _| !has_prefix(k, top));
        self.got_refs.retain(|k, _| !has_prefix(k, top));
        self.read_bytes = self.reads.values().map(Vec::len).sum();
    }

    /// For a path in a store object: whether that object is immutable and unchanged
    /// (see [`FsCache::immutable`]). `None` outside the store's objects.
    fn object_unchanged(&mut self, local: &[u8]) -> Option<bool> {
        let top = self.object_of(local)?.to_vec();
        Some(self.immutable(&top))
    }

    /// Whether what is remembered about `local` may be used now: an object it lies in
    /// is unchanged. (Sealed host directories change only by root's hand.)
    fn usable(&mut self, local: &[u8]) -> bool {
        self.object_unchanged(local).unwrap_or(true)
    }

    /// Whether directory `dir` and every one above it are root's and not writable
    /// by group or others (and are real directories, not symlinks).
    fn sealed(&mut self, dir: &[u8]) -> bool {
        if let Some(&b) = self.sealed.get(dir) {
            return b;
        }
        let Ok(st) = lstat(dir) else { return false };
        let own = st.st_mode & libc::S_IFMT == libc::S_IFDIR && st.st_uid == 0 && st.st_mode & 0o022 == 0;
        let b = own && parent(dir).map_or(true, |p| self.sealed(p));
        bounded_insert(&mut self.sealed, dir.to_vec(), b);
        b
    }

    /// Whether what a lookup of `local` finds (its kind, whether a symlink lies on
    /// its path, a symlink's contents) can be remembered.
    fn lookup_stable(&mut self, local: &[u8]) -> bool {
        if local.first() != Some(&b'/') || VOLATILE.iter().any(|v| has_prefix(local, v)) {
            return false;
        }
        if let Some(unchanged) = self.object_unchanged(local) {
            return unchanged;
        }
        if self.as_root || has_prefix(local, &self.store_prefix[..self.store_prefix.len() - 1]) {
            return false;
        }
        parent(local).is_some_and(|p| self.sealed(p))
    }

    /// Whether a file's contents and mode can be remembered: it is in an immutable
    /// store object.
    fn content_stable(&mut self, local: &[u8]) -> bool {
        self.object_unchanged(local).unwrap_or(false)
    }

    /// A remembered check of directory `local` (see [`DirCheck`]).
    pub fn dir_known(&mut self, local: &[u8]) -> Option<DirCheck> {
        let v = self.dirs.get(local).copied()?;
        self.usable(local).then_some(v)
    }

    /// Remembers what a check of directory `local` found, where that is stable. A
    /// symlink is not remembered: the walk that follows looks at it anyway.
    pub fn remember_dir(&mut self, local: &[u8], found: DirCheck) {
        if found != DirCheck::Symlink && self.lookup_stable(local) {
            bounded_insert(&mut self.dirs, local.to_vec(), found);
        }
    }

    pub fn entry_known(&mut self, local: &[u8]) -> Option<Result<Kind, Errno>> {
        let v = self.entries.get(local).copied()?;
        self.usable(local).then_some(v)
    }

    /// Remembers an lstat result. Store symlinks are not (see the module comment);
    /// nor are errors other than "not there".
    pub fn remember_entry(&mut self, local: &[u8], r: Result<Kind, Errno>) {
        let keep = match r {
            Ok(Kind::Symlink) => self.object_of(local).is_none(),
            Ok(Kind::MagicLink) => false,
            Ok(_) => true,
            Err(e) => e == libc::ENOENT || e == libc::ENOTDIR,
        };
        if keep && self.lookup_stable(local) {
            bounded_insert(&mut self.entries, local.to_vec(), r);
        }
    }

    pub fn link_known(&self, local: &[u8]) -> Option<&Vec<u8>> {
        self.links.get(local)
    }

    pub fn remember_link(&mut self, local: &[u8], target: &[u8]) {
        if self.object_of(local).is_none() && self.lookup_stable(local) {
            bounded_insert(&mut self.links, local.to_vec(), target.to_vec());
        }
    }

    pub fn read_known(&mut self, local: &[u8], offset: u64, len: usize) -> Option<Vec<u8>> {
        let key = (local.to_vec(), offset, len);
        if !self.reads.contains_key(&key) || !self.usable(local) {
            return None;
        }
        self.reads.get(&key).cloned()
    }

    pub fn remember_read(&mut self, local: &[u8], offset: u64, len: usize, data: &[u8]) {
        if !self.content_stable(local) {
            return;
        }
        if self.read_bytes + data.len() > MAX_READ_BYTES {
            self.reads.clear();
            self.read_bytes = 0;
        }
        self.read_bytes += data.len();
        self.reads.insert((local.to_vec(), offset, len), data.to_vec());
    }

    pub fn exec_known(&mut self, local: &[u8]) -> Option<Result<(), Errno>> {
        let v = self.execs.get(local).copied()?;
        self.usable(local).then_some(v)
    }

    pub fn remember_exec(&mut self, local: &[u8], r: Result<(), Errno>) {
        if self.content_stable(local) {
            bounded_insert(&mut self.execs, local.to_vec(), r);
        }
    }

    pub fn got_refs_known(&mut self, local: &[u8]) -> Option<bool> {
        let v = self.got_refs.get(local).copied()?;
        self.usable(local).then_some(v)
    }

    pub fn remember_got_refs(&mut self, local: &[u8], r: bool) {
        if self.content_stable(local) {
            bounded_insert(&mut self.got_refs, local.to_vec(), r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_found_under_the_store_dir_only() {
        let c = FsCache::new(b"/s/nix/store");
        assert_eq!(c.object_of(b"/s/nix/store/abc-x/lib"), Some(&b"/s/nix/store/abc-x"[..]));
        assert_eq!(c.object_of(b"/s/nix/store/abc-x"), Some(&b"/s/nix/store/abc-x"[..]));
        assert_eq!(c.object_of(b"/s/nix/store"), None);
        assert_eq!(c.object_of(b"/s/nix/store/"), None);
        assert_eq!(c.object_of(b"/s/nix/storeX/a"), None);
        assert_eq!(c.object_of(b"/usr/lib"), None);
    }

    #[test]
    fn parents() {
        assert_eq!(parent(b"/a/b"), Some(&b"/a"[..]));
        assert_eq!(parent(b"/a"), Some(&b"/"[..]));
        assert_eq!(parent(b"/"), None);
    }

    #[test]
    fn writable_objects_are_not_remembered() {
        let dir = std::env::temp_dir().join(format!("ptnix-fscache-{}", std::process::id()));
        let obj = dir.join("nix/store/abc-x/lib");
        std::fs::create_dir_all(&obj).unwrap();
        let store = dir.join("nix/store");
        let mut c = FsCache::new(store.as_os_str().as_encoded_bytes());
        let lib = obj.as_os_str().as_encoded_bytes().to_vec();
        c.remember_dir(&lib, DirCheck::Plain);
        assert_eq!(c.dir_known(&lib), None, "a writable store object (being built) is remembered");
        c.remember_entry(&lib, Ok(Kind::Dir));
        assert_eq!(c.entry_known(&lib), None);
        c.remember_read(&lib, 0, 4, b"abcd");
        assert_eq!(c.read_known(&lib, 0, 4), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn volatile_and_user_places_are_not_sealed() {
        let mut c = FsCache::new(b"/nonexistent/nix/store");
        for p in [&b"/proc/self/exe"[..], b"/dev/null", b"/tmp/x", b"/sys/kernel"] {
            assert!(!c.lookup_stable(p), "{}", String::from_utf8_lossy(p));
        }
        if !c.as_root {
            // /usr/bin is root's on any ordinary system.
            assert!(c.lookup_stable(b"/usr/bin/env"));
            let home = std::env::var_os("HOME").unwrap();
            let mut p = home.as_encoded_bytes().to_vec();
            p.extend_from_slice(b"/x");
            assert!(!c.lookup_stable(&p), "a file in the user's home");
        }
    }
}
