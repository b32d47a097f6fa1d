//! Criterion benches of the syscall hot path: everything ptnix does per traced
//! syscall except the stop itself (which `benches/compare.sh` measures end to end).
//!
//! Baselines: `benches/run` compares a run's medians with `benches/baseline.txt` (kept
//! in the repository) and flags regressions; `benches/run --save` writes them there.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use ptnix_syscalls::bpf::{build_filter, build_filter_with, evaluate, SeccompData, AUDIT_ARCH_X86_64};
use ptnix_syscalls::table::Optional;
use ptnix_syscalls::dirent::{patch_names, record, Format, Synthetic};
use ptnix_syscalls::elf::{interpreter_in, synthetic_elf};
use ptnix_syscalls::exec::{plan, ExecRequest};
use ptnix_syscalls::mapping::Mapping;
use ptnix_syscalls::model::ModelFs;
use ptnix_syscalls::resolve::{resolve, DirCheck, HostFs, Kind, Request};
use ptnix_syscalls::Errno;
use std::collections::HashMap;
use ptnix_syscalls::shebang;

const DEEP: &[u8] = b"/nix/store/0123456789abcdfghijklmnpqrsvwxyz-glibc-2.40/share/locale/de/LC_MESSAGES/libc.mo";

fn store_fs(plain: bool) -> ModelFs {
    let mut f = ModelFs::new();
    f.file("/home/u/.local/share/nix/root/nix/store/0123456789abcdfghijklmnpqrsvwxyz-glibc-2.40/share/locale/de/LC_MESSAGES/libc.mo", b"")
        .link("/home/u/.nix-profile", "/nix/var/nix/profiles/per-user/u/profile")
        .link("/home/u/.local/share/nix/root/nix/var/nix/profiles/per-user/u/profile", "profile-1-link")
        .link("/home/u/.local/share/nix/root/nix/var/nix/profiles/per-user/u/profile-1-link", "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-glibc-2.40")
        .file("/usr/include/stdio.h", b"");
    f.plain = plain;
    f
}

/// A filesystem whose answers are remembered, as the tracer's `fscache` remembers them
/// inside immutable store objects: resolution then makes no lookup at all.
struct Cached {
    fs: ModelFs,
    dirs: HashMap<Vec<u8>, Option<DirCheck>>,
    entries: HashMap<Vec<u8>, Result<Kind, Errno>>,
}

impl HostFs for Cached {
    fn lstat(&mut self, host: &[u8]) -> Result<Kind, Errno> {
        if let Some(r) = self.entries.get(host) {
            return *r;
        }
        let r = self.fs.lstat(host);
        self.entries.insert(host.to_vec(), r);
        r
    }
    fn readlink(&mut self, host: &[u8]) -> Result<Vec<u8>, Errno> {
        self.fs.readlink(host)
    }
    fn plain_dir(&mut self, host: &[u8]) -> Option<DirCheck> {
        if let Some(r) = self.dirs.get(host) {
            return *r;
        }
        let r = self.fs.plain_dir(host);
        self.dirs.insert(host.to_vec(), r);
        r
    }
}

fn translation(c: &mut Criterion) {
    let map = Mapping::for_store(b"/home/u/.local/share/nix/root").unwrap();
    let mut g = c.benchmark_group("resolve");
    for (name, plain) in [("walk", false), ("fast_path", true)] {
        let mut fs = store_fs(plain);
        g.bench_function(format!("deep_store_path_{name}"), |b| {
            b.iter(|| resolve(&map, &mut fs, b"/", Request { path: black_box(DEEP), follow_last: true, ..Default::default() }))
        });
        g.bench_function(format!("host_path_{name}"), |b| {
            b.iter(|| resolve(&map, &mut fs, b"/", Request { path: black_box(b"/usr/include/stdio.h"), follow_last: true, ..Default::default() }))
        });
        g.bench_function(format!("profile_symlinks_{name}"), |b| {
            b.iter(|| {
                resolve(&map, &mut fs, b"/", Request { path: black_box(b"/home/u/.nix-profile/share/locale/de"), follow_last: true, ..Default::default() })
            })
        });
    }
    let mut cached = Cached { fs: store_fs(true), dirs: HashMap::new(), entries: HashMap::new() };
    g.bench_function("deep_store_path_cached", |b| {
        b.iter(|| resolve(&map, &mut cached, b"/", Request { path: black_box(DEEP), follow_last: true, ..Default::default() }))
    });
    let mut fs = store_fs(true);
    g.bench_function("lone_relative_name", |b| {
        b.iter(|| resolve(&map, &mut fs, b"/usr/include", Request { path: black_box(b"stdio.h"), ..Default::default() }))
    });
    g.finish();
    c.bench_function("mapping/to_guest", |b| {
        b.iter(|| map.to_guest(black_box(b"/home/u/.local/share/nix/root/nix/store/0123456789abcdfghijklmnpqrsvwxyz-glibc-2.40")))
    });
}

fn listing(c: &mut Criterion) {
    let nix = [Synthetic { name: b"nix".to_vec(), ino: 42, d_type: libc::DT_DIR }];
    let mut buf = Vec::new();
    for i in 0..400u64 {
        let name = format!("{i:032}-some-package-1.0");
        buf.extend(record(Format::Dirent64, &Synthetic { name: name.into_bytes(), ino: i, d_type: libc::DT_DIR }, i + 1));
    }
    c.bench_function("getdents/patch_32k_buffer", |b| b.iter(|| patch_names(Format::Dirent64, black_box(&mut buf), &nix)));
}

fn filter(c: &mut Criterion) {
    let prog = build_filter();
    let mut g = c.benchmark_group("bpf");
    for (name, nr) in [("read_untraced", 0u32), ("openat_traced", 257), ("getdents64_traced", 217)] {
        let data = SeccompData { nr, arch: AUDIT_ARCH_X86_64, ip: 0, args: [0; 6] };
        g.bench_function(name, |b| b.iter(|| evaluate(&prog, black_box(&data))));
    }
    // With a listing base (the tracer's default): getdents of an ordinary directory
    // and an fcntl that copies nothing are decided in BPF.
    let based = build_filter_with(Optional { listing_fd_base: 512, ..Optional::default() });
    for (name, nr, args) in [("getdents64_low_fd_untraced", 217u32, [3u64, 0, 0, 0, 0, 0]), ("fcntl_getfl_untraced", 72, [600, 3, 0, 0, 0, 0])] {
        let data = SeccompData { nr, arch: AUDIT_ARCH_X86_64, ip: 0, args };
        g.bench_function(name, |b| b.iter(|| evaluate(&based, black_box(&data))));
    }
    g.finish();
}

fn exec_lookup(c: &mut Criterion) {
    let sh = std::fs::read("/bin/sh").unwrap();
    c.bench_function("exec/elf_interpreter_of_bin_sh", |b| b.iter(|| interpreter_in(black_box(&sh))));
    c.bench_function("exec/shebang", |b| b.iter(|| shebang::parse(black_box(b"#!/nix/store/abc-bash-5.2/bin/bash -e\n"))));
    let map = Mapping::for_store(b"/s").unwrap();
    let mut fs = ModelFs::new();
    fs.file("/s/nix/store/g/lib/ld-linux-x86-64.so.2", b"\x7fELF --argv0")
        .file("/s/nix/store/b/bin/bash", &synthetic_elf(Some(b"/nix/store/g/lib/ld-linux-x86-64.so.2")))
        .file("/s/nix/store/s/bin/script", b"#!/nix/store/b/bin/bash\n")
        .dir("/home/u");
    fs.plain = true;
    c.bench_function("exec/plan_store_script", |b| {
        b.iter(|| {
            plan(&map, &mut fs, ExecRequest { filename: black_box(b"/nix/store/s/bin/script"), argv0: b"script", cwd: b"/home/u", cwd_relative: true, follow_last: true, fd_name: None })
        })
    });
}

fn tracee_memory(c: &mut Criterion) {
    use ptnix_tracer::{mem, testing};
    static mut BUF: [u8; 8192] = [b'a'; 8192];
    let pid = testing::stopped_child();
    let base = std::ptr::addr_of!(BUF) as u64;
    mem::write(pid, base, b"/nix/store/abc-hello-2.12/bin/hello\0").unwrap();
    let mut long = vec![b'x'; 3000];
    long.push(0);
    mem::write(pid, base + 4096, &long).unwrap();
    c.bench_function("mem/read_short_path", |b| b.iter(|| mem::read_path(pid, black_box(base)).unwrap()));
    c.bench_function("mem/read_3000_byte_path", |b| b.iter(|| mem::read_path(pid, black_box(base + 4096)).unwrap()));
    testing::kill(pid);
}

criterion_group!(benches, translation, listing, filter, exec_lookup, tracee_memory);
criterion_main!(benches);
