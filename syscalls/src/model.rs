//! An in-memory host filesystem implementing [`HostFs`] and [`ExecFs`], for tests,
//! fuzzing and benches: resolution and exec planning run against it without a tracee.

use crate::exec::ExecFs;
use crate::resolve::{DirCheck, HostFs, Kind};
use crate::Errno;
use hashbrown::HashMap;

#[derive(Clone, Debug)]
pub enum Node {
    Dir,
    File(Vec<u8>),
    Link(Vec<u8>),
    /// A procfs magic link whose readlink text is this host path.
    Magic(Vec<u8>),
}

/// Host path -> node. Paths are absolute and canonical; a path whose parent is
/// missing simply does not exist.
#[derive(Clone, Debug, Default)]
pub struct ModelFs {
    pub nodes: HashMap<Vec<u8>, Node>,
    /// Counts lstat, readlink and plain_dir calls (benches and tests look at it).
    pub lookups: u64,
    /// Answer `plain_dir` like openat2(RESOLVE_NO_SYMLINKS) (else: unsupported, as on
    /// kernels before 5.6).
    pub plain: bool,
}

impl ModelFs {
    pub fn new() -> ModelFs {
        let mut m = ModelFs::default();
        m.nodes.insert(b"/".to_vec(), Node::Dir);
        m
    }

    /// Adds `node` at `path`, creating missing parent directories.
    pub fn add(&mut self, path: &str, node: Node) -> &mut ModelFs {
        let p = path.as_bytes();
        let mut at = 1;
        while let Some(i) = memchr::memchr(b'/', &p[at..]) {
            self.nodes.entry(p[..at + i].to_vec()).or_insert(Node::Dir);
            at += i + 1;
        }
        self.nodes.insert(p.to_vec(), node);
        self
    }

    pub fn dir(&mut self, p: &str) -> &mut ModelFs {
        self.add(p, Node::Dir)
    }
    pub fn file(&mut self, p: &str, content: &[u8]) -> &mut ModelFs {
        self.add(p, Node::File(content.to_vec()))
    }
    pub fn link(&mut self, p: &str, target: &str) -> &mut ModelFs {
        self.add(p, Node::Link(target.as_bytes().to_vec()))
    }
}

impl HostFs for ModelFs {
    fn lstat(&mut self, host: &[u8]) -> Result<Kind, Errno> {
        self.lookups += 1;
        match self.nodes.get(host) {
            Some(Node::Dir) => Ok(Kind::Dir),
            Some(Node::File(_)) => Ok(Kind::Other),
            Some(Node::Link(_)) => Ok(Kind::Symlink),
            Some(Node::Magic(_)) => Ok(Kind::MagicLink),
            None => Err(libc::ENOENT),
        }
    }

    fn readlink(&mut self, host: &[u8]) -> Result<Vec<u8>, Errno> {
        self.lookups += 1;
        match self.nodes.get(host) {
            Some(Node::Link(t)) | Some(Node::Magic(t)) => Ok(t.clone()),
            Some(_) => Err(libc::EINVAL),
            None => Err(libc::ENOENT),
        }
    }

    fn plain_dir(&mut self, host: &[u8]) -> Option<DirCheck> {
        if !self.plain {
            return None;
        }
        self.lookups += 1;
        let mut p = Vec::with_capacity(host.len());
        for c in crate::path::components(host) {
            p.push(b'/');
            p.extend_from_slice(c);
            match self.nodes.get(&p) {
                Some(Node::Dir) => {}
                Some(Node::Link(_) | Node::Magic(_)) => return Some(DirCheck::Symlink),
                _ => return Some(DirCheck::Unreachable),
            }
        }
        Some(DirCheck::Plain)
    }
}

impl ModelFs {
    /// Follows symlinks at `host` (host view) to a file's content.
    fn content(&self, host: &[u8], depth: u32) -> Result<&[u8], Errno> {
        match self.nodes.get(host) {
            Some(Node::File(c)) => Ok(c),
            Some(Node::Dir) => Err(libc::EISDIR),
            Some(Node::Link(t)) | Some(Node::Magic(t)) if depth < 40 && t.first() == Some(&b'/') => {
                self.content(t, depth + 1)
            }
            Some(_) => Err(libc::ELOOP),
            None => Err(libc::ENOENT),
        }
    }
}

impl ExecFs for ModelFs {
    fn read_at(&mut self, host: &[u8], offset: u64, len: usize) -> Result<Vec<u8>, Errno> {
        let c = self.content(host, 0)?;
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(c.len());
        Ok(c[start..start.saturating_add(len).min(c.len())].to_vec())
    }

    fn may_exec(&mut self, host: &[u8]) -> Result<(), Errno> {
        self.content(host, 0).map(drop).map_err(|e| if e == libc::EISDIR { libc::EACCES } else { e })
    }

    fn loader_has_argv0(&mut self, host: &[u8]) -> bool {
        self.content(host, 0).is_ok_and(|c| memchr::memmem::find(c, b"--argv0").is_some())
    }
}
