#!/usr/bin/env bash
# Whole-run comparison: the same workloads natively, under bwrap (user namespaces,
# the near-native floor), under ptnix (the default, without its in-process fast path,
# without notifications, without CPU placement, and pure ptrace), and under proot.
# Runtimes are interleaved, RUNS times each; the script prints medians of wall time
# and ratios as a markdown table.
#
#   benches/compare.sh [RUNS]        (default 5; run from the repository)
#
# As root it runs everything as the unprivileged user `ptnix-test` (created if
# missing), since ptnix's users are never root. Needs: a built ptnix (cargo build
# --release), nix-bin, busybox-static, patchelf, gcc; proot and bwrap are optional.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-5}
ptnix_src=${PTNIX_BIN:-$here/target/x86_64-unknown-linux-gnu/release/ptnix}
[ -x "$ptnix_src" ] || { echo "build ptnix first: cargo build --release" >&2; exit 2; }

if [ "$(id -u)" = 0 ]; then
    id ptnix-test >/dev/null 2>&1 || useradd -m ptnix-test
    work=$(mktemp -d /var/tmp/ptnix-bench.XXXXXX)
    chmod 755 "$work"
    install -m 755 "$ptnix_src" "$work/ptnix"
    install -m 755 "$0" "$work/compare.sh"
    chown -R ptnix-test "$work"
    trap 'rm -rf "$work"' EXIT
    su ptnix-test -s /bin/bash -c "PTNIX_BIN=$work/ptnix BENCH_WORK=$work bash $work/compare.sh $runs"
    exit
fi

work=${BENCH_WORK:-$(mktemp -d /var/tmp/ptnix-bench.XXXXXX)}
[ -n "${BENCH_WORK:-}" ] || trap 'rm -rf "$work"' EXIT
P=$ptnix_src
S=$work/store
export NIX_CONFIG="substituters =
sandbox = false"
export HOME=$work/home
mkdir -p "$HOME" "$S"

# --- the test store: a docs tree, include files, a nixpkgs-like program, busybox ---
$P run --store "$S" -- nix-store --init
mkdir -p "$work/tree" "$work/inc" "$work/glibc" "$work/prog/bin" "$work/bb"
cp -r /usr/share/doc "$work/tree/doc"
cp -r /usr/include/. "$work/inc/"
cp /lib64/ld-linux-x86-64.so.2 /lib/x86_64-linux-gnu/libc.so.6 "$work/glibc/"
cp /bin/busybox "$work/bb/sh"
tree=$($P run --store "$S" -- nix-store --add "$work/tree")
inc=$($P run --store "$S" -- nix-store --add "$work/inc")
glibc=$($P run --store "$S" -- nix-store --add "$work/glibc")
bb=$($P run --store "$S" -- nix-store --add "$work/bb")
cp /bin/true "$work/prog/bin/true"
patchelf --set-interpreter "$glibc/ld-linux-x86-64.so.2" --set-rpath "$glibc" "$work/prog/bin/true"
prog=$($P run --store "$S" -- nix-store --add "$work/prog")
cat > "$work/hello.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(void) { puts("hello"); return 0; }
C
cat > "$work/drv.nix" <<NIX
{ n }: derivation {
  name = "bench-\${toString n}"; system = "x86_64-linux"; builder = "$bb/sh";
  args = [ "-c" "mkdir \$out; i=0; while [ \$i -lt 200 ]; do echo \$i > \$out/f\$i; i=\$((i+1)); done" ];
}
NIX

have() { command -v "$1" >/dev/null 2>&1; }
# bwrap as a user: a new root with every top-level entry of / bound (symlinks such as
# /bin recreated), plus the store at /nix. (`--dev-bind / /` would need /nix to exist
# on the host.)
bwrap_args=()
for d in /*; do
    [ "$d" = /nix ] && continue
    if [ -L "$d" ]; then bwrap_args+=(--symlink "$(readlink "$d")" "$d"); else bwrap_args+=(--dev-bind "$d" "$d"); fi
done
bwrap_args+=(--bind "$S/nix" /nix)
bwrap_ok=false; have bwrap && bwrap "${bwrap_args[@]}" true 2>/dev/null && bwrap_ok=true
proot_ok=false; have proot && proot -b "$S/nix:/nix" true 2>/dev/null && proot_ok=true

# Each workload: a shell command using /nix paths (for the runtimes that show the
# store at /nix) and, where the workload allows, the same with host paths (native).
host() { sed "s|/nix/store|$S/nix/store|g" <<<"$1"; }
n=0
declare -a names cmds natives
add() { names[n]=$1; cmds[n]=$2; natives[n]=$3; n=$((n+1)); }
add "find over a store tree ($(find "$S/nix/store/${tree##*/}" | wc -l) files)" "find $tree >/dev/null" "$(host "find $tree >/dev/null")"
add "ls -lR of it" "ls -lR $tree >/dev/null" "$(host "ls -lR $tree >/dev/null")"
add "exec a store binary 300 times" "i=0; while [ \$i -lt 300 ]; do $prog/bin/true; i=\$((i+1)); done" ""
add "gcc -c, 10 compiles, includes in the store" "for i in 1 2 3 4 5 6 7 8 9 10; do gcc -nostdinc -I$inc -I$inc/x86_64-linux-gnu -I/usr/lib/gcc/x86_64-linux-gnu/12/include -c $work/hello.c -o $work/h.o; done" "$(host "for i in 1 2 3 4 5 6 7 8 9 10; do gcc -nostdinc -I$inc -I$inc/x86_64-linux-gnu -I/usr/lib/gcc/x86_64-linux-gnu/12/include -c $work/hello.c -o $work/h.o; done")"
add "nix-build + nix-store --verify --check-contents" "nix-build --no-out-link $work/drv.nix --argstr n \$RANDOM\$RANDOM >/dev/null 2>&1 && nix-store --verify --check-contents >/dev/null 2>&1" ""

run_in() { # runtime command -> prints milliseconds, or "-" if the runtime is unavailable or failed
    local rt=$1 c=$2 t0 t1
    t0=$(date +%s%N)
    case $rt in
        native) [ -n "$c" ] || { echo -; return; }; bash -c "$c" >/dev/null 2>&1 || { echo -; return; } ;;
        bwrap) $bwrap_ok || { echo -; return; }; bwrap "${bwrap_args[@]}" bash -c "$c" >/dev/null 2>&1 || { echo -; return; } ;;
        ptnix) $P run --store "$S" -- bash -c "$c" >/dev/null 2>&1 || { echo -; return; } ;;
        ptnix-noshim) $P run --no-shim --store "$S" -- bash -c "$c" >/dev/null 2>&1 || { echo -; return; } ;;
        ptnix-nopin) $P run --no-pin --store "$S" -- bash -c "$c" >/dev/null 2>&1 || { echo -; return; } ;;
        ptnix-nonotif) $P run --no-notif --store "$S" -- bash -c "$c" >/dev/null 2>&1 || { echo -; return; } ;;
        ptnix-ptrace) $P run --no-seccomp --store "$S" -- bash -c "$c" >/dev/null 2>&1 || { echo -; return; } ;;
        proot) $proot_ok || { echo -; return; }; proot -b "$S/nix:/nix" bash -c "$c" >/dev/null 2>&1 || { echo -; return; } ;;
    esac
    t1=$(date +%s%N)
    echo $(((t1 - t0) / 1000000))
}
median() { tr ' ' '\n' | { grep -v '^-*$' || true; } | sort -n | awk '{a[NR]=$1} END {if (NR==0) print "-"; else if (NR%2) print a[(NR+1)/2]; else print int((a[NR/2]+a[NR/2+1])/2)}'; }
ratio() { [ "$1" = - ] || [ "$2" = - ] && { echo -; return; }; awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }

runtimes="native bwrap ptnix ptnix-noshim ptnix-nonotif ptnix-nopin ptnix-ptrace proot"
declare -A times
for ((r = 0; r < runs; r++)); do
    for ((i = 0; i < n; i++)); do
        for rt in $runtimes; do
            c=${cmds[i]}; [ $rt = native ] && c=${natives[i]}
            times[$i,$rt]+="$(run_in $rt "$c") "
        done
    done
done

echo
echo "Median wall time of $runs interleaved runs, ms ($(uname -r), $(nproc) cores):"
echo
echo "| workload | native | bwrap | ptnix | ptnix --no-shim | ptnix --no-notif | ptnix --no-pin | ptnix --no-seccomp | proot | ptnix / bwrap | ptnix / proot |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for ((i = 0; i < n; i++)); do
    declare -A m=()
    for rt in $runtimes; do m[$rt]=$(median <<<"${times[$i,$rt]}"); done
    echo "| ${names[i]} | ${m[native]} | ${m[bwrap]} | ${m[ptnix]} | ${m[ptnix-noshim]} | ${m[ptnix-nonotif]} | ${m[ptnix-nopin]} | ${m[ptnix-ptrace]} | ${m[proot]} | $(ratio "${m[ptnix]}" "${m[bwrap]}") | $(ratio "${m[ptnix]}" "${m[proot]}") |"
done
