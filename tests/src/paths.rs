//! Paths of every kind, for tests that compare the answers of several ways ptnix can
//! take (`shim.rs`, `symlinks.rs`).

use crate::Fixture;

/// A store with every kind of path ptnix must answer exactly (the in-process fast
/// path, or else ptnix; notified or stopped): symlinks with absolute and relative
/// targets, dangling ones, symlinked directories, `.` and `..`, trailing slashes,
/// missing names, files used as directories, unsearchable directories, under /nix
/// and on the host. Returns the guest paths to try.
pub fn store_paths(fx: &Fixture) -> Vec<String> {
    let s = "/nix/store";
    fx.write(fx.host(format!("{s}/aaa-pkg/bin/tool")), "#!/bin/sh\n");
    std::fs::set_permissions(fx.host(format!("{s}/aaa-pkg/bin/tool")), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    fx.write(fx.host(format!("{s}/bbb-other/file")), "other\n");
    fx.write(fx.host(format!("{s}/bbb-other/sub/deep")), "deep\n");
    fx.symlink("/nix/store/bbb-other/file", fx.host(format!("{s}/aaa-pkg/abs")));
    fx.symlink("../bbb-other/file", fx.host(format!("{s}/aaa-pkg/rel")));
    fx.symlink("/nix/store/none/x", fx.host(format!("{s}/aaa-pkg/dangling")));
    fx.symlink("/nix/store/bbb-other", fx.host(format!("{s}/aaa-pkg/dirlink")));
    fx.symlink("/nix/store/bbb-other/sub", fx.host(format!("{s}/aaa-pkg/sublink")));
    fx.symlink("/etc/hostname", fx.host(format!("{s}/aaa-pkg/hostlink")));
    fx.symlink("/nix/store/aaa-pkg", fx.host(format!("{s}/pkg-link")));
    fx.mkdirs(&fx.host(format!("{s}/ccc-locked/inner")));
    fx.write(fx.host(format!("{s}/ccc-locked/inner/f")), "f\n");
    std::fs::set_permissions(fx.host(format!("{s}/ccc-locked/inner")), std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();
    // Outside the store, under /nix: Nix's database, a profile and its generation
    // link, symlinks into the store.
    fx.write(fx.host("/nix/var/nix/db/db.sqlite"), "db\n");
    fx.symlink("default-1-link", fx.host("/nix/var/nix/profiles/default"));
    fx.symlink("/nix/store/aaa-pkg", fx.host("/nix/var/nix/profiles/default-1-link"));
    fx.symlink("/nix/store/bbb-other/file", fx.host("/nix/var/abs"));
    fx.symlink("/nix/store/bbb-other", fx.host("/nix/var/dirlink"));
    // Host paths, outside /nix: symlinks into the store (which only ptnix can
    // follow), and the host's own.
    let hd = host_dir(fx);
    fx.write(hd.join("file"), "host\n");
    fx.write(hd.join("sub/deep"), "deep\n");
    fx.symlink("/nix/store/bbb-other/file", hd.join("tostore"));
    fx.symlink("/nix/store/bbb-other", hd.join("dirlink"));
    fx.symlink("file", hd.join("rel"));
    fx.mkdirs(&hd.join("locked/inner"));
    std::fs::set_permissions(hd.join("locked"), std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();
    let h = hd.display().to_string();
    let host: Vec<String> = ["", "/file", "/file/", "/file/x", "/tostore", "/tostore/", "/dirlink", "/dirlink/file", "/rel", "/sub", "/sub/deep", "/sub/../file", "/missing", "/missing/x", "/file/x/y", "/locked/inner", "/locked/inner/x"]
        .iter()
        .map(|s| format!("{h}{s}"))
        .collect();
    [
        "/nix/store",
        "/nix/store/",
        "/nix/store/aaa-pkg",
        "/nix/store/aaa-pkg/",
        "/nix/store/aaa-pkg/bin/tool",
        "/nix/store/aaa-pkg/bin/tool/",
        "/nix/store/aaa-pkg/bin/tool/x",
        "/nix/store/aaa-pkg/bin//tool",
        "/nix/store/aaa-pkg/./bin/tool",
        "/nix/store/aaa-pkg/bin/../bin/tool",
        "/nix/store/aaa-pkg/../bbb-other/file",
        "/nix/store/aaa-pkg/abs",
        "/nix/store/aaa-pkg/abs/",
        "/nix/store/aaa-pkg/rel",
        "/nix/store/aaa-pkg/dangling",
        "/nix/store/aaa-pkg/dirlink",
        "/nix/store/aaa-pkg/dirlink/",
        "/nix/store/aaa-pkg/dirlink/file",
        "/nix/store/aaa-pkg/dirlink/sub/deep",
        "/nix/store/aaa-pkg/sublink/deep",
        "/nix/store/aaa-pkg/hostlink",
        "/nix/store/pkg-link/bin/tool",
        "/nix/store/pkg-link",
        "/nix/store/missing",
        "/nix/store/missing/x",
        "/nix/store/aaa-pkg/missing",
        "/nix/store/aaa-pkg/missing/x",
        "/nix/store/aaa-pkg/bin/tool/x/y",
        "/nix/store/aaa-pkg/dangling/x",
        "/nix/store/ccc-locked/inner",
        "/nix/store/ccc-locked/inner/f",
        "/nix/store/ccc-locked/inner/missing",
        "/nix/store/ccc-locked/inner/missing/x",
        "/nix/store/..",
        "/nix/store/.",
        "/nix/storex/a",
        "/nix",
        "/nix/",
        "/nix/var",
        "/nix/var/",
        "/nix/var/nix/db/db.sqlite",
        "/nix/var/nix/db/db.sqlite/x",
        "/nix/var/nix/profiles",
        "/nix/var/nix/profiles/default",
        "/nix/var/nix/profiles/default/bin/tool",
        "/nix/var/abs",
        "/nix/var/dirlink",
        "/nix/var/dirlink/file",
        "/nix/var/missing/x",
        "/nix/var/../store/aaa-pkg",
        "/",
        "/etc/hostname",
        "/etc/hostname/x",
        "/usr/bin/env",
        "/usr/bin/../bin/env",
        "/bin/sh",
        "/dev/null",
        "/nonexistent/x",
        "/nixfoo",
    ]
    .iter()
    .map(|p| p.to_string())
    .chain(host)
    .collect()
}

/// The fixture's host directory for [`store_paths`]' host paths (no symlink on its
/// way from `/`).
pub fn host_dir(fx: &Fixture) -> std::path::PathBuf {
    let d = std::fs::canonicalize(&fx.dir).unwrap().join("hostdir");
    fx.mkdirs(&d);
    d
}
