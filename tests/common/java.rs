//! Kafka's Java client for the tests: the scenario programs in
//! `tests/java/src/main/java/dev/weir/tests/clients` compiled once (by
//! their sources' hash) against the client Maven installed
//! (`tests/java/install.sh`), and the JVM options they run with.

use std::collections::hash_map::DefaultHasher;
use std::fs;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use std::time::Duration;

use super::{repo_path, run_client, Broker};

/// Upper bound for one scenario program (a JVM running several steps, each
/// bounded by its own 90 s timeouts).
const PROGRAM_TIMEOUT: Duration = Duration::from_secs(600);

const SOURCES: &str = "tests/java/src/main/java/dev/weir/tests/clients";

/// JVM options of every scenario: a small collector and quick start-up for
/// these short programs, and only the client's warnings on stderr.
pub const JVM_OPTIONS: &str =
    "-XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Dorg.slf4j.simpleLogger.defaultLogLevel=warn";

/// The scenario classes (compiled once per test binary) and Kafka's client
/// with its dependencies.
pub fn classpath() -> &'static str {
    static CLASSPATH: OnceLock<String> = OnceLock::new();
    CLASSPATH.get_or_init(|| {
        let dependencies = dependency_classpath();
        let classes = compile_scenarios(&dependencies);
        format!("{}:{dependencies}", classes.display())
    })
}

/// Kafka's client and its dependencies, as `tests/java/install.sh` (Maven)
/// listed them. Fails (never skips) when they are not installed.
fn dependency_classpath() -> String {
    let classpath_file = repo_path("tests/java/target/classpath.txt");
    let classpath = fs::read_to_string(&classpath_file).unwrap_or_else(|error| {
        panic!(
            "{} is unreadable ({error}): run the README's test command, ./scripts/test.sh, which \
             installs Kafka's Java client (tests/java/install.sh)",
            classpath_file.display()
        )
    });
    classpath.trim().to_string()
}

/// Compiles the scenario sources into `target/tmp/java-clients-<hash of the
/// sources>` unless a previous run already did (the directory is renamed
/// into place only once complete).
fn compile_scenarios(dependencies: &str) -> PathBuf {
    let mut sources: Vec<PathBuf> = fs::read_dir(repo_path(SOURCES))
        .expect("list the Java scenario sources")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "java"))
        .collect();
    sources.sort();
    let mut hasher = DefaultHasher::new();
    for source in &sources {
        source.hash(&mut hasher);
        fs::read(source).expect("read a Java source").hash(&mut hasher);
    }
    dependencies.hash(&mut hasher);
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let classes = base.join(format!("java-clients-{:016x}", hasher.finish()));
    if classes.is_dir() {
        return classes;
    }
    fs::create_dir_all(&base).expect("create CARGO_TARGET_TMPDIR");
    let scratch = super::temp_dir("java-clients-build-");
    let output = Command::new("javac")
        .arg("-d")
        .arg(scratch.path())
        .arg("-cp")
        .arg(dependencies)
        .args(&sources)
        .output()
        .expect("run javac (Java 17: ./scripts/test.sh installs it through tests/java/install.sh)");
    assert!(
        output.status.success(),
        "javac of {SOURCES} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // Another test binary may have won the race: its copy is as good.
    let built = scratch.keep();
    if fs::rename(&built, &classes).is_err() {
        let _ = fs::remove_dir_all(&built);
        assert!(
            classes.is_dir(),
            "could not move the compiled scenarios to {}",
            classes.display()
        );
    }
    classes
}

/// Runs `dev.weir.tests.clients.<class> BOOTSTRAP args...` (classpath and
/// JVM options in the environment, so failures name the class) and asserts
/// it ended with its "OK" line (and exit 0, checked by `run_client`).
pub fn run_scenario(broker: &Broker, class: &str, args: &[String]) -> String {
    let mut all_args = vec![format!("dev.weir.tests.clients.{class}"), broker.bootstrap()];
    all_args.extend(args.iter().cloned());
    let envs = [("CLASSPATH", classpath()), ("JDK_JAVA_OPTIONS", JVM_OPTIONS)];
    let stdout = run_client("java", &all_args, &envs, PROGRAM_TIMEOUT);
    let ok_line = format!(
        "{class}{}: OK",
        args.iter().take(2).fold(String::new(), |s, a| s + " " + a)
    );
    assert!(
        stdout.lines().any(|line| line == ok_line),
        "{class} exited 0 without its line {ok_line:?}:\n{stdout}"
    );
    stdout
}
