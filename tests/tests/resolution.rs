//! Path resolution parity, randomized: hundreds of generated paths mixing `.`, `..`,
//! `//`, trailing slashes, symlinks to files and directories, dangling links, loops,
//! non-UTF-8 names, given absolute, relative to the cwd and relative to a dirfd.
//! Every path gets stat, lstat, open (plain, O_NOFOLLOW, O_PATH), readlink, listdir,
//! access and chdir+getcwd, once under ptnix on /nix/t and once without ptnix on an
//! identical tree; the results must match. The seed is fixed (PTNIX_TEST_SEED
//! overrides it) so a failure reproduces.

use ptnix_tests::*;
use std::path::Path;

fn build(fx: &Fixture, nix: &Path) {
    let t = nix.join("t");
    fx.write(t.join("f"), "F");
    fx.write(t.join("d/g"), "GG");
    fx.write(t.join("d/sub/h"), "HHH");
    fx.symlink("../f", t.join("d/up"));
    fx.mkdirs(&t.join("e"));
    fx.symlink("d", t.join("linkd"));
    fx.symlink("f", t.join("linkf"));
    fx.symlink("d/sub", t.join("linksub"));
    fx.symlink("nothere", t.join("dang"));
    fx.symlink("loop2", t.join("loop1"));
    fx.symlink("loop1", t.join("loop2"));
    fx.symlink("self", t.join("self"));
    fx.symlink(".", t.join("dotlink"));
    fx.write(
        t.join(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b"\xffbin")),
        "X",
    );
}

/// Components and how deep each takes the path at most, so a generated `..` never
/// climbs above /nix/t (above it, the guest and reference trees differ by design).
const COMPONENTS: &[(&[u8], i32)] = &[
    (b"f", 1),
    (b"d", 1),
    (b"e", 1),
    (b"g", 1),
    (b"sub", 1),
    (b"h", 1),
    (b"up", 1),
    (b"linkd", 1),
    (b"linkf", 1),
    (b"linksub", 2),
    (b"dang", 1),
    (b"loop1", 1),
    (b"self", 1),
    (b"\xffbin", 1),
    (b"dotlink", 0),
    (b"missing", 1),
    (b".", 0),
    (b"", 0),
];

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Relative paths (to /nix/t), NUL-separated.
fn generate(seed: u64, n: usize) -> Vec<u8> {
    let mut rng = Rng(seed | 1);
    let mut out = Vec::new();
    for _ in 0..n {
        let mut depth = 0i32;
        let mut parts: Vec<&[u8]> = Vec::new();
        for _ in 0..1 + rng.below(5) {
            if depth > 0 && rng.below(5) == 0 {
                parts.push(b"..");
                depth -= 1;
            } else {
                let (c, d) = COMPONENTS[rng.below(COMPONENTS.len())];
                parts.push(c);
                depth += d;
            }
        }
        let mut p = parts.join(&b'/');
        match rng.below(6) {
            0 => p.push(b'/'),
            1 => p.extend_from_slice(b"/."),
            _ => {}
        }
        out.extend_from_slice(&p);
        out.push(0);
    }
    out
}

const PROBE: &str = r#"
import os, sys, stat, errno
base = os.fsencode(sys.argv[1])
paths = open(sys.argv[2], 'rb').read().split(b'\0')[:-1]
bfd = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
def kind(st):
    m = st.st_mode
    if stat.S_ISREG(m): return 'reg:%d' % st.st_size
    if stat.S_ISDIR(m): return 'dir'
    if stat.S_ISLNK(m): return 'lnk:%d' % st.st_size
    return 'other'
def run(f):
    try: return f()
    except OSError as e: return errno.errorcode[e.errno]
def opened(q, flags, **kw):
    fd = os.open(q, flags, **kw)
    try: return kind(os.fstat(fd)) + ' ' + os.fsdecode(os.readlink('/proc/self/fd/%d' % fd))
    finally: os.close(fd)
def cd(q):
    os.chdir(q)
    try: return os.fsdecode(os.getcwdb())
    finally: os.fchdir(bfd)
for i, rel in enumerate(paths):
    forms = [('abs', base + b'/' + rel, {}), ('cwd', rel or b'.', {}), ('dirfd', rel or b'.', {'dir_fd': bfd})]
    for form, q, kw in forms:
        os.fchdir(bfd)
        r = [
            run(lambda: kind(os.stat(q, **kw))),
            run(lambda: kind(os.stat(q, follow_symlinks=False, **kw))),
            run(lambda: opened(q, os.O_RDONLY, **kw)),
            run(lambda: opened(q, os.O_RDONLY | os.O_NOFOLLOW, **kw)),
            run(lambda: opened(q, os.O_PATH | os.O_NOFOLLOW, **kw)),
            run(lambda: os.fsdecode(os.readlink(q, **kw))),
            run(lambda: str(os.access(q, os.F_OK, **kw))),
        ]
        if form != 'dirfd':
            r.append(run(lambda: ','.join(sorted(os.fsdecode(x) for x in os.listdir(q)))))
            r.append(run(lambda: cd(q)))
        print('== %d %s %r' % (i, form, rel))
        print(' | '.join(r))
"#;

both_modes! {
    fn random_paths_resolve_like_the_kernel(m: Mode) {
        require!(Python3);
        let fx = Fixture::new(m);
        let roots = ParityRoots::new(&fx);
        roots.build(|nix| build(&fx, nix));
        let seed = std::env::var("PTNIX_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_2024_u64);
        let list = fx.work.join("paths");
        fx.write(&list, generate(seed, 300));
        let list = list.to_str().unwrap();
        let guest = fx.run(&[PYTHON, "-c", PROBE, "/nix/t", list]);
        let reference = fx.plain(&[PYTHON, "-c", PROBE, &format!("{}/t", roots.ref_prefix()), list]).run();
        assert!(reference.status.success(), "the probe itself failed (seed {seed})\n{reference}");
        assert_same(&guest, &reference, &roots.ref_prefix());
    }
}
