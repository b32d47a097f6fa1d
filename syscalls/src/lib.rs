//! Pure logic of ptnix: nothing in this crate calls ptrace or touches a tracee.
//!
//! - [`table`]: which x86_64 syscalls carry paths, and how each is handled.
//! - [`bpf`]: the seccomp filter built from that table.
//! - [`mapping`]: the guest/host bind table (`/nix` -> `STORE/nix`).
//! - [`resolve`]: guest-view path resolution over a [`resolve::HostFs`].
//! - [`sockaddr`]: `sockaddr_un` parsing and building.

pub mod bpf;
pub mod dirent;
pub mod elf;
pub mod exec;
pub mod mapping;
pub mod model;
pub mod path;
pub mod procfs;
pub mod resolve;
pub mod shebang;
pub mod sockaddr;
pub mod table;

/// An errno value, positive (`libc::ENOENT`, ...).
pub type Errno = i32;
