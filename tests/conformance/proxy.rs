//! The real proxies as processes: built once per test run by `tests/openwhisk-proxies/build.sh`
//! (cached under `target/`), started in a scratch folder, ready when their port answers, killed
//! with everything they started when dropped.

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::common::temp_path;

/// The Go proxy's port: `ap.Start(8080)` in upstream `main/proxy.go`, not configurable.
pub const ACTIONLOOP_PORT: u16 = 8080;

/// What each proxy writes to its stdout and stderr after every activation (and what the invoker
/// reads up to, to cut one activation's logs from the next).
pub const SENTINEL: &str = "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX";

/// How long any single HTTP exchange with a proxy may take before the test gives up (the Go
/// proxy itself never times out: a missing reply would hang it forever).
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a proxy may take to start listening, or an expected event to happen.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Serialises the Go proxy tests of this process: they all need port 8080.
static ACTIONLOOP_PORT_LOCK: Mutex<()> = Mutex::new(());

/// The proxies' build output.
pub struct Built {
    pub actionloop: PathBuf,
    pub python: PathBuf,
    /// `tests/openwhisk-proxies` (holds `run-dockerskeleton.py` and the dockerskeleton sources).
    pub sources: PathBuf,
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn target_dir() -> PathBuf {
    match option_env!("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => manifest_dir().join(dir),
        _ => manifest_dir().join("target"),
    }
}

/// Builds the proxies once per test process (a no-op when `target/openwhisk-proxies` is current).
pub fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let sources = manifest_dir().join("tests/openwhisk-proxies");
        let out = target_dir().join("openwhisk-proxies");
        let status = Command::new(sources.join("build.sh"))
            .arg(&out)
            .stdin(Stdio::null())
            .status()
            .expect("tests/openwhisk-proxies/build.sh starts (bash is needed)");
        assert!(
            status.success(),
            "tests/openwhisk-proxies/build.sh failed ({status}); its messages above say why"
        );
        Built {
            actionloop: out.join("actionloop"),
            python: out.join("venv/bin/python"),
            sources,
        }
    })
}

/// A running proxy, its output collected.
pub struct Proxy {
    child: Child,
    pub port: u16,
    agent: ureq::Agent,
    stdout: Output,
    stderr: Output,
    readers: Vec<JoinHandle<()>>,
    scratch: PathBuf,
    /// Held while an actionloop proxy owns port 8080; released after the process is gone.
    _port: Option<MutexGuard<'static, ()>>,
}

type Output = Arc<Mutex<Vec<u8>>>;

/// An HTTP answer.
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics (quoting it) when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("HTTP {} body is not JSON ({e}): {}", self.status, self.text()))
    }
}

impl Proxy {
    /// The Go ActionLoop proxy, run as the actionloop images run it: `/bin/proxy` in a working
    /// folder where it unpacks actions under `./action/`, with `env` as its whole environment.
    pub fn actionloop(env: &[(&str, &str)]) -> Proxy {
        let built = built();
        let guard = ACTIONLOOP_PORT_LOCK
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Err(e) = TcpListener::bind(("0.0.0.0", ACTIONLOOP_PORT)) {
            panic!(
                "port {ACTIONLOOP_PORT} is taken ({e}): the Go ActionLoop proxy listens there \
                 (hard-coded upstream). Stop whatever holds it (`ss -ltnp 'sport = :{ACTIONLOOP_PORT}'`) \
                 and run the tests again."
            );
        }
        let mut cmd = Command::new(&built.actionloop);
        cmd.env_clear().envs(env.iter().copied());
        Proxy::start(cmd, temp_path("go-proxy"), ACTIONLOOP_PORT, Some(guard))
    }

    /// The dockerskeleton proxy (`actionproxy.py`) on a free port, serving the action at
    /// `<scratch>/action/exec` as the image serves `/action/exec`. Its environment, which is
    /// also what each action process gets, is `env` plus `PATH` and a `TMPDIR` of its own
    /// (`<scratch>/tmp`, where the one-shot token cache lives).
    pub fn dockerskeleton(env: &[(&str, &str)]) -> Proxy {
        let built = built();
        let port = free_port();
        let scratch = temp_path("dockerskeleton");
        let mut cmd = Command::new(&built.python);
        cmd.arg(built.sources.join("run-dockerskeleton.py"))
            .arg("action")
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("TMPDIR", scratch.join("tmp"))
            .env("FLASK_PROXY_PORT", port.to_string())
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .envs(env.iter().copied());
        Proxy::start(cmd, scratch, port, None)
    }

    fn start(mut cmd: Command, scratch: PathBuf, port: u16, guard: Option<MutexGuard<'static, ()>>) -> Proxy {
        std::fs::create_dir_all(scratch.join("tmp")).expect("scratch folder");
        // Its own process group, so that dropping it also ends the action processes it started.
        cmd.current_dir(&scratch)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("the proxy starts");
        let stdout: Output = Arc::default();
        let stderr: Output = Arc::default();
        let readers = vec![
            collect(child.stdout.take().expect("stdout pipe"), Arc::clone(&stdout)),
            collect(child.stderr.take().expect("stderr pipe"), Arc::clone(&stderr)),
        ];
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(HTTP_TIMEOUT))
            .build()
            .into();
        let mut proxy = Proxy {
            child,
            port,
            agent,
            stdout,
            stderr,
            readers,
            scratch,
            _port: guard,
        };
        proxy.wait_until_listening();
        proxy
    }

    fn wait_until_listening(&mut self) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                self.join_readers();
                panic!(
                    "the proxy exited ({status}) before listening on port {}:\n{}",
                    self.port,
                    self.stderr()
                );
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            assert!(
                started.elapsed() < READY_TIMEOUT,
                "the proxy did not listen on port {} within {READY_TIMEOUT:?}:\n{}",
                self.port,
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// POSTs `body` to `path` (`/init`, `/run`) as the invoker does.
    pub fn post(&self, path: &str, body: &[u8]) -> Reply {
        let url = format!("http://127.0.0.1:{}{path}", self.port);
        let mut response = self
            .agent
            .post(&url)
            .header("content-type", "application/json")
            .send(body)
            .unwrap_or_else(|e| {
                panic!(
                    "POST {path} ({} bytes) got no answer: {e} (the Go proxy waits for the \
                     action's reply line with no timeout of its own)\nproxy stderr:\n{}",
                    body.len(),
                    self.stderr()
                )
            });
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_vec()
            .unwrap_or_else(|e| panic!("POST {path}: unreadable answer: {e}"));
        Reply { status, body }
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().unwrap()).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Waits until both streams carry `n` end-of-activation sentinels (the proxy writes them
    /// before answering, but our readers may not have caught up yet).
    pub fn wait_for_sentinels(&self, n: usize) {
        let started = Instant::now();
        loop {
            let (out, err) = (self.stdout(), self.stderr());
            let (o, e) = (out.matches(SENTINEL).count(), err.matches(SENTINEL).count());
            if o >= n && e >= n {
                assert_eq!((o, e), (n, n), "more sentinels than activations");
                return;
            }
            assert!(
                started.elapsed() < READY_TIMEOUT,
                "expected {n} sentinels, stdout has {o}, stderr {e}:\n{err}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The proxy's stderr cut at each sentinel: what the invoker files under each activation.
    pub fn stderr_per_activation(&self) -> Vec<String> {
        let err = self.stderr();
        let mut parts: Vec<String> = err.split(&format!("{SENTINEL}\n")).map(str::to_string).collect();
        parts.pop(); // after the last sentinel
        parts
    }

    /// The pids of the proxy's live child processes.
    pub fn children(&self) -> Vec<u32> {
        let tasks = format!("/proc/{}/task", self.child.id());
        let mut pids: Vec<u32> = std::fs::read_dir(&tasks)
            .map(|dir| {
                dir.filter_map(Result::ok)
                    .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
                    .flat_map(|s| {
                        s.split_whitespace()
                            .filter_map(|p| p.parse().ok())
                            .collect::<Vec<u32>>()
                    })
                    .collect()
            })
            .unwrap_or_default();
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// The proxy's working folder.
    pub fn scratch(&self) -> &Path {
        &self.scratch
    }

    fn join_readers(&mut self) {
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // The whole group: the proxy and every action process it started.
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

fn collect(mut from: impl std::io::Read + Send + 'static, into: Output) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 64 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => into.lock().unwrap().extend_from_slice(&buf[..n]),
            }
        }
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
