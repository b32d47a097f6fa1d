//! Load: one ptnix runs rounds of 20 concurrent `nix-build --check` (each a real build
//! of 60 files) beside shell loops that look up and run store programs, for a bounded
//! number of rounds. Afterwards: no failure, the tracer's memory (VmRSS) after the
//! last round no larger than after the first (its caches are bounded and full by
//! then), no zombie left behind, and every process gone when ptnix exits.

use ptnix_tests::nixenv::{descendants, process_alive, wait_for, NixStore};
use ptnix_tests::*;
use std::time::Duration;

const BUILDS: usize = 20;
const LOOPS: usize = 4;

/// The VmRSS of process `pid`, in KiB.
fn rss_kib(pid: i32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = s.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Processes below `pid` that are zombies.
fn zombies_below(pid: i32) -> Vec<i32> {
    descendants(pid)
        .into_iter()
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| s.rfind(')').map(|i| s[i + 1..].trim_start().starts_with('Z')))
                .unwrap_or(false)
        })
        .collect()
}

fn soak(m: Mode, rounds: usize) {
    let Some(ns) = NixStore::new(m) else { return };
    for i in 0..BUILDS {
        ns.write(&format!("s{i}.nix"), &ns.drv(&format!("soak-{i}"), "mkdir $out && i=0 && while [ $i -lt 60 ]; do echo $i > $out/f$i; i=$((i+1)); done"));
    }
    // Build once, so that every round can `--check` (rebuild and compare).
    let all: Vec<String> = (0..BUILDS).map(|i| format!("s{i}.nix")).collect();
    let mut first = vec!["nix-build".to_string(), "--no-out-link".to_string()];
    first.extend(all.iter().cloned());
    ns.nix(&first).ok();
    let bb = &ns.busybox;
    let work = ns.fx.work.display().to_string();
    let driver = format!(
        r#"
fail=0
for r in $(seq {rounds}); do
    pids=""
    for i in $(seq 0 {last}); do
        nix-build --check --no-out-link s$i.nix >/dev/null 2>build-$r-$i.log & pids="$pids $!"
    done
    for l in $(seq {LOOPS}); do
        ( n=0; while [ $n -lt 150 ]; do {bb}/sh -c 'test -d /nix/store' || exit 1; [ -e /nix/var/nix/db ] || exit 1; n=$((n+1)); done ) & pids="$pids $!"
    done
    for p in $pids; do wait $p || fail=$((fail+1)); done
    touch {work}/round-$r
    # Hold here until the test has looked at ptnix (memory, zombies).
    while [ ! -e {work}/go-$r ]; do sleep 0.05; done
done
echo failures $fail
"#,
        last = BUILDS - 1
    );
    let run = ns.cmd(&["/bin/sh", "-c", &driver]).timeout(Duration::from_secs(900)).spawn();
    let ptnix = run.pid();
    let mut rss = Vec::new();
    for r in 1..=rounds {
        let marker = ns.fx.work.join(format!("round-{r}"));
        wait_for(&format!("round {r}"), Duration::from_secs(600), || marker.exists());
        rss.push(rss_kib(ptnix));
        // A zombie that stays for a second is one nobody reaps.
        let z = zombies_below(ptnix);
        std::thread::sleep(Duration::from_secs(1));
        let stuck: Vec<i32> = zombies_below(ptnix).into_iter().filter(|p| z.contains(p)).collect();
        assert!(stuck.is_empty(), "zombies after round {r}: {stuck:?}");
        ns.fx.write(ns.fx.work.join(format!("go-{r}")), "");
    }
    let tree = descendants(ptnix);
    let out = run.wait();
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(out.stdout(), "failures 0\n", "{out}");
    // No process of the tree outlives ptnix.
    assert!(!tree.iter().any(|&p| process_alive(p)), "processes outlived ptnix: {tree:?}");
    // After the first round every cache holds what the workload needs; later rounds
    // repeat it. Allow the allocator 2 MiB of slack.
    eprintln!("ptnix VmRSS after each round, KiB: {rss:?}");
    let (warm, last) = (rss[0], *rss.last().unwrap());
    assert!(last <= warm + 2048, "ptnix grew from {warm} KiB after round 1 to {last} KiB after round {rounds}: {rss:?}");
    ns.verify();
    // Nothing world-writable in the store directory (symlinks aside).
    let find = std::process::Command::new("find").arg(&ns.fx.store).args(["-perm", "-0002", "!", "-type", "l"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&find.stdout), "", "world-writable files in the store directory");
}

#[test]
fn soak_seccomp() {
    soak(Mode::Seccomp, 8);
}

#[test]
fn soak_ptrace() {
    soak(Mode::Ptrace, 3);
}
