//! Changing the tree under /nix: create, rename, hard link, symlink, chmod, truncate,
//! utimes, mkfifo, unlink, mkdir/rmdir; each checked on the host side in STORE/nix.

use ptnix_tests::*;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

both_modes! {
    /// The coreutils way.
    fn coreutils_changes_land_in_store(m: Mode) {
        require!(Sh, Coreutils);
        let fx = Fixture::new(m);
        fx.sh("set -e
               mkdir /nix/store/dir
               mkdir -p /nix/store/a/b/c
               echo data > /nix/store/dir/file
               mv /nix/store/dir/file /nix/store/dir/renamed
               ln /nix/store/dir/renamed /nix/store/dir/hard
               ln -s /nix/store/dir/renamed /nix/store/dir/sym
               ln -L /nix/store/dir/sym /nix/store/dir/hard-via-sym
               ln -s ../dir/renamed /nix/store/a/relsym
               chmod 0640 /nix/store/dir/renamed
               truncate -s 3 /nix/store/dir/hard
               touch -d @1000000000 /nix/store/dir/renamed
               mkfifo /nix/store/dir/fifo
               rmdir /nix/store/a/b/c
               echo x > /nix/store/dir/tmp && rm /nix/store/dir/tmp
               cat /nix/store/dir/sym; echo; cat /nix/store/a/relsym; echo")
            .expect_stdout("dat\ndat\n");
        let h = |g: &str| fx.host(g);
        let renamed = fs::symlink_metadata(h("/nix/store/dir/renamed")).unwrap();
        assert_eq!(fx.read(h("/nix/store/dir/renamed")), b"dat");
        assert_eq!(renamed.permissions().mode() & 0o7777, 0o640);
        assert_eq!(renamed.nlink(), 3);
        assert_eq!(renamed.ino(), fs::metadata(h("/nix/store/dir/hard")).unwrap().ino());
        // ln -L: linkat(AT_SYMLINK_FOLLOW) links the symlink's (guest) target.
        let via = fs::symlink_metadata(h("/nix/store/dir/hard-via-sym")).unwrap();
        assert_eq!(via.ino(), renamed.ino(), "ln -L did not link the target of the /nix symlink");
        assert_eq!(renamed.mtime(), 1_000_000_000);
        // Symlink targets are stored as the guest wrote them, never translated.
        assert_eq!(fs::read_link(h("/nix/store/dir/sym")).unwrap().to_str(), Some("/nix/store/dir/renamed"));
        assert_eq!(fs::read_link(h("/nix/store/a/relsym")).unwrap().to_str(), Some("../dir/renamed"));
        assert!(fs::symlink_metadata(h("/nix/store/dir/fifo")).unwrap().file_type().is_fifo());
        assert!(h("/nix/store/a/b").is_dir());
        assert!(!h("/nix/store/a/b/c").exists());
        assert!(!h("/nix/store/dir/file").exists());
        assert!(!h("/nix/store/dir/tmp").exists());
    }

    /// The python way (different syscalls: truncate(2), utimensat with a path,
    /// link(2) on a symlink, replace, removedirs).
    fn python_changes_land_in_store(m: Mode) {
        require!(Python3);
        let fx = Fixture::new(m);
        let code = r#"
import os
os.makedirs('/nix/store/p/q/r')
with open('/nix/store/p/f', 'wb') as f: f.write(b'0123456789')
os.truncate('/nix/store/p/f', 4)
os.chmod('/nix/store/p/f', 0o600)
os.utime('/nix/store/p/f', ns=(2_000_000_000 * 10**9, 2_000_000_000 * 10**9))
os.symlink('f', '/nix/store/p/lnk')
os.link('/nix/store/p/f', '/nix/store/p/hard-to-target')
# link(2) does not follow a symlink: this links the symlink itself.
os.link('/nix/store/p/lnk', '/nix/store/p/hard-to-link')
os.replace('/nix/store/p/f', '/nix/store/p/q/f2')
os.removedirs('/nix/store/p/q/r')
os.mkfifo('/nix/store/p/fifo')
print(sorted(os.listdir('/nix/store/p')))
"#;
        fx.py(code, &[] as &[&str]).expect_stdout("['fifo', 'hard-to-link', 'hard-to-target', 'lnk', 'q']\n");
        let f2 = fx.host("/nix/store/p/q/f2");
        let md = fs::metadata(&f2).unwrap();
        assert_eq!(fx.read(&f2), b"0123");
        assert_eq!(md.permissions().mode() & 0o7777, 0o600);
        assert_eq!(md.mtime(), 2_000_000_000);
        assert_eq!(md.ino(), fs::metadata(fx.host("/nix/store/p/hard-to-target")).unwrap().ino());
        assert!(fs::symlink_metadata(fx.host("/nix/store/p/hard-to-link")).unwrap().file_type().is_symlink());
        assert!(!fx.host("/nix/store/p/q/r").exists());
    }

    /// Moving trees between the host and /nix, copying in, deleting recursively.
    fn trees_in_and_out(m: Mode) {
        require!(Sh, Coreutils);
        let fx = Fixture::new(m);
        fx.write(fx.home.join("src/a/one"), "1\n");
        fx.write(fx.home.join("src/b/two"), "2\n");
        fx.sh("set -e
               cp -r $HOME/src /nix/store/copied
               mv $HOME/src /nix/store/moved
               mv /nix/store/moved/b $HOME/back
               rm -r /nix/store/copied/a
               find /nix/store | sort")
            .expect_stdout(
                "/nix/store\n/nix/store/copied\n/nix/store/copied/b\n/nix/store/copied/b/two\n\
                 /nix/store/moved\n/nix/store/moved/a\n/nix/store/moved/a/one\n",
            );
        assert_eq!(fx.read_string(fx.host("/nix/store/moved/a/one")), "1\n");
        assert_eq!(fx.read_string(fx.home.join("back/two")), "2\n");
        assert!(!fx.home.join("src").exists());
        assert!(!fx.host("/nix/store/copied/a").exists());
    }
}
