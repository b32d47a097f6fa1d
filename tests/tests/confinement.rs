//! What ptnix refuses, so that "/" keeps meaning what it translates against: user
//! namespaces (unshare and clone, clone3), mount, chroot, setns all fail with EPERM;
//! 32-bit (int 0x80) and x32 syscalls, which it does not translate, are refused
//! rather than reaching the host's /nix untranslated, and so is io_uring, whose
//! operations take paths without a syscall.

use ptnix_tests::*;
use std::path::Path;

both_modes! {
    fn namespaces_mount_chroot_refused(m: Mode) {
        require!(Cc);
        let fx = Fixture::new(m);
        fx.run(&[c_prog("ns")]).expect_stdout(
            "unshare_user EPERM\nunshare_user_mnt EPERM\nunshare_mnt EPERM\nclone_user EPERM\n\
             clone3_user EPERM\nchroot EPERM\nmount EPERM\nsetns EPERM\nio_uring_setup ENOSYS\n",
        );
    }

    /// A host-only directory opened through the i386 or x32 ABI must not open.
    fn abi32_syscalls_refused(m: Mode) {
        require!(Cc);
        let fx = Fixture::new(m);
        // Something that exists on the host but not in the guest: the host's /nix if
        // it has one, else a path that only the test's host view has.
        let target = if Path::new("/nix/var/nix").is_dir() { "/nix/var/nix".to_string() } else { fx.work.display().to_string() };
        let out = fx.run(&[c_prog("abi32").as_os_str(), target.as_ref()]);
        match out.status.code() {
            Some(0) => {
                for l in out.stdout().lines() {
                    assert!(!l.ends_with(" FD"), "a 32-bit-ABI syscall bypassed ptnix: {l}\n{out}");
                }
                assert_eq!(out.stdout().lines().count(), 3, "\n{out}");
            }
            // Killing the process is also a refusal (128+SIGSYS, 128+SIGKILL, ...).
            Some(c) if c > 128 => {}
            _ => panic!("unexpected result\n{out}"),
        }
    }
}

both_modes! {
    /// A tracee with a seccomp filter of its own (as Nix's builder has): its ERRNO
    /// actions win as natively, its SECCOMP_RET_TRACE fails with ENOSYS as it does
    /// without a tracer (also for a syscall ptnix itself stops, and in a child that
    /// inherits the filter), and everything else is still translated.
    fn tracee_with_its_own_seccomp_filter(m: Mode) {
        require!(Cc);
        let fx = Fixture::new(m);
        let native_dir = fx.work.join("native");
        fx.write(native_dir.join("FILE"), "content");
        fx.write(fx.host("/nix/store/own/FILE"), "content");
        let prog = c_prog("ownfilter");
        let native = fx.plain(&[prog.as_os_str(), native_dir.as_os_str()]).run().ok();
        let expected = "parent mkdir EPERM\nparent getppid ENOSYS\nparent symlink ENOSYS\nparent read content\nparent stat OK\n\
                        child mkdir EPERM\nchild getppid ENOSYS\nchild symlink ENOSYS\nchild read content\nchild stat OK\n";
        assert_eq!(native.stdout(), expected, "the kernel's own behaviour changed?\n{native}");
        fx.run(&[prog.as_os_str(), "/nix/store/own".as_ref()]).expect_stdout(expected);
    }
}
