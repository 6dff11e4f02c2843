//! The version sweep: every (API key, version) the broker advertises is
//! spoken and decoded by Apache Kafka's own generated protocol code.
//!
//! `tests/java/src/main/java/dev/weir/tests/VersionSweep.java` reads the
//! broker's ApiVersions table over a plain socket, then for every advertised
//! key weir implements and every version in its range sends a well-formed
//! request with real content (built with Kafka's `*RequestData` classes,
//! only fields that exist in that version, the request header version Kafka
//! uses) on the handler's success path: topics created and filled first,
//! records fetched and listed exactly, real group members and generations,
//! open transactions, a read_committed fetch over committed and aborted
//! transactions, fetch sessions. Each response's header version and
//! correlation id are checked, its body must decode with Kafka's response
//! class at that version using exactly the whole frame, and every error code
//! in it must be the expected one. Also: ApiVersions above the advertised
//! maximum is answered in v0 with UNSUPPORTED_VERSION and ApiVersions' own
//! range; Produce v0-v2 (advertised because librdkafka needs them) close
//! the connection without an answer; Produce acks=0 gets no response.
//!
//! Against weir, every advertised key must be one the sweep knows (no
//! `SKIP` line): a new API needs its requests here. With
//! `WEIR_TEST_BROKER=kafka` the same sweep runs over what Kafka 4.1
//! advertises for weir's APIs (often higher versions), and the keys weir
//! does not implement are listed as skipped.

mod common;

use std::time::Duration;

use common::{repo_path, run_client, target, Broker, Target};

/// Upper bound for the whole sweep (about 15 s against either broker on an
/// idle machine: three rounds of classic group joins wait the 3 s initial
/// rebalance delay).
const SWEEP_TIMEOUT: Duration = Duration::from_secs(300);

/// The classpath of the sweep: the compiled test programs and Kafka's jars, both
/// from `tests/java/install.sh`. Fails (never skips) when they are missing.
fn java_classpath() -> String {
    let java = repo_path("tests/java");
    let classes = java.join("target/classes");
    let sweep_class = classes.join("dev/weir/tests/VersionSweep.class");
    let dependencies = java.join("target/classpath.txt");
    assert!(
        sweep_class.is_file() && dependencies.is_file(),
        "{} or {} is missing: run the README's test command, ./scripts/test.sh, which compiles \
         the Java test programs (tests/java/install.sh)",
        sweep_class.display(),
        dependencies.display()
    );
    let dependencies = std::fs::read_to_string(&dependencies).expect("read tests/java/target/classpath.txt");
    format!("{}:{}", classes.display(), dependencies.trim())
}

#[test]
fn every_advertised_api_version_round_trips_through_kafkas_own_codecs() {
    let classpath = java_classpath();
    let broker = Broker::start();
    // The classpath goes through the environment: it is long, and
    // run_client names the client by its first arguments.
    let args = vec!["dev.weir.tests.VersionSweep".to_string(), broker.bootstrap()];
    let stdout = run_client("java", &args, &[("CLASSPATH", &classpath)], SWEEP_TIMEOUT);
    let summary = stdout.lines().last().unwrap_or_default();
    assert!(
        summary.ends_with(" OK, 0 FAILED"),
        "the sweep exited 0 without its summary line; its output:\n{stdout}"
    );
    if target() == Target::Weir {
        let skipped: Vec<&str> = stdout.lines().filter(|line| line.starts_with("SKIP")).collect();
        assert!(
            skipped.is_empty(),
            "weir advertises APIs the sweep has no requests for (add them to VersionSweep.java):\n{}",
            skipped.join("\n")
        );
    }
    eprintln!("{summary}");
}
