//! The command line (clap's builder API: ptnix has no proc-macro dependencies, which
//! keeps the static build simple).

use clap::{Arg, ArgAction, Command};

const EXAMPLES: &str = "\
Examples:
  ptnix run -- nix-store --init             # first run: creates the store
  ptnix run -- nix build nixpkgs#hello      # any Nix command
  ptnix run                                 # a shell that sees /nix
  ptnix run --store /scratch/$USER -- nix-shell -p git
  PTNIX_NO_SECCOMP=1 ptnix run -- ls /nix   # pure-ptrace mode (old kernels)

Exit status: the command's own; 128+N if a signal N killed it; 127 if it was not
found; 126 if it could not be executed; 125 for ptnix's own errors.";

const STORE_HELP: &str = "Host directory whose `nix` subdirectory is shown at /nix \
(as `nix --store DIR`). Default: $PTNIX_STORE, else \
${XDG_DATA_HOME:-$HOME/.local/share}/nix/root, which is Nix's own chroot store.";

pub fn command() -> Command {
    Command::new("ptnix")
        .about("Run Nix with a user-owned store shown at /nix, without root or namespaces")
        .version(env!("CARGO_PKG_VERSION"))
        .subcommand_required(true)
        .arg_required_else_help(true)
        .after_help(EXAMPLES)
        .subcommand(
            Command::new("completions")
                .about("Print a shell completion script (e.g. `ptnix completions bash > ~/.local/share/bash-completion/completions/ptnix`)")
                .arg(Arg::new("shell").required(true).value_parser(clap::value_parser!(clap_complete::Shell))),
        )
        .subcommand(Command::new("man").about("Print the man page (roff): `ptnix man | man -l -`"))
        .subcommand(
            Command::new("proot")
                .about("Run with proot's command line (as when started as `proot`): `ptnix proot --help`")
                .arg(Arg::new("args").num_args(0..).trailing_var_arg(true).allow_hyphen_values(true)),
        )
        .subcommand(
            Command::new("doctor")
                .about("Check whether ptnix can work on this host, and how well (exit 1 if it cannot)")
                .arg(Arg::new("quiet").long("quiet").short('q').action(ArgAction::SetTrue).help("Print nothing; only the exit status"))
                .arg(Arg::new("store").long("store").value_name("DIR").help(STORE_HELP).value_parser(clap::value_parser!(std::ffi::OsString))),
        )
        .subcommand(
            Command::new("run")
                .about("Run COMMAND (default: $SHELL) with the store at /nix")
                .after_help(EXAMPLES)
                .arg(Arg::new("store").long("store").value_name("DIR").help(STORE_HELP).value_parser(clap::value_parser!(std::ffi::OsString)))
                .arg(
                    Arg::new("bind")
                        .short('b')
                        .long("bind")
                        .value_name("HOST:GUEST")
                        .action(ArgAction::Append)
                        .value_parser(clap::value_parser!(std::ffi::OsString))
                        .help("Also show host path HOST at guest path GUEST (repeatable; the most \
                               specific bind wins; GUEST need not exist on the host, but its parent \
                               directory must). `--store DIR` is the bind DIR/nix:/nix."),
                )
                .arg(
                    Arg::new("no-seccomp")
                        .long("no-seccomp")
                        .action(ArgAction::SetTrue)
                        .help("Stop at every syscall with plain ptrace, without a seccomp filter \
                               (also: PTNIX_NO_SECCOMP=1). Chosen automatically when the \
                               kernel refuses the filter."),
                )
                .arg(
                    Arg::new("no-pin")
                        .long("no-pin")
                        .action(ArgAction::SetTrue)
                        .help("Leave CPU placement to the kernel (also: PTNIX_NO_PIN=1). By \
                               default ptnix runs on one CPU and moves tracees that stop often \
                               next to it, which makes each stop several times cheaper."),
                )
                .arg(
                    Arg::new("no-notif")
                        .long("no-notif")
                        .action(ArgAction::SetTrue)
                        .help("Stop the tracee for the stat family too (also: PTNIX_NO_NOTIF=1). By \
                               default, on Linux 5.6 and later, ptnix answers stat, lstat, \
                               newfstatat and statx through seccomp user notifications, which \
                               cost about half a ptrace stop."),
                )
                .arg(
                    Arg::new("no-shim")
                        .long("no-shim")
                        .action(ArgAction::SetTrue)
                        .help("Do not load ptnix's in-process fast path (also: PTNIX_NO_SHIM=1). \
                               By default dynamically linked x86_64 programs load a small object \
                               that makes their stat, getxattr, access, open and opendir calls on paths \
                               under /nix, on host paths ptnix leaves as they are and on lone names \
                               without a stop or a notification, and \
                               that answers glibc's library search for store programs."),
                )
                .arg(
                    Arg::new("verbose")
                        .short('v')
                        .long("verbose")
                        .action(ArgAction::Count)
                        .help("Log each translation, strace-style (-vv: also the traced syscalls left alone)"),
                )
                .arg(
                    Arg::new("log")
                        .long("log")
                        .value_name("FILE")
                        .value_parser(clap::value_parser!(std::path::PathBuf))
                        .help("Write the -v log to FILE instead of stderr"),
                )
                .arg(
                    Arg::new("stats")
                        .long("stats")
                        .action(ArgAction::SetTrue)
                        .help("At exit, print to stderr where the time went: stops by syscall, \
                               exit stops, translations, lookups, time in the tracer."),
                )
                .arg(
                    Arg::new("command")
                        .value_name("COMMAND")
                        .num_args(1..)
                        .trailing_var_arg(true)
                        .value_parser(clap::value_parser!(std::ffi::OsString)),
                ),
        )
}
