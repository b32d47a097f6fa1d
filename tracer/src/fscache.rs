//! What ptnix remembers about the host filesystem between syscalls, and why each
//! memory cannot go stale.
//!
//! Only facts about *valid store objects* are kept. Nix makes a store path immutable
//! once it is built or added: `canonicalisePathMetaData` removes every write
//! permission and sets the modification time to 1 (1970-01-01T00:00:01Z), and nothing
//! in Nix changes a valid path afterwards; a path with the same name always has the
//! same contents, even after it is collected and added again. A store path that is
//! still being built is writable and has a current mtime, so it is never remembered;
//! nor is anything outside the store, which the user (or another user) may change.

use hashbrown::{HashMap, HashSet};
use std::ffi::CString;

/// Bounded so that a walk over a huge store cannot grow ptnix without limit.
const MAX_ENTRIES: usize = 1 << 16;

#[derive(Default)]
pub struct FsCache {
    /// Host path of the store directory (`STORE/nix/store`), with a trailing `/`.
    store_prefix: Vec<u8>,
    /// Loader path -> understands `--argv0`.
    pub loaders: HashMap<Vec<u8>, bool>,
    /// Store object (host path of its top directory) -> immutable (canonicalised).
    objects: HashMap<Vec<u8>, bool>,
    /// Directories inside immutable store objects whose path has no symlink.
    plain: HashSet<Vec<u8>>,
}

impl FsCache {
    pub fn new(store_dir_host: &[u8]) -> FsCache {
        let mut store_prefix = store_dir_host.to_vec();
        store_prefix.push(b'/');
        FsCache { store_prefix, ..FsCache::default() }
    }

    /// The top directory of the store object `local` lies in, if any.
    fn object_of<'p>(&self, local: &'p [u8]) -> Option<&'p [u8]> {
        let rest = local.strip_prefix(self.store_prefix.as_slice())?;
        let end = memchr::memchr(b'/', rest).unwrap_or(rest.len());
        (end > 0).then(|| &local[..self.store_prefix.len() + end])
    }

    /// Whether the store object at `top` is canonicalised (no write bit, mtime 1).
    fn immutable(&mut self, top: &[u8]) -> bool {
        if let Some(&b) = self.objects.get(top) {
            return b;
        }
        let Ok(c) = CString::new(top) else { return false };
        // SAFETY: lstat of a valid C string into plain old data.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        let ok = unsafe { libc::lstat(c.as_ptr(), &mut st) } == 0;
        let canonical = ok && st.st_mode & 0o222 == 0 && st.st_mtime == 1;
        // Only the immutable answer is kept: a writable path may become valid later.
        if canonical {
            if self.objects.len() >= MAX_ENTRIES {
                self.objects.clear();
            }
            self.objects.insert(top.to_vec(), true);
        }
        canonical
    }

    /// A remembered "no symlink on this directory's path".
    pub fn plain_known(&self, local: &[u8]) -> bool {
        self.plain.contains(local)
    }

    /// Remembers that directory `local` has no symlink on its path, if it lies in an
    /// immutable store object (its path up to the store directory is ptnix's own
    /// canonical store root, and the object's contents never change).
    pub fn remember_plain(&mut self, local: &[u8]) {
        let Some(top) = self.object_of(local) else { return };
        let top = top.to_vec();
        if self.immutable(&top) {
            if self.plain.len() >= MAX_ENTRIES {
                self.plain.clear();
            }
            self.plain.insert(local.to_vec());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::FsCache;

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
    fn writable_objects_are_not_remembered() {
        let dir = std::env::temp_dir().join(format!("ptnix-fscache-{}", std::process::id()));
        let obj = dir.join("nix/store/abc-x/lib");
        std::fs::create_dir_all(&obj).unwrap();
        let store = dir.join("nix/store");
        let mut c = FsCache::new(store.as_os_str().as_encoded_bytes());
        let lib = obj.as_os_str().as_encoded_bytes().to_vec();
        c.remember_plain(&lib);
        assert!(!c.plain_known(&lib), "a writable store object (being built) is remembered");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
