//! A real `nats-server` with JetStream for tests: free port on 127.0.0.1, its own store dir,
//! a bounded lifetime, stopped by PID.
//!
//! With `EVENTS_TEST_NATS=script` (the `events` stage of `scripts/test.sh`), tests share the
//! one server that stage started with `scripts/nats.sh` (`NATS_PORT`, `NATS_RUN_DIR`), and
//! stopping and starting it goes through that script (by PID, same port and store dir).
//!
//! The binary is `$NATS_SERVER_BIN`, else the one `scripts/nats.sh build` puts in
//! `.cache/bin/` (built on first use, which takes a minute or two), else `nats-server` on PATH.
//! The server runs under coreutils `timeout`, so even a test process killed with SIGKILL leaves
//! no server behind for longer than [`LIFETIME`]; stopping sends SIGTERM to that PID, which
//! `timeout` forwards (and follows with SIGKILL after 5 s).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long a test server may live at most.
pub const LIFETIME: Duration = Duration::from_secs(900);

fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// JetStream's fsync policy for the servers this module starts: `$NATS_SYNC` when it is
/// `always` or a duration like `2m`, else what this project ships
/// ([`crate::stream::DEFAULT_SYNC`]).
pub fn sync_policy() -> String {
    std::env::var("NATS_SYNC")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| crate::stream::parse_sync_interval(s).is_ok())
        .unwrap_or_else(|| crate::stream::DEFAULT_SYNC.to_owned())
}

/// The `nats-server` binary to run, building it with `scripts/nats.sh build` if needed.
pub fn binary() -> Result<PathBuf, String> {
    if let Some(bin) = std::env::var_os("NATS_SERVER_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let cached = workspace_dir().join(".cache/bin/nats-server");
    if cached.is_file() {
        return Ok(cached);
    }
    if let Some(on_path) = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("nats-server"))
            .find(|p| p.is_file())
    }) {
        return Ok(on_path);
    }
    let status = Command::new("bash")
        .arg(workspace_dir().join("scripts/nats.sh"))
        .arg("build")
        .status()
        .map_err(|e| format!("cannot run scripts/nats.sh build: {e}"))?;
    if status.success() && cached.is_file() {
        Ok(cached)
    } else {
        Err(
            "no nats-server: `scripts/nats.sh build` failed (needs Go), or set NATS_SERVER_BIN"
                .into(),
        )
    }
}

/// A free TCP port on 127.0.0.1 (free when asked; the server binds it right after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port on 127.0.0.1")
}

/// A running (or stopped, restartable) test server.
#[derive(Debug)]
pub struct NatsServer {
    bin: PathBuf,
    port: u16,
    store_dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    /// Run by `scripts/nats.sh` for the whole test stage (not owned by this value).
    script: Option<bool>,
}

fn nats_script(command: &str) -> Result<(), String> {
    let status = Command::new("bash")
        .arg(workspace_dir().join("scripts/nats.sh"))
        .arg(command)
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run scripts/nats.sh {command}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("scripts/nats.sh {command} failed: {status}"))
    }
}

impl NatsServer {
    /// The test stage's shared server (`EVENTS_TEST_NATS=script`), else [`NatsServer::start`].
    pub async fn for_tests() -> NatsServer {
        if std::env::var("EVENTS_TEST_NATS").as_deref() != Ok("script") {
            return NatsServer::start().await;
        }
        let port = std::env::var("NATS_PORT")
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(4222);
        let mut server = NatsServer {
            bin: PathBuf::from("nats-server"),
            port,
            store_dir: PathBuf::new(),
            log: PathBuf::new(),
            child: None,
            script: Some(false),
        };
        server.start_again().await;
        server
    }

    /// Starts a server on a free port with a fresh store dir, and waits until JetStream answers.
    pub async fn start() -> NatsServer {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let store_dir = std::env::temp_dir().join(format!(
            "seedsync-nats-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&store_dir);
        std::fs::create_dir_all(&store_dir).expect("create the test store dir");
        let mut server = NatsServer {
            bin: binary().unwrap_or_else(|e| panic!("{e}")),
            port: free_port(),
            log: store_dir.join("nats-server.log"),
            store_dir,
            child: None,
            script: None,
        };
        server.start_again().await;
        server
    }

    /// Starts the stopped server again, on the same port and store dir (its events survive).
    pub async fn start_again(&mut self) {
        if let Some(running) = self.script.as_mut() {
            // Idempotent: also right when the stage's server already runs.
            nats_script("start").unwrap_or_else(|e| panic!("{e}"));
            *running = true;
            return;
        }
        assert!(self.child.is_none(), "the server is running");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.log)
                .expect("open the server log");
            let config = self.write_config();
            let child = Command::new("timeout")
                .args(["--kill-after=5", &format!("{}s", LIFETIME.as_secs())])
                .arg(&self.bin)
                .arg("-c")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log handle"))
                .stderr(log)
                .spawn()
                .expect("spawn nats-server under timeout");
            self.child = Some(child);
            match self.wait_ready(deadline).await {
                Ok(()) => return,
                // The port may still be held by the previous run for a moment.
                Err(e) if Instant::now() < deadline => {
                    tracing::warn!("nats-server not ready ({e}); starting it again");
                    self.stop();
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => {
                    self.stop();
                    panic!("nats-server did not start: {e}; log: {}", self.log_tail());
                }
            }
        }
    }

    /// The server's config: what `scripts/nats.sh` runs (JetStream with file storage, the
    /// shipped `sync_interval` unless `NATS_SYNC` says otherwise), so tests and benchmarks
    /// measure the setting users get.
    fn write_config(&self) -> PathBuf {
        let config = self.store_dir.join("nats-server.conf");
        let sync = sync_policy();
        let text = format!(
            "server_name: test-{port}\nlisten: 127.0.0.1:{port}\n\
             jetstream {{\n  store_dir: {store:?}\n  sync_interval: {sync:?}\n}}\n",
            port = self.port,
            store = self.store_dir.display().to_string(),
        );
        std::fs::write(&config, text).expect("write the nats-server config");
        config
    }

    async fn wait_ready(&mut self, deadline: Instant) -> Result<(), String> {
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(format!("exited with {status}"));
            }
            let ready = async {
                let client = async_nats::ConnectOptions::new()
                    .connection_timeout(Duration::from_millis(500))
                    .connect(self.url())
                    .await
                    .map_err(|e| e.to_string())?;
                async_nats::jetstream::new(client)
                    .query_account()
                    .await
                    .map_err(|e| e.to_string())
            };
            match tokio::time::timeout(Duration::from_secs(2), ready).await {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(e)) if Instant::now() >= deadline => return Err(e),
                Err(_) if Instant::now() >= deadline => return Err("timed out".into()),
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The PID the server runs under (its `timeout` wrapper), while running (`None` for the
    /// stage's shared server, whose PID file `scripts/nats.sh` keeps).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether it runs.
    pub fn is_running(&self) -> bool {
        self.script.unwrap_or(self.child.is_some())
    }

    /// Stops the server by PID (SIGTERM; SIGKILL 5 s later) and waits until it is gone and its
    /// port is free.
    pub fn stop(&mut self) {
        if let Some(running) = self.script.as_mut() {
            nats_script("stop").unwrap_or_else(|e| panic!("{e}"));
            *running = false;
            return;
        }
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if !matches!(child.try_wait(), Ok(Some(_))) {
            let _ = child.kill();
            let _ = child.wait();
        }
        // The listener goes with the process; wait (boundedly) until the port is free again.
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline
            && std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
        {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server and deletes its JetStream store: the worst a power cut can do to the
    /// events it acknowledged but had not yet fsynced (here: all of them).
    pub fn stop_and_lose_store(&mut self) {
        if let Some(running) = self.script.as_mut() {
            nats_script("wipe").unwrap_or_else(|e| panic!("{e}"));
            *running = false;
            return;
        }
        self.stop();
        let _ = std::fs::remove_dir_all(self.store_dir.join("jetstream"));
    }

    /// The end of the server's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        match self.script {
            // The stage's server outlives each test: leave it running for the next one.
            Some(false) => {
                let _ = nats_script("start");
            }
            Some(true) => {}
            None => {
                self.stop();
                let _ = std::fs::remove_dir_all(&self.store_dir);
            }
        }
    }
}

/// A free run of `n` consecutive TCP ports on 127.0.0.1, none in `taken`.
fn free_ports(n: u16, taken: &[u16]) -> u16 {
    for _ in 0..200 {
        let base = free_port();
        if base.checked_add(n).is_none() {
            continue;
        }
        let ports = base..base + n;
        let clash = ports.clone().any(|p| {
            taken.iter().any(|t| (*t..t + n).contains(&p))
                || TcpListener::bind(("127.0.0.1", p)).is_err()
        });
        if !clash {
            return base;
        }
    }
    panic!("no run of {n} free ports on 127.0.0.1");
}

/// A local three-node JetStream cluster for tests, run by `scripts/nats.sh` (`start-cluster`,
/// `kill`, `restart`, `checkpoint`, `power-cut`; every process stopped by its PID).
///
/// With `EVENTS_TEST_CLUSTER=script` (the `events` stage of `scripts/test.sh`) the stage has
/// started it (its `NATS_CLUSTER_PORT`, `NATS_CLUSTER_MONITOR_PORT`, `NATS_ROUTE_PORT`,
/// `NATS_CLUSTER_RUN_DIR` are in the environment) and stops it. Otherwise this starts one on free ports with a fresh
/// run dir and wipes it when dropped.
#[derive(Debug)]
pub struct NatsCluster {
    /// The variables `scripts/nats.sh` runs with (empty: the environment's).
    env: Vec<(String, String)>,
    /// Node 1's client port; node N listens on this + N-1.
    base_port: u16,
    /// Whether this value started it (and wipes it on drop).
    owned: Option<PathBuf>,
}

impl NatsCluster {
    /// The number of nodes.
    pub const NODES: usize = 3;

    /// The stage's cluster (`EVENTS_TEST_CLUSTER=script`), else a new one of its own.
    pub async fn for_tests() -> NatsCluster {
        let cluster = if std::env::var("EVENTS_TEST_CLUSTER").as_deref() == Ok("script") {
            NatsCluster {
                env: Vec::new(),
                base_port: ["NATS_CLUSTER_PORT", "NATS_PORT"]
                    .iter()
                    .find_map(|v| std::env::var(v).ok().and_then(|p| p.parse().ok()))
                    .unwrap_or(4222),
                owned: None,
            }
        } else {
            static COUNTER: AtomicU32 = AtomicU32::new(0);
            let dir = std::env::temp_dir().join(format!(
                "seedsync-nats-cluster-{}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&dir);
            let client = free_ports(3, &[]);
            let monitor = free_ports(3, &[client]);
            let route = free_ports(3, &[client, monitor]);
            let bin = binary().unwrap_or_else(|e| panic!("{e}"));
            NatsCluster {
                env: vec![
                    ("NATS_CLUSTER_PORT".into(), client.to_string()),
                    ("NATS_CLUSTER_MONITOR_PORT".into(), monitor.to_string()),
                    ("NATS_ROUTE_PORT".into(), route.to_string()),
                    ("NATS_CLUSTER_RUN_DIR".into(), dir.display().to_string()),
                    ("NATS_BIN".into(), bin.display().to_string()),
                    ("NATS_SYNC".into(), sync_policy()),
                ],
                base_port: client,
                owned: Some(dir),
            }
        };
        cluster
            .run(&["start-cluster"])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        cluster
    }

    /// Runs `scripts/nats.sh ARGS` (without blocking the runtime); its stdout.
    pub async fn run(&self, args: &[&str]) -> Result<String, String> {
        let output = tokio::process::Command::new("bash")
            .arg(workspace_dir().join("scripts/nats.sh"))
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .await
            .map_err(|e| format!("cannot run scripts/nats.sh {args:?}: {e}"))?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        eprint!("{stdout}");
        if output.status.success() {
            Ok(stdout)
        } else {
            Err(format!(
                "scripts/nats.sh {args:?} failed: {}",
                output.status
            ))
        }
    }

    /// The client URLs of every node, comma-separated (a `NATS_URL`).
    pub fn urls(&self) -> String {
        (0..Self::NODES as u16)
            .map(|i| format!("nats://127.0.0.1:{}", self.base_port + i))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// SIGKILLs node `node` (1-3).
    pub async fn kill(&self, node: usize) {
        self.run(&["kill", &node.to_string()])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Starts node `node` again (same ports and store) and waits until its JetStream is up.
    pub async fn restart(&self, node: usize) {
        self.run(&["restart", &node.to_string()])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Starts every node that is not running and waits until the cluster is healthy.
    pub async fn start(&self) {
        self.run(&["start-cluster"])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Which node (1-3) leads the `GAME_EVENTS` stream, as the stream's info (answered by its
    /// leader) says; `None` while it has none or nobody answers.
    pub async fn leader(&self) -> Option<usize> {
        let client = crate::connect(&self.urls(), "seedsync-test-leader", true)
            .await
            .ok()?;
        let js = async_nats::jetstream::new(client);
        let stream =
            tokio::time::timeout(Duration::from_secs(3), js.get_stream(crate::stream::STREAM))
                .await
                .ok()?
                .ok()?;
        let leader = stream.cached_info().cluster.as_ref()?.leader.clone()?;
        leader.strip_prefix("seedsync-n")?.parse().ok()
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        if let Some(dir) = self.owned.take() {
            let _ = Command::new("bash")
                .arg(workspace_dir().join("scripts/nats.sh"))
                .arg("wipe-cluster")
                .envs(self.env.iter().map(|(k, v)| (k, v)))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .status();
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
