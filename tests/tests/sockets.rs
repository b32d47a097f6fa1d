//! Unix sockets at /nix paths (as nix-daemon's /nix/var/nix/daemon-socket/socket):
//! bind, connect, sendto; the addresses read back by getsockname, getpeername,
//! accept and recvfrom are guest paths; the socket file lands in STORE/nix.

use ptnix_tests::*;
use std::os::unix::fs::FileTypeExt;

both_modes! {
    /// Stream socket: a server and a client process.
    fn stream_socket_in_nix(m: Mode) {
        require!(Python3);
        let fx = Fixture::new(m);
        let code = r#"
import os, socket
p = '/nix/var/nix/daemon-socket/socket'
os.makedirs(os.path.dirname(p))
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(p); s.listen(1)
print('sockname', s.getsockname(), flush=True)
if os.fork() == 0:
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.connect(p)
    print('peername', c.getpeername(), flush=True)
    c.sendall(b'ping'); c.close(); os._exit(0)
conn, addr = s.accept()
print('accepted', repr(addr), conn.recv(4))
print('conn sockname', conn.getsockname())
os.wait()
"#;
        fx.py(code, &[] as &[&str]).expect_stdout(
            "sockname /nix/var/nix/daemon-socket/socket\npeername /nix/var/nix/daemon-socket/socket\n\
             accepted '' b'ping'\nconn sockname /nix/var/nix/daemon-socket/socket\n",
        );
        let md = std::fs::symlink_metadata(fx.host("/nix/var/nix/daemon-socket/socket")).expect("socket not in STORE");
        assert!(md.file_type().is_socket());
    }

    /// Datagram sockets: sendto a /nix address; recvfrom reports the sender's /nix
    /// address.
    fn datagram_sender_address(m: Mode) {
        require!(Python3);
        let fx = Fixture::new(m);
        let code = r#"
import socket
srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); srv.bind('/nix/var/srv.sock')
cli = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); cli.bind('/nix/var/cli.sock')
cli.sendto(b'dgram', '/nix/var/srv.sock')
print(srv.recvfrom(16))
"#;
        fx.py(code, &[] as &[&str]).expect_stdout("(b'dgram', '/nix/var/cli.sock')\n");
        for s in ["srv.sock", "cli.sock"] {
            let md = std::fs::symlink_metadata(fx.host(format!("/nix/var/{s}"))).unwrap();
            assert!(md.file_type().is_socket(), "{s}");
        }
    }

    /// Names bound relative to a cwd in /nix read back as given (as the kernel
    /// returns them); abstract names are not paths and pass untouched.
    fn relative_and_abstract_names(m: Mode) {
        require!(Python3);
        let fx = Fixture::new(m);
        let code = r#"
import os, socket
os.chdir('/nix/var')
rel = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); rel.bind('rel.sock')
print(rel.getsockname())
cli = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
cli.sendto(b'to-rel', 'rel.sock'); print(rel.recv(16))
name = b'\0ptnix-test-abstract-%d' % os.getpid()
ab = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); ab.bind(name)
print(ab.getsockname() == name)
cli.sendto(b'to-abstract', name); print(ab.recv(16))
"#;
        fx.py(code, &[] as &[&str]).expect_stdout("rel.sock\nb'to-rel'\nTrue\nb'to-abstract'\n");
        let md = std::fs::symlink_metadata(fx.host("/nix/var/rel.sock")).unwrap();
        assert!(md.file_type().is_socket());
    }

    /// connect and sendto follow symlinks whose absolute targets are guest paths;
    /// bind creates the socket through a symlinked parent directory, and the name
    /// reads back as it was bound.
    fn sockets_through_symlinks(m: Mode) {
        require!(Python3);
        let fx = Fixture::new(m);
        let code = r#"
import os, socket
srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); srv.bind('/nix/var/srv.sock')
os.symlink('/nix/var/srv.sock', '/nix/var/link.sock')
cli = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
cli.sendto(b'via-link', '/nix/var/link.sock'); print(srv.recv(16))
os.mkdir('/nix/var/real'); os.symlink('/nix/var/real', '/nix/var/dirlink')
st = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); st.bind('/nix/var/dirlink/s.sock'); st.listen(1)
print(os.path.exists('/nix/var/real/s.sock'))
os.symlink('/nix/var/dirlink/s.sock', '/nix/var/s-link')
c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); c.connect('/nix/var/s-link')
print(st.getsockname(), c.getpeername())
"#;
        fx.py(code, &[] as &[&str])
            .expect_stdout("b'via-link'\nTrue\n/nix/var/dirlink/s.sock /nix/var/dirlink/s.sock\n");
        let md = std::fs::symlink_metadata(fx.host("/nix/var/real/s.sock")).unwrap();
        assert!(md.file_type().is_socket());
    }

    /// Errors are the kernel's: connecting to a missing socket is ENOENT (the host's
    /// /nix/var/nix/daemon-socket must not be reached), to a file ECONNREFUSED, binding
    /// over an existing name EADDRINUSE.
    fn socket_errors(m: Mode) {
        require!(Python3);
        let fx = Fixture::new(m);
        fx.write(fx.host("/nix/var/plainfile"), "");
        let code = r#"
import socket, errno
def t(f):
    try: f(); return 'OK'
    except OSError as e: return errno.errorcode[e.errno]
s = lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
print(t(lambda: s().connect('/nix/var/nix/daemon-socket/socket')))
print(t(lambda: s().connect('/nix/var/plainfile')))
print(t(lambda: s().bind('/nix/var/plainfile')))
print(t(lambda: s().bind('/nix/var/missing/sock')))
"#;
        fx.py(code, &[] as &[&str]).expect_stdout("ENOENT\nECONNREFUSED\nEADDRINUSE\nENOENT\n");
    }

    /// A guest path that fits sockaddr_un while its host path (under STORE) does not.
    fn overlong_host_path(m: Mode) {
        require!(Cc);
        let fx = Fixture::new(m);
        let dir = "/nix/var/s";
        fx.mkdirs(&fx.host(dir));
        // Guest path of 100 bytes: fits the 108-byte sun_path with its NUL.
        let guest = format!("{dir}/{}", "s".repeat(100 - dir.len() - 1));
        assert_eq!(guest.len(), 100);
        let host = fx.host(&guest);
        assert!(host.as_os_str().len() >= 108, "host path {} is not overlong", host.display());
        let n = guest.len() + 3; // the kernel's length: family (2) + path + NUL
        fx.run(&[c_prog("unix_long").as_os_str(), guest.as_ref()]).expect_stdout(&format!(
            "sockname={guest} len={n}\npeername={guest} len={n}\naccepted= len=2\ngot=hello\n"
        ));
        assert!(std::fs::symlink_metadata(&host).expect("socket not created in STORE").file_type().is_socket());
    }
}
