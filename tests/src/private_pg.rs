//! A PostgreSQL server of one test's own, which the test may stop and start
//! under load. The machine's shared server (`ASSENT_TEST_POSTGRES_URL`)
//! serves every other test of the same run, so it is never restarted.
//!
//! Made with the machine's own PostgreSQL binaries (`initdb`, `pg_ctl`) in a
//! temporary directory; listens on 127.0.0.1 with trust authentication.
//! `initdb` refuses to run as root: as root, every command runs as the
//! `postgres` account (`runuser`), in a directory that account owns.
//! Dropping it stops the server and deletes its files.

use std::{net::TcpListener, path::PathBuf, process::Stdio};

use tokio::process::Command;

/// A running (or stopped) PostgreSQL cluster in a temporary directory.
pub struct PrivatePostgres {
    bin: PathBuf,
    /// Holds the data directory, the socket and the log.
    dir: tempfile::TempDir,
    as_postgres: bool,
    pub port: u16,
}

/// The newest `/usr/lib/postgresql/VERSION/bin` with `initdb`, or the
/// directory of an `initdb` on `PATH`.
fn binaries() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    if let Some((_, bin)) = found.pop() {
        return bin;
    }
    std::env::var_os("PATH")
        .and_then(|path| std::env::split_paths(&path).find(|dir| dir.join("initdb").exists()))
        .expect("PostgreSQL's server binaries (initdb, pg_ctl) are needed for this test")
}

/// A port nothing listens on, below the range the kernel hands out to
/// outgoing connections (32768 and up on Linux), so that a port freed by a
/// stopped server is not taken by some other test's connection before the
/// server starts again on it.
pub fn unused_port() -> u16 {
    for _ in 0..1000 {
        let port = 20_000 + (uuid::Uuid::new_v4().as_u128() % 10_000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between 20000 and 30000");
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl PrivatePostgres {
    /// Creates the cluster and starts it on an unused port.
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let as_postgres = is_root();
        if as_postgres {
            let status = std::process::Command::new("chown")
                .args(["postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("run chown");
            assert!(status.success(), "chown the cluster directory to postgres");
        }
        let mut cluster = Self {
            bin: binaries(),
            dir,
            as_postgres,
            port: 0,
        };
        let data = cluster.data_dir();
        let socket_dir = cluster.dir.path().to_path_buf();
        cluster
            .run(
                "initdb",
                &[
                    "-D",
                    data.to_str().unwrap(),
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-sync",
                ],
            )
            .await;
        // Another test may take the port between the choice and the start:
        // then another port.
        for attempt in 1.. {
            cluster.port = unused_port();
            // Later lines win: each attempt's port overrides the last.
            let settings = format!(
                "\nlisten_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\n\
                 # Nothing here must survive the machine crashing, only the server:\n\
                 # what a commit wrote is in the kernel's hands either way.\n\
                 fsync = off\nmax_connections = 100\n",
                cluster.port,
                socket_dir.display()
            );
            let conf = data.join("postgresql.conf");
            let mut text = std::fs::read_to_string(&conf).expect("read postgresql.conf");
            text.push_str(&settings);
            std::fs::write(&conf, text).expect("write postgresql.conf");
            match cluster.try_start().await {
                Ok(()) => break,
                Err(why) if attempt == 5 => panic!("the private PostgreSQL did not start: {why}"),
                Err(_) => {}
            }
        }
        cluster
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_file(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        let mut cmd = if self.as_postgres {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(path);
            cmd
        } else {
            Command::new(path)
        };
        // pg_ctl's server keeps no descriptor of ours: its output goes to
        // the log file.
        cmd.current_dir(self.dir.path())
            .stdin(Stdio::null())
            .kill_on_drop(true);
        cmd
    }

    async fn run(&self, program: &str, args: &[&str]) {
        let output = self
            .command(program)
            .args(args)
            .output()
            .await
            .unwrap_or_else(|e| panic!("run {program}: {e}"));
        assert!(
            output.status.success(),
            "{program} {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    async fn try_start(&self) -> Result<(), String> {
        let data = self.data_dir();
        let log = self.log_file();
        let output = self
            .command("pg_ctl")
            .args(["-D", data.to_str().unwrap(), "-l", log.to_str().unwrap()])
            .args(["-w", "-t", "60", "-s", "start"])
            .output()
            .await
            .expect("run pg_ctl start");
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{}\n{}",
                String::from_utf8_lossy(&output.stderr),
                std::fs::read_to_string(&log).unwrap_or_default()
            ))
        }
    }

    /// Starts the stopped server again, on the same port; returns once it
    /// accepts connections.
    pub async fn restart(&self) {
        if let Err(why) = self.try_start().await {
            panic!("the private PostgreSQL did not start again: {why}");
        }
    }

    /// Stops the server the hard way (`pg_ctl stop -m immediate`: every
    /// backend is killed at once, uncommitted work is lost, the next start
    /// recovers from the write-ahead log), as a crash or a failover would.
    pub async fn stop_immediately(&self) {
        let data = self.data_dir();
        self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "-t",
                "60",
                "-s",
                "stop",
            ],
        )
        .await;
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.data_dir();
        let mut cmd = if self.as_postgres {
            let mut cmd = std::process::Command::new("runuser");
            cmd.args(["-u", "postgres", "--"])
                .arg(self.bin.join("pg_ctl"));
            cmd
        } else {
            std::process::Command::new(self.bin.join("pg_ctl"))
        };
        let _ = cmd
            .current_dir(self.dir.path())
            .arg("-D")
            .arg(&data)
            .args(["-m", "immediate", "-w", "-s", "stop"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        // The temporary directory goes with `self.dir`.
    }
}
