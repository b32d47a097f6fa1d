//! Paths into /nix: absolute, relative to the cwd, relative to a directory fd; what
//! lands where on the host; `..` leaving /nix; non-UTF-8 names.

use ptnix_tests::*;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

both_modes! {
    /// A file written at an absolute /nix path lands in STORE/nix and reads back; a file
    /// the host puts in STORE/nix is visible at /nix.
    fn absolute_paths(m: Mode) {
        require!(Sh, Coreutils);
        let fx = Fixture::new(m);
        fx.write(fx.host("/nix/store/fromhost"), "from host\n");
        fx.sh("echo hello > /nix/store/abs && cat /nix/store/abs /nix/store/fromhost")
            .expect_stdout("hello\nfrom host\n");
        assert_eq!(fx.read_string(fx.host("/nix/store/abs")), "hello\n");
        assert!(!Path::new("/nix/store/abs").exists(), "the host's own /nix was written to");
    }

    /// Relative paths resolve against a cwd inside /nix; outside /nix they stay host paths.
    fn relative_paths(m: Mode) {
        require!(Sh, Coreutils);
        let fx = Fixture::new(m);
        fx.sh("echo outside > here && cd /nix/store && echo rel > rel && cat ./rel && cd .. \
               && cat store/rel ./store/../store/rel && mkdir store/sub && cd store/sub && cat ../rel")
            .expect_stdout("rel\nrel\nrel\nrel\n");
        assert_eq!(fx.read_string(fx.host("/nix/store/rel")), "rel\n");
        assert!(fx.host("/nix/store/sub").is_dir());
        assert_eq!(fx.read_string(fx.work.join("here")), "outside\n");
    }

    /// The *at() calls: a dirfd inside /nix, a dirfd outside /nix whose relative path
    /// climbs into /nix, an absolute path that ignores the dirfd, and fchdir.
    fn dirfd_relative_paths(m: Mode) {
        require!(Python3);
        let fx = Fixture::new(m);
        let code = r#"
import os
d = os.open('/nix/store', os.O_RDONLY | os.O_DIRECTORY)
fd = os.open('viafd', os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=d)
os.write(fd, b'dirfd\n'); os.close(fd)
os.mkdir('sub', dir_fd=d)
os.rename('viafd', 'sub/moved', src_dir_fd=d, dst_dir_fd=d)
os.symlink('moved', 'sub/ln', dir_fd=d)
s = os.open('sub', os.O_RDONLY | os.O_DIRECTORY, dir_fd=d)
print(os.readlink('ln', dir_fd=s))
print(os.stat('ln', dir_fd=s).st_size, os.stat('ln', dir_fd=s, follow_symlinks=False).st_size)
print(sorted(os.listdir(s)))
os.chmod('sub', 0o750, dir_fd=d)
os.link('sub/moved', 'hard', src_dir_fd=d, dst_dir_fd=d)
w = os.open('.', os.O_RDONLY | os.O_DIRECTORY)
up = '../' * 12
print(open(os.open(up + 'nix/store/sub/moved', os.O_RDONLY, dir_fd=w)).read(), end='')
print(os.stat('/nix/store/hard', dir_fd=w).st_nlink)
os.fchdir(s)
print(open('moved').read(), end='')
os.unlink('ln', dir_fd=s)
print(os.access('moved', os.R_OK, dir_fd=s), os.path.lexists('/nix/store/sub/ln'))
"#;
        fx.py(code, &[] as &[&str])
            .expect_stdout("moved\n6 5\n['ln', 'moved']\ndirfd\n2\ndirfd\nTrue False\n");
        let moved = fx.host("/nix/store/sub/moved");
        assert_eq!(fx.read_string(&moved), "dirfd\n");
        assert_eq!(std::fs::metadata(fx.host("/nix/store/sub")).unwrap().permissions().mode() & 0o7777, 0o750);
        assert_eq!(std::fs::metadata(&moved).unwrap().ino(), std::fs::metadata(fx.host("/nix/store/hard")).unwrap().ino());
        assert!(!fx.host("/nix/store/viafd").exists());
        assert!(std::fs::symlink_metadata(fx.host("/nix/store/sub/ln")).is_err());
    }

    /// `..` leaves /nix for the real root: /nix/.. is /, and paths climb out of /nix
    /// into host directories (absolute, relative to the cwd, and via a dirfd).
    fn dotdot_leaves_nix(m: Mode) {
        require!(Sh, Coreutils, Python3);
        let fx = Fixture::new(m);
        fx.write(fx.host("/nix/store/f"), "in store\n");
        fx.sh("set -e
               cmp /nix/store/../../etc/passwd /etc/passwd && echo abs-same
               cd /nix/store && cmp ../../etc/passwd /etc/passwd && echo rel-same
               test \"$(stat -c %d:%i /nix/..)\" = \"$(stat -c %d:%i /)\" && echo root-same
               test \"$(ls -a /nix/store/../../../..)\" = \"$(ls -a /)\" && echo ls-same
               cat /nix/store/../../nix/store/f
               cd /nix/store && cd ../.. && pwd && pwd -P && /bin/pwd")
            .expect_stdout("abs-same\nrel-same\nroot-same\nls-same\nin store\n/\n/\n/\n");
        let code = r#"
import os
print(os.path.samestat(os.stat('/nix/..'), os.stat('/')))
d = os.open('/nix/store', os.O_RDONLY | os.O_DIRECTORY)
print(os.path.samestat(os.stat('../..', dir_fd=d), os.stat('/')))
print(os.path.samestat(os.stat('../../etc', dir_fd=d), os.stat('/etc')))
os.chdir('/nix/store'); os.chdir('../..'); print(os.getcwd())
"#;
        fx.py(code, &[] as &[&str]).expect_stdout("True\nTrue\nTrue\n/\n");
    }

    /// Names that are not UTF-8 pass through byte for byte, both ways (listing,
    /// getcwd, symlink targets).
    fn non_utf8_names(m: Mode) {
        require!(Sh, Coreutils, Python3);
        let fx = Fixture::new(m);
        fx.write(fx.host(b"/nix/store/host-\xe9\xff"), "latin1\n");
        let code = r#"
import os
open(b'/nix/store/\xff\xfe-guest', 'w').write('guest\n')
os.mkdir(b'/nix/store/d\x80ir')
os.symlink(b'/nix/store/\xff\xfe-guest', b'/nix/store/d\x80ir/l\xff')
print(sorted(x for x in os.listdir(b'/nix/store') if x != b'd\x80ir'))
print(open(b'/nix/store/host-\xe9\xff').read(), end='')
print(open(b'/nix/store/d\x80ir/l\xff').read(), end='')
print(os.readlink(b'/nix/store/d\x80ir/l\xff'))
os.chdir(b'/nix/store/d\x80ir'); print(os.getcwdb())
"#;
        fx.py(code, &[] as &[&str]).expect_stdout(
            "[b'host-\\xe9\\xff', b'\\xff\\xfe-guest']\nlatin1\nguest\nb'/nix/store/\\xff\\xfe-guest'\nb'/nix/store/d\\x80ir'\n",
        );
        assert_eq!(fx.read_string(fx.host(b"/nix/store/\xff\xfe-guest")), "guest\n");
        let link = std::fs::read_link(fx.host(b"/nix/store/d\x80ir/l\xff")).unwrap();
        assert_eq!(link.as_os_str(), OsStr::from_bytes(b"/nix/store/\xff\xfe-guest"));
        // A shell too: printf builds the name, ls shows it back escaped.
        fx.sh(r"touch /nix/store/$(printf 'caf\351') && ls -b /nix/store | grep caf")
            .expect_stdout("caf\\351\n");
        assert!(fx.host(b"/nix/store/caf\xe9").is_file());
    }
}
