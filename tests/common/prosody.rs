//! A real Prosody for the XMPP tests: one private server per test (or test
//! group) on 127.0.0.1 and a free port, with its config, data, pid file and
//! log in a temporary directory that disappears with it.
//!
//! Owns starting, stopping and restarting that server and registering
//! accounts on it; knows nothing of attache. Dropping a [`Prosody`] kills
//! the server and removes the directory: no stray processes, no leftovers.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The virtual host every test server serves; the agent reaches it with
/// `--server 127.0.0.1:PORT`, so no DNS is involved.
const DOMAIN: &str = "localhost";

/// How long a freshly started server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// How long a server may take to shut down on SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

const INSTALL_HINT: &str = "the XMPP tests need a real Prosody server, and `prosody` is not on PATH. \
     Install it with `sudo apt-get install prosody` (Debian/Ubuntu), or run scripts/prosody-env.sh";

/// A running Prosody, killed on drop.
pub struct Prosody {
    dir: tempfile::TempDir,
    config: PathBuf,
    port: u16,
    child: Option<Child>,
    /// The `prosody` account's uid and gid when the tests run as root:
    /// Prosody refuses to run as root, so it runs as that user instead.
    run_as: Option<(u32, u32)>,
    /// Whether STARTTLS is offered (`mod_tls` and a certificate).
    tls: bool,
}

impl Prosody {
    /// Starts a new server on a free port and waits until it accepts
    /// connections. Panics, saying how to install it, when Prosody is missing.
    pub fn start() -> Prosody {
        Self::start_with(false)
    }

    /// Like [`Prosody::start`], but also offering STARTTLS with a
    /// certificate for the domain, signed by a throwaway CA ([`Prosody::ca_file`]).
    pub fn start_with_tls() -> Prosody {
        Self::start_with(true)
    }

    fn start_with(tls: bool) -> Prosody {
        // Never a silent skip: a test that did not run must not look green.
        assert!(find_on_path("prosody").is_some(), "{INSTALL_HINT}");
        assert!(
            find_on_path("prosodyctl").is_some(),
            "{INSTALL_HINT} (prosodyctl is missing)"
        );
        let run_as = if is_root() {
            Some(prosody_user().unwrap_or_else(|| {
                panic!(
                    "running as root, and Prosody refuses to run as root, but there is no \
                     `prosody` user to run it as; install the Debian package: sudo apt-get install prosody"
                )
            }))
        } else {
            None
        };
        let dir = tempfile::Builder::new()
            .prefix("attache-prosody-")
            .tempdir()
            .expect("temp dir for Prosody");
        let config = dir.path().join("prosody.cfg.lua");
        let mut server = Prosody {
            dir,
            config,
            port: 0,
            child: None,
            run_as,
            tls,
        };
        if tls {
            server.make_certificates();
        }
        // Another test may grab the port between our probe and Prosody's
        // bind; a new port makes that race harmless.
        let mut last_error = String::new();
        for _ in 0..3 {
            server.port = free_port();
            server.write_config();
            match server.launch() {
                Ok(()) => return server,
                Err(e) => last_error = e,
            }
        }
        panic!("Prosody did not start: {last_error}");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The XMPP domain accounts live on.
    pub fn domain(&self) -> &str {
        DOMAIN
    }

    /// `127.0.0.1:PORT`, as `--server` takes it.
    pub fn server(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// Creates an account (running or stopped server alike) and returns its bare JID.
    pub fn register(&self, user: &str, password: &str) -> String {
        let out = self
            .command("prosodyctl")
            .args(["--config"])
            .arg(&self.config)
            .args(["register", user, DOMAIN, password])
            .stdin(Stdio::null())
            .output()
            .expect("run prosodyctl");
        assert!(
            out.status.success(),
            "prosodyctl register {user} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        format!("{user}@{DOMAIN}")
    }

    /// Shuts the server down (SIGTERM, then SIGKILL if it lingers).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // `Child::kill` is SIGKILL; a polite SIGTERM lets Prosody close its
        // streams, which is what a real server restart looks like to clients.
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Stops the server and starts it again on the same port, with the same accounts.
    pub fn restart(&mut self) {
        self.stop();
        let mut last_error = String::new();
        // The old listening socket may linger for a moment after the exit.
        for _ in 0..20 {
            match self.launch() {
                Ok(()) => return,
                Err(e) => last_error = e,
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "Prosody did not restart on port {}: {last_error}",
            self.port
        );
    }

    /// The server's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The temporary directory holding config, data and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The CA that signed the server's certificate (only with [`Prosody::start_with_tls`]);
    /// point `SSL_CERT_FILE` at it to trust the server.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// The server's log so far, for failure messages.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("prosody.log")).unwrap_or_default()
    }

    /// A CA and a `localhost` certificate it signed, where Prosody looks
    /// for them (`certs/DOMAIN.crt` and `.key`).
    fn make_certificates(&self) {
        let dir = self.dir.path();
        let certs = dir.join("certs");
        fs::create_dir_all(&certs).expect("certs dir");
        let ext = dir.join("leaf.ext");
        fs::write(
            &ext,
            format!("subjectAltName=DNS:{DOMAIN}\nbasicConstraints=CA:FALSE\n"),
        )
        .expect("write certificate extensions");
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let p = |path: PathBuf| path.to_string_lossy().into_owned();
        let steps: [Vec<String>; 3] = [
            ["req", "-x509"]
                .iter()
                .chain(&ec)
                .map(|s| s.to_string())
                .chain([
                    "-keyout".into(),
                    p(dir.join("ca.key")),
                    "-out".into(),
                    p(dir.join("ca.crt")),
                    "-days".into(),
                    "2".into(),
                    "-subj".into(),
                    "/CN=attache test CA".into(),
                ])
                .collect(),
            ["req"]
                .iter()
                .chain(&ec)
                .map(|s| s.to_string())
                .chain([
                    "-keyout".into(),
                    p(certs.join(format!("{DOMAIN}.key"))),
                    "-out".into(),
                    p(dir.join("leaf.csr")),
                    "-subj".into(),
                    format!("/CN={DOMAIN}"),
                ])
                .collect(),
            ["x509", "-req", "-in"]
                .iter()
                .map(|s| s.to_string())
                .chain([
                    p(dir.join("leaf.csr")),
                    "-CA".into(),
                    p(dir.join("ca.crt")),
                    "-CAkey".into(),
                    p(dir.join("ca.key")),
                    "-CAcreateserial".into(),
                    "-out".into(),
                    p(certs.join(format!("{DOMAIN}.crt"))),
                    "-days".into(),
                    "2".into(),
                    "-extfile".into(),
                    p(ext.clone()),
                ])
                .collect(),
        ];
        for args in steps {
            let out = Command::new("openssl")
                .args(&args)
                .stdin(Stdio::null())
                .output()
                .expect("run openssl (apt-get install openssl)");
            assert!(
                out.status.success(),
                "openssl {args:?} failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    fn write_config(&self) {
        let dir = self.dir.path();
        for sub in ["data", "certs"] {
            fs::create_dir_all(dir.join(sub)).expect("Prosody directories");
        }
        let d = dir.display();
        let port = self.port;
        let tls = if self.tls { r#", "tls""# } else { "" };
        // Plain-text c2s on loopback is allowed; STARTTLS is offered only
        // when `certs` holds a certificate (`start_with_tls`).
        let config = format!(
            r#"-- Generated by attache's test harness (tests/common/prosody.rs).
pidfile = "{d}/prosody.pid"
data_path = "{d}/data"
certificates = "{d}/certs"
admin_socket = "{d}/admin.sock"
log = {{ info = "{d}/prosody.log" }}
-- Without this every IQ round trip waits for Nagle's ~40 ms.
network_settings = {{ nagle = false }}
interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {port} }}
c2s_direct_tls_ports = {{}}
s2s_ports = {{}}
http_ports = {{}}
https_ports = {{}}
authentication = "internal_plain"
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
-- Short, so "the agent survives a restart" tests do not wait ten minutes.
smacks_hibernation_time = 5
modules_enabled = {{ "roster", "saslauth", "disco", "ping", "version", "presence", "smacks", "posix"{tls} }}
modules_disabled = {{ "s2s" }}
VirtualHost "{DOMAIN}"
"#
        );
        fs::write(&self.config, config).expect("write Prosody config");
        self.hand_over_directory();
    }

    /// Lets the `prosody` user into the temporary directory.
    fn hand_over_directory(&self) {
        let Some((uid, gid)) = self.run_as else {
            return;
        };
        use std::os::unix::fs::PermissionsExt;
        // `tempfile` makes the directory 0700; its parent (/tmp) is
        // world-traversable, so opening this one level is enough.
        fs::set_permissions(self.dir.path(), fs::Permissions::from_mode(0o755))
            .expect("chmod Prosody dir");
        chown_recursive(self.dir.path(), uid, gid);
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        if let Some((uid, gid)) = self.run_as {
            // What `runuser -u prosody --` does, minus the intermediate
            // process: then the child we hold *is* Prosody, and killing it
            // on drop cannot orphan the real server.
            use std::os::unix::process::CommandExt;
            cmd.uid(uid).gid(gid).env("HOME", self.dir.path());
        }
        cmd
    }

    /// Spawns Prosody in the foreground and waits until its port accepts connections.
    fn launch(&mut self) -> Result<(), String> {
        let log = self.dir.path().join("stdout.log");
        let stdout = fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let stderr = stdout
            .try_clone()
            .map_err(|e| format!("{}: {e}", log.display()))?;
        if let Some((uid, gid)) = self.run_as {
            chown_recursive(&log, uid, gid);
        }
        let mut child = self
            .command("prosody")
            .arg("-F")
            .arg("--config")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("could not run prosody: {e}"))?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "prosody exited ({status}) on port {}:\n{}\n{}",
                    self.port,
                    fs::read_to_string(&log).unwrap_or_default(),
                    self.log()
                ));
            }
            if self.log().contains("Failed to open server port") {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("port {} is taken:\n{}", self.port, self.log()));
            }
            if TcpStream::connect_timeout(&self.addr(), Duration::from_millis(200)).is_ok() {
                self.child = Some(child);
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "port {} not open after {START_TIMEOUT:?}:\n{}",
                    self.port,
                    self.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Prosody {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // No need to be polite on the way out, only thorough.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A port nobody listens on right now (the OS picks it).
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free TCP port on 127.0.0.1")
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .chain(["/usr/sbin".into(), "/usr/bin".into()])
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// The `prosody` system user's uid and gid, from /etc/passwd.
fn prosody_user() -> Option<(u32, u32)> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.first() == Some(&"prosody") && fields.len() > 3)
            .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
            .flatten()
    })
}

fn chown_recursive(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
        .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
    if path.is_dir() {
        for entry in fs::read_dir(path).expect("read Prosody dir").flatten() {
            chown_recursive(&entry.path(), uid, gid);
        }
    }
}
