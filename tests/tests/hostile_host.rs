//! Hosts where ptnix cannot work, or works in a degraded way, simulated with a seccomp
//! policy around ptnix (`tests/c/deny.c`), as a locked-down container imposes one:
//! `ptnix doctor` says so and exits 1, `ptnix run` refuses with a clear message and
//! exit status 125 and never runs the command untranslated; without process_vm_readv
//! or seccomp, ptnix still works, more slowly.

use ptnix_tests::*;

const PTRACE: &str = "101";
const PROCESS_VM_READV_WRITEV: &str = "310,311";
const SECCOMP_AND_PRCTL: &str = "317,157";

fn denied(fx: &Fixture, nrs: &str, args: &[&str]) -> Output {
    let mut argv: Vec<String> = vec![nrs.to_string(), ptnix_tests::env::env().ptnix.display().to_string()];
    argv.extend(args.iter().map(|s| s.to_string()));
    fx.plain(&std::iter::once(c_prog("deny").display().to_string()).chain(argv).collect::<Vec<_>>()).run()
}

#[test]
fn without_ptrace_doctor_fails_and_run_refuses() {
    require!(Cc, Sh);
    let fx = Fixture::new(Mode::Seccomp);
    let doc = denied(&fx, PTRACE, &["doctor", "--store", fx.store.to_str().unwrap()]);
    assert_eq!(doc.code(), 1, "{doc}");
    assert!(doc.stdout().lines().any(|l| l.starts_with("fail ptrace is not permitted")), "{doc}");
    let quiet = denied(&fx, PTRACE, &["doctor", "--quiet"]);
    assert_eq!((quiet.code(), quiet.stdout()), (1, String::new()), "{quiet}");

    let marker = fx.work.join("ran");
    let run = denied(&fx, PTRACE, &["run", "--store", fx.store.to_str().unwrap(), "--", "/bin/sh", "-c", &format!("touch {}", marker.display())]);
    assert_eq!(run.code(), 125, "{run}");
    assert!(run.stderr().starts_with("ptnix: ") && run.stderr().contains("ptrace"), "{run}");
    assert!(!marker.exists(), "the command ran without ptnix");
}

#[test]
fn without_process_vm_readv_it_still_works() {
    require!(Cc, Sh, Coreutils);
    let fx = Fixture::new(Mode::Seccomp);
    let doc = denied(&fx, PROCESS_VM_READV_WRITEV, &["doctor", "--store", fx.store.to_str().unwrap()]);
    assert_eq!(doc.code(), 0, "{doc}");
    assert!(doc.stdout().lines().any(|l| l.starts_with("warn process_vm_readv fails")), "{doc}");
    assert!(doc.stdout().lines().any(|l| l.starts_with("warn seccomp user notifications are not used")), "{doc}");
    fx.write(fx.host("/nix/store/x/f"), "via peekdata");
    let run = denied(&fx, PROCESS_VM_READV_WRITEV, &["run", "--store", fx.store.to_str().unwrap(), "--", "/bin/cat", "/nix/store/x/f"]);
    assert_eq!((run.code(), run.stdout()), (0, "via peekdata".to_string()), "{run}");
}

#[test]
fn without_seccomp_it_falls_back_to_pure_ptrace() {
    require!(Cc, Sh, Coreutils);
    let fx = Fixture::new(Mode::Seccomp);
    let doc = denied(&fx, SECCOMP_AND_PRCTL, &["doctor", "--store", fx.store.to_str().unwrap()]);
    assert!(doc.stdout().lines().any(|l| l.starts_with("warn seccomp filters cannot be installed")), "{doc}");
    fx.write(fx.host("/nix/store/x/f"), "no filter");
    let run = denied(&fx, SECCOMP_AND_PRCTL, &["run", "--store", fx.store.to_str().unwrap(), "--", "/bin/cat", "/nix/store/x/f"]);
    assert_eq!((run.code(), run.stdout()), (0, "no filter".to_string()), "{run}");
}
