//! Shared harness for weir's integration tests.
//!
//! Every test starts its own `weir` process on its own loopback port with its
//! own temporary data directory, so test binaries and the tests inside them
//! can run in parallel. The broker is only ever driven through the outside
//! interfaces an operator or a client has: command-line flags, signals, TCP
//! and the Kafka protocol (real clients through `rdkafka`, hand-built frames
//! through [`wire`]).
//!
//! Everything here is bounded in time: a broker that does not come up, does
//! not shut down, or a client that does not get its data within the limits
//! below fails the test with the broker's stderr printed, instead of hanging.
//!
//! Not every test binary uses every helper, hence the `dead_code` allowance.
#![allow(dead_code)]

pub mod http;
pub mod java;
pub mod proxy;
pub mod wire;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::future::Future;
use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders, Timestamp};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tempfile::TempDir;

/// How long a broker may take from spawn until its port accepts connections.
pub const BROKER_START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a broker may take to exit after SIGTERM.
pub const BROKER_STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Upper bound for any single client operation (admin call, metadata, flush).
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
/// Upper bound for reading back everything a test produced.
pub const CONSUME_TIMEOUT: Duration = Duration::from_secs(90);
/// How much of each captured stderr file is printed when a test fails.
const LOG_TAIL_BYTES_MAX: usize = 64 * 1024;

/// Which broker the tests run against: weir (the default), or Apache Kafka
/// itself with `WEIR_TEST_BROKER=kafka` (started through
/// `scripts/kafka-reference.sh`, one KRaft broker in combined mode), so the
/// client-matrix tests are shown to be right about Kafka. Tests of what only
/// weir has (its flags, its files, its crash recovery) run against weir
/// whatever this says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Weir,
    Kafka,
}

pub fn target() -> Target {
    match std::env::var("WEIR_TEST_BROKER").as_deref() {
        Err(_) | Ok("") | Ok("weir") => Target::Weir,
        Ok("kafka") => Target::Kafka,
        Ok(other) => panic!("WEIR_TEST_BROKER={other}: expected weir or kafka"),
    }
}

/// Kafka takes seconds (a JVM, then KRaft) where weir takes milliseconds.
const KAFKA_START_TIMEOUT: Duration = Duration::from_secs(120);
/// The line each broker writes once it serves clients.
const WEIR_SERVING_LINE: &str = "weir serving Kafka on";
const KAFKA_SERVING_LINE: &str = "Kafka Server started";

/// Path of the broker binary under test.
pub fn weir_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_weir"))
}

/// A fresh temporary directory under Cargo's per-target scratch directory
/// (`target/tmp`), removed on drop. Not under `/tmp`: that is often tmpfs,
/// which does not support the O_DIRECT I/O weir's storage uses.
pub fn temp_dir(prefix: &str) -> TempDir {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
    fs::create_dir_all(base).expect("create CARGO_TARGET_TMPDIR");
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(base)
        .unwrap_or_else(|error| panic!("create temp dir in {}: {error}", base.display()))
}

/// A port on 127.0.0.1 that was free a moment ago (bind to port 0, read the
/// port the kernel chose, release it).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0 to find a free port");
    listener
        .local_addr()
        .expect("local_addr of probe listener")
        .port()
}

/// The first of `count` consecutive free ports (weir's `advertise_shards`
/// takes the listen port + shard): each is bound while the run is looked
/// for, then all are released.
pub fn free_port_run(count: u16) -> u16 {
    for _ in 0..64 {
        let first = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0 to find a free port");
        let base = first.local_addr().expect("local_addr of probe listener").port();
        let rest: Vec<TcpListener> = (1..count)
            .map_while(|offset| {
                let port = base.checked_add(offset)?;
                TcpListener::bind(("127.0.0.1", port)).ok()
            })
            .collect();
        if rest.len() + 1 == usize::from(count) {
            return base;
        }
    }
    panic!("no {count} consecutive free ports on 127.0.0.1");
}

/// Optional settings for [`Broker::start_with`].
#[derive(Clone, Debug, Default)]
pub struct BrokerOptions {
    /// Passed as `--auto-create-topics <value>` when set.
    pub auto_create_topics: Option<bool>,
    /// Written to `weir.toml` in the broker's scratch directory and passed as
    /// `--config`.
    pub config_toml: Option<String>,
    /// Run on this data directory instead of a fresh temporary one.
    pub data_dir: Option<PathBuf>,
    /// Advertise `127.0.0.1:<port>` in Metadata instead of the broker's own
    /// port, so clients reach it through something listening there (a proxy).
    pub advertised_port: Option<u16>,
    /// Kafka ports the broker takes, consecutive from its listen port (with
    /// weir's `advertise_shards`, one per shard); 0 means 1.
    pub ports: u16,
    /// Broker settings both weir and Kafka have, as (weir option, Kafka
    /// broker property, value): weir gets `--<option> <value>`, Kafka a line
    /// `<property>=<value>` in its server.properties. They keep the broker
    /// target `WEIR_TEST_BROKER` chooses.
    pub settings: Vec<(&'static str, &'static str, String)>,
    /// Environment of the weir process (e.g. `WEIR_FAULTS_FILE` in builds
    /// with the `fault-injection` feature).
    pub env: Vec<(String, String)>,
}

/// One `weir` process under test.
///
/// The process is started with `PR_SET_PDEATHSIG = SIGKILL`, so it dies with
/// the thread that started it even if the test binary itself is killed; keep a
/// `Broker` on the thread that created it.
pub struct Broker {
    target: Target,
    child: Option<Child>,
    port: u16,
    /// weir's admin HTTP listener (`--admin-listen`).
    admin_port: u16,
    /// Holds the captured stderr/stdout files, the config file and (unless
    /// `BrokerOptions::data_dir` was given) the data directory.
    scratch: TempDir,
    data_dir: PathBuf,
    options: BrokerOptions,
    /// One stderr capture per launch, in launch order.
    stderr_paths: Vec<PathBuf>,
}

impl Broker {
    /// Starts a broker with default settings on a fresh data directory.
    pub fn start() -> Broker {
        Broker::start_with(BrokerOptions::default())
    }

    /// Options that only weir has (its config file, its data directory, an
    /// advertised port) make it a weir broker whatever `WEIR_TEST_BROKER`
    /// says.
    pub fn start_with(options: BrokerOptions) -> Broker {
        let weir_only =
            options.config_toml.is_some() || options.advertised_port.is_some() || options.data_dir.is_some();
        Broker::start_target(if weir_only { Target::Weir } else { target() }, options)
    }

    /// A weir broker whatever `WEIR_TEST_BROKER` says: for tests of what
    /// only weir has.
    pub fn start_weir(options: BrokerOptions) -> Broker {
        Broker::start_target(Target::Weir, options)
    }

    fn start_target(target: Target, options: BrokerOptions) -> Broker {
        let scratch = temp_dir("weir-test-");
        let data_dir = match &options.data_dir {
            Some(dir) => dir.clone(),
            None => {
                let dir = scratch.path().join("data");
                fs::create_dir(&dir).expect("create data dir");
                dir
            }
        };
        let mut broker = Broker {
            target,
            child: None,
            port: free_port_run(options.ports.max(1)),
            admin_port: free_port(),
            scratch,
            data_dir,
            options,
            stderr_paths: Vec::new(),
        };
        broker.launch();
        broker
    }

    /// `http://127.0.0.1:PORT` of weir's admin HTTP listener.
    pub fn admin_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.admin_port)
    }

    /// `127.0.0.1:PORT`, for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("broker is not running").id()
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            None => false,
            Some(child) => child.try_wait().expect("try_wait on weir").is_none(),
        }
    }

    /// Stops the broker (SIGTERM, asserting a clean exit) if it is running,
    /// then starts it again on the same port and data directory.
    pub fn restart(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
        self.wait_for_port_release();
        self.launch();
    }

    /// After the process exited, its listening sockets (owned by io_uring
    /// rings the kernel tears down later) keep accepting for a few ms:
    /// relaunching at once fails with EADDRINUSE, or the start-up check
    /// connects to the dying socket. Wait until the port refuses.
    fn wait_for_port_release(&self) {
        let addr = self.socket_addr();
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok() {
            assert!(
                Instant::now() < deadline,
                "{addr} still accepted connections 10 s after the broker exited"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits until the broker exits by itself (e.g. a crash a test caused)
    /// and returns how it exited; `restart` then starts it again.
    pub fn wait_for_exit(&mut self, timeout: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("wait_for_exit: broker is not running");
        match wait_with_timeout(&mut child, timeout) {
            Some(status) => status,
            None => {
                self.child = Some(child);
                panic!("the broker did not exit within {timeout:?}");
            }
        }
    }

    /// SIGKILL: the broker gets no chance to flush or clean up.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("kill9: broker is not running");
        if let Some(status) = child.try_wait().expect("try_wait on weir") {
            panic!("kill9: weir had already exited with {status} before SIGKILL");
        }
        send_signal(&child, libc::SIGKILL);
        let status = wait_with_timeout(&mut child, BROKER_STOP_TIMEOUT)
            .unwrap_or_else(|| panic!("weir did not die within {BROKER_STOP_TIMEOUT:?} of SIGKILL"));
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "weir exit after SIGKILL: {status}"
        );
    }

    /// SIGTERM, wait, and assert the broker exited with status 0.
    pub fn stop(&mut self) {
        let mut child = self.child.take().expect("stop: broker is not running");
        if let Some(status) = child.try_wait().expect("try_wait on weir") {
            panic!("stop: weir had already exited with {status}");
        }
        send_signal(&child, libc::SIGTERM);
        let status = match wait_with_timeout(&mut child, BROKER_STOP_TIMEOUT) {
            Some(status) => status,
            None => {
                send_signal(&child, libc::SIGKILL);
                let _ = child.wait();
                panic!("weir did not exit within {BROKER_STOP_TIMEOUT:?} of SIGTERM");
            }
        };
        // The JVM exits with 128 + SIGTERM once its shutdown hooks ran.
        let clean = status.success() || (self.target == Target::Kafka && status.code() == Some(143));
        assert!(
            clean,
            "broker exited with {status} after SIGTERM, expected success"
        );
    }

    /// Everything the broker wrote to stderr so far (the tail of each launch).
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for (launch, path) in self.stderr_paths.iter().enumerate() {
            out.push_str(&format!(
                "----- weir stderr, launch {} ({}) -----\n",
                launch + 1,
                path.display()
            ));
            out.push_str(&read_tail(path, LOG_TAIL_BYTES_MAX));
            out.push('\n');
        }
        out
    }

    fn launch(&mut self) {
        self.spawn_launch();
        self.wait_until_accepting();
    }

    /// After `kill9`: starts weir again and returns at once (recovery and
    /// serving still ahead); `wait_until_serving` waits for the port.
    pub fn relaunch_in_background(&mut self) {
        assert_eq!(self.target, Target::Weir, "weir only");
        self.spawn_launch();
    }

    pub fn wait_until_serving(&mut self) {
        self.wait_until_accepting();
    }

    fn spawn_launch(&mut self) {
        assert!(self.child.is_none(), "launch: broker already running");
        let launch = self.stderr_paths.len() + 1;
        let stderr_path = self.scratch.path().join(format!("weir-stderr-{launch}.log"));
        let stdout_path = self.scratch.path().join(format!("weir-stdout-{launch}.log"));
        if self.target == Target::Kafka {
            let child = self.spawn_kafka(launch == 1, &stdout_path, &stderr_path);
            self.stderr_paths.push(stderr_path);
            self.child = Some(child);
            return;
        }
        let advertised_port = self.options.advertised_port.unwrap_or(self.port);
        let mut args = broker_args(self.port, advertised_port, self.admin_port, &self.data_dir);
        if let Some(toml) = &self.options.config_toml {
            let config_path = self.scratch.path().join("weir.toml");
            fs::write(&config_path, toml).expect("write weir.toml");
            args.push("--config".into());
            args.push(config_path.display().to_string());
        }
        if let Some(auto_create) = self.options.auto_create_topics {
            args.push("--auto-create-topics".into());
            args.push(auto_create.to_string());
        }
        for (option, _, value) in &self.options.settings {
            args.push(format!("--{}", option.replace('_', "-")));
            args.push(value.clone());
        }
        let child = spawn_weir(&args, &self.options.env, &stdout_path, &stderr_path);
        self.stderr_paths.push(stderr_path);
        self.child = Some(child);
    }

    /// Apache Kafka through `scripts/kafka-reference.sh`: formatted on the
    /// first launch (on this broker's data directory, with a controller
    /// port of its own), then `run` (which execs the JVM, so the child is
    /// the broker and dies with this thread).
    fn spawn_kafka(&mut self, first_launch: bool, stdout_path: &Path, stderr_path: &Path) -> Child {
        let script = repo_path("scripts/kafka-reference.sh");
        if first_launch {
            let mut extra = match self.options.auto_create_topics {
                Some(enabled) => format!("auto.create.topics.enable={enabled}\n"),
                None => String::new(),
            };
            for (_, property, value) in &self.options.settings {
                extra.push_str(&format!("{property}={value}\n"));
            }
            let status = Command::new(&script)
                .arg("format")
                .arg(&self.data_dir)
                .arg(self.port.to_string())
                .arg(free_port().to_string())
                .env("KAFKA_EXTRA_PROPERTIES", extra)
                .stdin(Stdio::null())
                .status()
                .expect("run scripts/kafka-reference.sh format");
            assert!(
                status.success(),
                "scripts/kafka-reference.sh format failed: {status}"
            );
        }
        let stdout = File::create(stdout_path).expect("create stdout capture file");
        let stderr = File::create(stderr_path).expect("create stderr capture file");
        let mut command = Command::new(&script);
        command
            .arg("run")
            .arg(&self.data_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(stderr));
        die_with_parent(&mut command);
        command.spawn().expect("spawn scripts/kafka-reference.sh run")
    }

    /// Whether this launch's stderr says the broker serves clients.
    fn serving(&self) -> bool {
        let line = match self.target {
            Target::Weir => WEIR_SERVING_LINE,
            Target::Kafka => KAFKA_SERVING_LINE,
        };
        self.stderr_paths
            .last()
            .and_then(|path| fs::read_to_string(path).ok())
            .is_some_and(|text| text.contains(line))
    }

    fn wait_until_accepting(&mut self) {
        let addr = self.socket_addr();
        let start_timeout = match self.target {
            Target::Weir => BROKER_START_TIMEOUT,
            Target::Kafka => KAFKA_START_TIMEOUT,
        };
        let deadline = Instant::now() + start_timeout;
        loop {
            let serving = self.serving();
            let child = self.child.as_mut().expect("child");
            if let Some(status) = child.try_wait().expect("try_wait on weir") {
                self.child = None;
                panic!("weir exited during startup with {status}");
            }
            // The port must be ours: another test may have bound it while a
            // restarted broker was down, so also wait for this launch's
            // "serving" line.
            if serving && TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok() {
                return;
            }
            if Instant::now() >= deadline {
                let pid = child.id();
                let threads: String = std::fs::read_dir(format!("/proc/{pid}/task"))
                    .map(|tasks| {
                        tasks
                            .flatten()
                            .map(|task| {
                                let read = |name: &str| {
                                    std::fs::read_to_string(task.path().join(name)).unwrap_or_default()
                                };
                                format!("  {} wchan={}\n", read("comm").trim(), read("wchan").trim())
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                panic!(
                    "broker did not accept connections on {addr} within {start_timeout:?}\n\
                     threads:\n{threads}stderr:\n{}",
                    self.logs()
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Not send_signal: a second panic while unwinding would abort.
            let _ = child.kill();
            let _ = wait_with_timeout(&mut child, BROKER_STOP_TIMEOUT);
        }
        // Every failed assertion about the broker (startup, stop, kill) and
        // every failed test unwinds through here: show what weir said.
        if thread::panicking() {
            eprintln!("{}", self.logs());
        }
    }
}

/// The flags every broker in these tests gets.
pub fn broker_args(listen_port: u16, advertised_port: u16, admin_port: u16, data_dir: &Path) -> Vec<String> {
    vec![
        "--listen".into(),
        format!("127.0.0.1:{listen_port}"),
        "--admin-listen".into(),
        format!("127.0.0.1:{admin_port}"),
        "--advertised-listener".into(),
        format!("127.0.0.1:{advertised_port}"),
        "--data-dir".into(),
        data_dir.display().to_string(),
        "--cores".into(),
        "2".into(),
    ]
}

/// Spawns `weir` with `args`, stdout and stderr going to the given files.
/// The child is killed by the kernel if the spawning thread dies.
pub fn spawn_weir(
    args: &[String],
    env: &[(String, String)],
    stdout_path: &Path,
    stderr_path: &Path,
) -> Child {
    let stdout = File::create(stdout_path).expect("create stdout capture file");
    let stderr = File::create(stderr_path).expect("create stderr capture file");
    let mut command = Command::new(weir_binary());
    command
        .args(args)
        .envs(env.iter().map(|(key, value)| (key, value)))
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr));
    die_with_parent(&mut command);
    command
        .spawn()
        .unwrap_or_else(|error| panic!("spawn {}: {error}", weir_binary().display()))
}

/// The child gets SIGKILL from the kernel when the thread that spawned it
/// dies, so a killed test binary leaves no broker behind.
fn die_with_parent(command: &mut Command) {
    // SAFETY: the closure runs in the forked child before exec and only calls
    // prctl(2), which is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

pub fn send_signal(child: &Child, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
    // SAFETY: plain kill(2) on a child we have not reaped yet, so the pid
    // cannot have been reused.
    let rc = unsafe { libc::kill(pid, signal) };
    assert_eq!(rc, 0, "kill({pid}, {signal}): {}", io::Error::last_os_error());
}

/// Waits for `child` to exit, at most `timeout`. `None` if it is still running.
pub fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) => {}
            // Already reaped or not ours: nothing left to wait for.
            Err(_) => return None,
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// The last `bytes_max` bytes of a text file (lossy UTF-8).
pub fn read_tail(path: &Path, bytes_max: usize) -> String {
    let mut content = Vec::new();
    if let Err(error) = File::open(path).and_then(|mut file| file.read_to_end(&mut content)) {
        return format!("<cannot read {}: {error}>", path.display());
    }
    let start = content.len().saturating_sub(bytes_max);
    let mut text = String::from_utf8_lossy(&content[start..]).into_owned();
    if start > 0 {
        text.insert_str(0, &format!("<... {start} earlier bytes omitted ...>\n"));
    }
    text
}

// ---------------------------------------------------------------------------
// Futures: rdkafka's admin API is async; tests drive it on the calling thread.
// ---------------------------------------------------------------------------

struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs `future` to completion on this thread, panicking after `timeout`.
pub fn block_on<F: Future>(future: F, timeout: Duration) -> F::Output {
    let waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
    let mut context = Context::from_waker(&waker);
    let mut future = pin!(future);
    let deadline = Instant::now() + timeout;
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        let now = Instant::now();
        assert!(now < deadline, "future did not complete within {timeout:?}");
        thread::park_timeout(deadline - now);
    }
}

// ---------------------------------------------------------------------------
// rdkafka clients
// ---------------------------------------------------------------------------

/// Settings every client in these tests shares.
pub fn client_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("socket.timeout.ms", "10000")
        .set("client.id", "weir-integration-test");
    config
}

/// A non-idempotent producer (idempotence needs InitProducerId, which is not
/// part of what these tests rely on) with the given `acks`. Retries are off:
/// on a healthy broker nothing needs one, and a retry could reorder or
/// duplicate records, hiding what the broker did.
pub fn producer_config(bootstrap: &str, acks: &str) -> ClientConfig {
    let mut config = client_config(bootstrap);
    config
        .set("acks", acks)
        .set("enable.idempotence", "false")
        .set("retries", "0")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "30000")
        .set("request.timeout.ms", "10000");
    config
}

/// An assign-mode consumer: no group membership, no commits. rdkafka refuses
/// to create a consumer without `group.id`, so it gets an arbitrary one that
/// is never joined. `auto.offset.reset=error` makes an out-of-range position
/// an error instead of a silent jump.
pub fn consumer_config(bootstrap: &str) -> ClientConfig {
    let mut config = client_config(bootstrap);
    config
        .set("group.id", format!("weir-tests-unjoined-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "error")
        .set("enable.partition.eof", "false")
        .set("fetch.wait.max.ms", "100")
        .set("allow.auto.create.topics", "false");
    config
}

pub fn consumer(bootstrap: &str) -> BaseConsumer {
    consumer_config(bootstrap).create().expect("create consumer")
}

pub fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    client_config(bootstrap).create().expect("create admin client")
}

pub fn admin_options() -> AdminOptions {
    AdminOptions::new()
        .request_timeout(Some(Duration::from_secs(20)))
        .operation_timeout(Some(Duration::from_secs(20)))
}

/// Creates `topic` through the CreateTopics API (replication factor 1) and
/// waits until Metadata shows all its partitions with a leader.
pub fn create_topic(bootstrap: &str, topic: &str, partitions: i32, configs: &[(&str, &str)]) {
    let admin = admin(bootstrap);
    let mut new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    for (key, value) in configs {
        new_topic = new_topic.set(key, value);
    }
    let results = block_on(
        admin.create_topics([&new_topic], &admin_options()),
        CLIENT_TIMEOUT,
    )
    .expect("CreateTopics request");
    assert_eq!(
        results,
        vec![Ok(topic.to_string())],
        "CreateTopics result for {topic}"
    );
    wait_for_partition_count(bootstrap, topic, partitions);
}

/// Polls Metadata until `topic` has exactly `partitions` partitions, each with
/// a leader.
pub fn wait_for_partition_count(bootstrap: &str, topic: &str, partitions: i32) {
    let client = consumer(bootstrap);
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    let mut last_seen = String::from("nothing yet");
    loop {
        match client.fetch_metadata(Some(topic), Duration::from_secs(5)) {
            Ok(metadata) => {
                if let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) {
                    let led = found.partitions().iter().filter(|p| p.leader() >= 0).count();
                    if found.error().is_none()
                        && found.partitions().len() == partitions as usize
                        && led == partitions as usize
                    {
                        return;
                    }
                    last_seen = format!(
                        "error {:?}, {} partitions, {led} with a leader",
                        found.error(),
                        found.partitions().len()
                    );
                }
            }
            Err(error) => last_seen = format!("metadata error {error}"),
        }
        assert!(
            Instant::now() < deadline,
            "topic {topic} did not reach {partitions} led partitions within {CLIENT_TIMEOUT:?}; last seen: {last_seen}"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

/// Names of all topics the broker lists in an all-topics Metadata request.
pub fn list_topics(bootstrap: &str) -> Vec<String> {
    let metadata = consumer(bootstrap)
        .fetch_metadata(None, CLIENT_TIMEOUT)
        .expect("fetch metadata for all topics");
    metadata.topics().iter().map(|t| t.name().to_string()).collect()
}

/// (low, high) watermarks via ListOffsets earliest/latest.
pub fn watermarks(bootstrap: &str, topic: &str, partition: i32) -> (i64, i64) {
    consumer(bootstrap)
        .fetch_watermarks(topic, partition, CLIENT_TIMEOUT)
        .unwrap_or_else(|error| panic!("watermarks of {topic}/{partition}: {error}"))
}

// ---------------------------------------------------------------------------
// Messages: what tests send, what they read back.
// ---------------------------------------------------------------------------

/// One record as a test produces it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestMessage {
    pub partition: i32,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// CreateTime in milliseconds; `None` lets the client stamp it.
    pub timestamp_ms: Option<i64>,
}

impl TestMessage {
    pub fn keyed(partition: i32, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> TestMessage {
        TestMessage {
            partition,
            key: Some(key.into()),
            value: Some(value.into()),
            headers: Vec::new(),
            timestamp_ms: None,
        }
    }
}

/// One record as a consumer returned it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumedMessage {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    pub timestamp: Timestamp,
}

impl ConsumedMessage {
    fn from_message<M: Message>(message: &M) -> ConsumedMessage {
        let headers = message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                    .collect()
            })
            .unwrap_or_default();
        ConsumedMessage {
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            value: message.payload().map(<[u8]>::to_vec),
            headers,
            timestamp: message.timestamp(),
        }
    }

    /// True if this is exactly what `sent` asked for (partition, key, value,
    /// headers and, when the test set one, the CreateTime timestamp).
    pub fn matches(&self, sent: &TestMessage) -> bool {
        self.partition == sent.partition
            && self.key == sent.key
            && self.value == sent.value
            && self.headers == sent.headers
            && match sent.timestamp_ms {
                Some(timestamp_ms) => self.timestamp == Timestamp::CreateTime(timestamp_ms),
                None => true,
            }
    }
}

/// Deterministic pseudo-random bytes (splitmix64), so a value can be checked
/// from its id alone.
pub fn pseudo_random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed ^ 0x9E37_79B9_7F4A_7C15;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        out.extend_from_slice(&z.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// What a producer's delivery report said about one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// Index of the message in the slice the test sent.
    pub id: usize,
    /// `Ok((partition, offset))` when acknowledged, the error otherwise.
    pub outcome: Result<(i32, i64), String>,
}

pub type DeliveryLog = Arc<Mutex<Vec<Delivery>>>;

/// Producer context that records every delivery report.
pub struct RecordingContext {
    pub deliveries: DeliveryLog,
}

impl ClientContext for RecordingContext {}

impl ProducerContext for RecordingContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, id: usize) {
        let outcome = match result {
            Ok(message) => Ok((message.partition(), message.offset())),
            Err((error, _)) => Err(error.to_string()),
        };
        self.deliveries
            .lock()
            .expect("delivery log lock")
            .push(Delivery { id, outcome });
    }
}

pub type RecordingProducer = BaseProducer<RecordingContext>;

pub fn recording_producer(config: &ClientConfig) -> (RecordingProducer, DeliveryLog) {
    let deliveries = DeliveryLog::default();
    let producer = config
        .create_with_context(RecordingContext {
            deliveries: Arc::clone(&deliveries),
        })
        .expect("create producer");
    (producer, deliveries)
}

/// Enqueues one message (delivery opaque = `id`), waiting while the local
/// queue is full.
pub fn enqueue(producer: &RecordingProducer, topic: &str, id: usize, message: &TestMessage) {
    let headers = (!message.headers.is_empty()).then(|| {
        message
            .headers
            .iter()
            .fold(OwnedHeaders::new(), |headers, (key, value)| {
                headers.insert(Header {
                    key: key.as_str(),
                    value: value.as_deref(),
                })
            })
    });
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    loop {
        let mut record: BaseRecord<'_, [u8], [u8], usize> =
            BaseRecord::with_opaque_to(topic, id).partition(message.partition);
        if let Some(key) = &message.key {
            record = record.key(key.as_slice());
        }
        if let Some(value) = &message.value {
            record = record.payload(value.as_slice());
        }
        if let Some(timestamp_ms) = message.timestamp_ms {
            record = record.timestamp(timestamp_ms);
        }
        if let Some(headers) = &headers {
            record = record.headers(headers.clone());
        }
        match producer.send(record) {
            Ok(()) => return,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                assert!(
                    Instant::now() < deadline,
                    "producer queue stayed full for {CLIENT_TIMEOUT:?}"
                );
                producer.poll(Duration::from_millis(10));
            }
            Err((error, _)) => panic!("enqueue message {id} to {topic}: {error}"),
        }
    }
}

/// Sends every message, flushes, and returns one delivery report per message,
/// ordered by message index. Does not assert success: callers decide.
pub fn produce_and_flush(
    producer: &RecordingProducer,
    deliveries: &DeliveryLog,
    topic: &str,
    messages: &[TestMessage],
) -> Vec<Delivery> {
    deliveries.lock().expect("delivery log lock").clear();
    for (id, message) in messages.iter().enumerate() {
        enqueue(producer, topic, id, message);
        producer.poll(Duration::ZERO);
    }
    producer
        .flush(Duration::from_secs(60))
        .unwrap_or_else(|error| panic!("flush of {} messages to {topic}: {error}", messages.len()));
    let mut reports = std::mem::take(&mut *deliveries.lock().expect("delivery log lock"));
    reports.sort_by_key(|d| d.id);
    let ids: Vec<usize> = reports.iter().map(|d| d.id).collect();
    assert_eq!(
        ids,
        (0..messages.len()).collect::<Vec<_>>(),
        "exactly one delivery report per message"
    );
    reports
}

/// Produces with the given acks and asserts every message was acknowledged.
pub fn produce_all_acked(
    bootstrap: &str,
    acks: &str,
    topic: &str,
    messages: &[TestMessage],
) -> Vec<Delivery> {
    let (producer, deliveries) = recording_producer(&producer_config(bootstrap, acks));
    let reports = produce_and_flush(&producer, &deliveries, topic, messages);
    let failed: Vec<&Delivery> = reports.iter().filter(|d| d.outcome.is_err()).collect();
    assert!(
        failed.is_empty(),
        "{} of {} messages to {topic} failed, first: {:?}",
        failed.len(),
        messages.len(),
        failed.first()
    );
    reports
}

/// Reads partitions `expected[i].0` of `topic` from offset 0 with an
/// assign-mode consumer until each holds exactly `expected[i].1` messages.
///
/// Asserts, per partition: offsets are dense from 0 and arrive in order, no
/// message beyond the expected count is delivered, and the high watermark
/// equals the count.
pub fn consume_exact(
    bootstrap: &str,
    topic: &str,
    expected: &[(i32, usize)],
) -> BTreeMap<i32, Vec<ConsumedMessage>> {
    let consumer = consumer(bootstrap);
    let mut assignment = TopicPartitionList::new();
    for &(partition, _) in expected {
        assignment
            .add_partition_offset(topic, partition, Offset::Offset(0))
            .expect("add partition to assignment");
    }
    consumer.assign(&assignment).expect("assign");
    let wanted: BTreeMap<i32, usize> = expected.iter().copied().collect();
    let mut received: BTreeMap<i32, Vec<ConsumedMessage>> =
        wanted.keys().map(|&partition| (partition, Vec::new())).collect();
    let mut errors: Vec<String> = Vec::new();
    let deadline = Instant::now() + CONSUME_TIMEOUT;
    let complete = |received: &BTreeMap<i32, Vec<ConsumedMessage>>| {
        wanted
            .iter()
            .all(|(partition, count)| received[partition].len() == *count)
    };
    while !complete(&received) {
        if Instant::now() >= deadline {
            let counts: BTreeMap<i32, (usize, usize)> = wanted
                .iter()
                .map(|(p, count)| (*p, (received[p].len(), *count)))
                .collect();
            panic!(
                "consuming {topic}: (received, expected) per partition {counts:?} after {CONSUME_TIMEOUT:?}; client errors: {errors:?}"
            );
        }
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Err(error)) if errors.len() < 20 => errors.push(error.to_string()),
            Some(Err(_)) => {}
            Some(Ok(message)) => {
                let consumed = ConsumedMessage::from_message(&message);
                let Some(partition_messages) = received.get_mut(&consumed.partition) else {
                    panic!("message from unassigned partition {}", consumed.partition);
                };
                assert_eq!(
                    consumed.offset,
                    partition_messages.len() as i64,
                    "{topic}/{}: offsets must be dense from 0 and in order",
                    consumed.partition
                );
                partition_messages.push(consumed);
            }
        }
    }
    // Anything still in flight would be a message past the expected end.
    let drain_until = Instant::now() + Duration::from_millis(300);
    while Instant::now() < drain_until {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(50)) {
            panic!(
                "{topic}/{}: unexpected message at offset {} beyond the expected count",
                message.partition(),
                message.offset()
            );
        }
    }
    for (&partition, &count) in &wanted {
        let (low, high) = consumer
            .fetch_watermarks(topic, partition, CLIENT_TIMEOUT)
            .expect("fetch watermarks");
        assert_eq!((low, high), (0, count as i64), "{topic}/{partition} watermarks");
    }
    received
}

/// Produce one message and read it back, proving the broker still serves
/// clients normally (used after feeding it bad input).
pub fn assert_broker_serves_clients(bootstrap: &str, topic: &str) {
    create_topic(bootstrap, topic, 1, &[]);
    let message = TestMessage {
        timestamp_ms: Some(1_700_000_000_000),
        ..TestMessage::keyed(0, "health-key", "health-value")
    };
    let reports = produce_all_acked(bootstrap, "all", topic, std::slice::from_ref(&message));
    assert_eq!(reports[0].outcome, Ok((0, 0)));
    let consumed = consume_exact(bootstrap, topic, &[(0, 1)]);
    assert!(
        consumed[&0][0].matches(&message),
        "health check read back {:?}",
        consumed[&0][0]
    );
}

/// Fails (never skips) when python3 or kafka-python is missing.
pub fn assert_kafka_python_installed() {
    assert_python_module_installed("kafka", "kafka-python");
}

/// Fails (never skips) when python3 or confluent-kafka is missing.
pub fn assert_confluent_kafka_installed() {
    assert_python_module_installed("confluent_kafka", "confluent-kafka");
}

/// Fails (never skips) when python3 cannot import `module` (the pip
/// package `package`, from tests/python/requirements.txt).
fn assert_python_module_installed(module: &str, package: &str) {
    let output = std::process::Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .unwrap_or_else(|error| {
            panic!("cannot run python3 ({error}): run the README's test command, ./scripts/test.sh, which installs it")
        });
    assert!(
        output.status.success(),
        "{package} is not installed for python3: run the README's test command, \
         ./scripts/test.sh, which installs it (pip install -r tests/python/requirements.txt).\n\
         python3 said: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs `python3 tests/python/<script> <bootstrap> <args...>` and asserts it
/// exits 0 within `timeout` (see [`run_client`]).
pub fn run_python_script(bootstrap: &str, script: &str, args: &[&str], timeout: Duration) {
    let path = repo_path("tests/python").join(script);
    let mut all_args = vec![path.display().to_string(), bootstrap.to_string()];
    all_args.extend(args.iter().map(|arg| arg.to_string()));
    run_client("python3", &all_args, &[], timeout);
}

/// A path inside the repository checkout.
pub fn repo_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// Runs an independent client program (`program args...`, with `envs` added
/// to the environment) and asserts it exits 0 within `timeout`, showing its
/// output otherwise (and on success, on stderr). Returns its stdout.
pub fn run_client(program: &str, args: &[String], envs: &[(&str, &str)], timeout: Duration) -> String {
    let logs = temp_dir("weir-client-");
    let stdout_path = logs.path().join("client-stdout.log");
    let stderr_path = logs.path().join("client-stderr.log");
    let mut child = Command::new(program)
        .args(args)
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(File::create(&stdout_path).expect("stdout file"))
        .stderr(File::create(&stderr_path).expect("stderr file"))
        .spawn()
        .unwrap_or_else(|error| {
            panic!("cannot run {program} ({error}): run the README's test command, ./scripts/test.sh, which installs it")
        });
    let status = wait_with_timeout(&mut child, timeout);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let name = args
        .iter()
        .take(3)
        .fold(program.to_string(), |name, arg| format!("{name} {arg}"));
    let output = format!(
        "--- {name} stdout ---\n{}\n--- {name} stderr ---\n{}",
        read_tail(&stdout_path, 16 * 1024),
        read_tail(&stderr_path, 64 * 1024)
    );
    let status = status.unwrap_or_else(|| panic!("{name} ran longer than {timeout:?}\n{output}"));
    assert!(status.success(), "{name} exited with {status}\n{output}");
    eprintln!("{output}");
    fs::read_to_string(&stdout_path).expect("read client stdout")
}

/// A weir broker (built with the `fault-injection` feature) that reads its
/// armed storage faults from a file: returns the broker, the directory that
/// holds the file (keep it alive) and the file, initially empty.
pub fn start_with_faults(settings: Vec<(&'static str, &'static str, String)>) -> (Broker, TempDir, PathBuf) {
    let dir = temp_dir("weir-faults-");
    let faults = dir.path().join("faults");
    fs::write(&faults, "").expect("write the faults file");
    let broker = Broker::start_weir(BrokerOptions {
        env: vec![("WEIR_FAULTS_FILE".into(), faults.display().to_string())],
        settings,
        ..BrokerOptions::default()
    });
    (broker, dir, faults)
}

/// Arms one fault point (`log::fault`): `action` is eio, enospc or crash.
pub fn arm_fault(faults: &Path, point: &str, action: &str) {
    fs::write(faults, format!("{point}={action}\n")).expect("arm the fault");
}

pub fn clear_faults(faults: &Path) {
    fs::write(faults, "").expect("clear the faults");
}

/// Replaces a topic's config overrides with `configs` (AlterConfigs, which
/// is what librdkafka's admin API sends: unnamed overrides are removed).
pub fn alter_topic_configs(bootstrap: &str, topic: &str, configs: &[(&str, &str)]) {
    let admin = admin(bootstrap);
    let mut alter = rdkafka::admin::AlterConfig::new(rdkafka::admin::ResourceSpecifier::Topic(topic));
    for (key, value) in configs {
        alter = alter.set(key, value);
    }
    let results = block_on(admin.alter_configs([&alter], &admin_options()), CLIENT_TIMEOUT)
        .expect("AlterConfigs request");
    assert!(
        results.iter().all(Result::is_ok),
        "AlterConfigs of {topic}: {results:?}"
    );
}

/// Bytes of a `.log` file up to its last non-zero byte: weir keeps the
/// active segment written with zeros ahead of the appends
/// (`segment_preallocate_bytes`), which are not data (a batch may end in a
/// few zero bytes too). 0 for a file that is gone (Kafka renames segments
/// to `.deleted` under a reader's feet).
pub fn log_data_bytes(path: &Path) -> u64 {
    fs::read(path).map_or(0, |bytes| {
        bytes
            .iter()
            .rposition(|&b| b != 0)
            .map_or(0, |last| last as u64 + 1)
    })
}

/// Base offsets of the `.log` files of a weir partition directory, in order.
pub fn segment_bases(partition_dir: &Path) -> Vec<i64> {
    let mut bases: Vec<i64> = fs::read_dir(partition_dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter_map(|name| name.strip_suffix(".log")?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    bases.sort_unstable();
    bases
}

/// `count` records of `topic`/`partition` from `offset` on, which must be
/// dense (no compaction gaps).
pub fn consume_from(
    bootstrap: &str,
    topic: &str,
    partition: i32,
    offset: i64,
    count: usize,
) -> Vec<ConsumedMessage> {
    let consumer = consumer(bootstrap);
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, partition, Offset::Offset(offset))
        .expect("assignment");
    consumer.assign(&assignment).expect("assign");
    let deadline = Instant::now() + CONSUME_TIMEOUT;
    let mut received: Vec<ConsumedMessage> = Vec::with_capacity(count);
    while received.len() < count {
        assert!(
            Instant::now() < deadline,
            "consuming {topic}/{partition} from {offset}: {} of {count} records",
            received.len()
        );
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
            let consumed = ConsumedMessage::from_message(&message);
            assert_eq!(
                consumed.offset,
                offset + received.len() as i64,
                "dense offsets in order"
            );
            received.push(consumed);
        }
    }
    received
}

/// Every record of `topic`/`partition` from its start up to `end` (the high
/// watermark), gaps allowed (a compacted log); offsets strictly increase.
pub fn consume_sparse(bootstrap: &str, topic: &str, partition: i32, end: i64) -> Vec<ConsumedMessage> {
    let mut config = consumer_config(bootstrap);
    config.set("enable.partition.eof", "true");
    let consumer: BaseConsumer = config.create().expect("create consumer");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, partition, Offset::Beginning)
        .expect("assignment");
    consumer.assign(&assignment).expect("assign");
    let deadline = Instant::now() + CONSUME_TIMEOUT;
    let mut received: Vec<ConsumedMessage> = Vec::new();
    loop {
        assert!(
            Instant::now() < deadline,
            "consuming {topic}/{partition} to {end}"
        );
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                let consumed = ConsumedMessage::from_message(&message);
                if let Some(last) = received.last() {
                    assert!(consumed.offset > last.offset, "offsets increase");
                }
                received.push(consumed);
            }
            Some(Err(KafkaError::PartitionEOF(_))) => {
                let position = consumer.position().ok().and_then(|list| {
                    list.find_partition(topic, partition)
                        .and_then(|p| p.offset().to_raw())
                });
                if position.is_some_and(|p| p >= end) || received.last().is_some_and(|r| r.offset >= end - 1)
                {
                    return received;
                }
            }
            _ => {}
        }
    }
}
