//! getcwd and friends report guest paths: `cd /nix/store && pwd -P`, python's
//! os.getcwd(), the raw syscall with tight buffers, fchdir, a cwd reached through a
//! symlink, and a deleted cwd.

use ptnix_tests::*;

both_modes! {
    fn shell_pwd(m: Mode) {
        require!(Sh, Coreutils);
        let fx = Fixture::new(m);
        fx.mkdirs(&fx.host("/nix/store/d"));
        fx.symlink("/nix/store/d", fx.home.join("link"));
        fx.sh("cd /nix/store && pwd -P && /bin/pwd && /bin/pwd -P && env | grep ^PWD= && cd ~/link && pwd -P && /bin/pwd")
            .expect_stdout("/nix/store\n/nix/store\n/nix/store\nPWD=/nix/store\n/nix/store/d\n/nix/store/d\n");
    }

    fn python_getcwd(m: Mode) {
        require!(Python3);
        let fx = Fixture::new(m);
        let code = r#"
import os, errno
start = os.getcwd()
print(start == os.environ['HOME'].rsplit('/', 1)[0] + '/work')
os.chdir('/nix/store'); print(os.getcwd(), os.getcwdb())
os.mkdir('sub'); os.chdir('sub'); print(os.getcwd())
fd = os.open('/nix/var', os.O_RDONLY | os.O_DIRECTORY); os.fchdir(fd); print(os.getcwd())
os.chdir(start); print(os.getcwd() == start)
os.mkdir('/nix/store/gone'); os.chdir('/nix/store/gone'); os.rmdir('/nix/store/gone')
try: print(os.getcwd())
except OSError as e: print(errno.errorcode[e.errno])
"#;
        fx.py(code, &[] as &[&str])
            .expect_stdout("True\n/nix/store b'/nix/store'\n/nix/store/sub\n/nix/var\nTrue\nENOENT\n");
    }

    /// The raw syscall: returned length counts the guest path, and the buffer-size
    /// errors follow the guest path's length.
    fn raw_getcwd(m: Mode) {
        require!(Cc);
        let fx = Fixture::new(m);
        fx.mkdirs(&fx.host("/nix/store/sub"));
        let work = fx.work.display().to_string();
        fx.run(&[c_prog("getcwd").as_os_str(), "/nix/store".as_ref(), "sub".as_ref(), "..".as_ref(), "../..".as_ref(), "/nix/var/nix".as_ref(), fx.work.as_os_str(), "/nix/missing".as_ref()])
            .expect_stdout(&format!(
                "/nix/store len=11 exact=OK short=ERANGE\n/nix/store/sub len=15 exact=OK short=ERANGE\n\
                 /nix/store len=11 exact=OK short=ERANGE\n/ len=2 exact=OK short=ERANGE\n\
                 /nix/var/nix len=13 exact=OK short=ERANGE\n{work} len={} exact=OK short=ERANGE\nchdir /nix/missing: ENOENT\n",
                work.len() + 1
            ));
    }
}
