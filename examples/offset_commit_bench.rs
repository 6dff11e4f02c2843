//! OffsetCommit throughput of one group coordinator (one shard): a raw
//! client commits one partition's offset per request (simple commits,
//! generation -1), INFLIGHT requests pipelined on one connection, for
//! SECONDS, and prints commits/s and the latency distribution. Every commit
//! is an append to `__consumer_offsets` acknowledged after fdatasync
//! (group-committed), as Kafka acknowledges with acks=all.
//!
//! ```text
//! cargo run --release --example offset_commit_bench -- BOOTSTRAP TOPIC [INFLIGHT=64] [SECONDS=5]
//! ```
//! TOPIC must exist (its partition 0 is committed).

use std::{
    collections::VecDeque,
    io::{Read, Write},
    net::TcpStream,
    time::{Duration, Instant},
};

use bytes::{Bytes, BytesMut};
use hdrhistogram::Histogram;
use kafka_protocol::{
    messages::{
        offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic},
        ApiKey, GroupId, OffsetCommitRequest, OffsetCommitResponse, RequestHeader, ResponseHeader, TopicName,
    },
    protocol::{Decodable, Encodable, StrBytes},
};

const VERSION: i16 = 8;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: BOOTSTRAP TOPIC [INFLIGHT=64] [SECONDS=5]");
        std::process::exit(2);
    }
    let inflight: usize = args.get(2).map_or(64, |a| a.parse().expect("INFLIGHT"));
    let seconds: u64 = args.get(3).map_or(5, |a| a.parse().expect("SECONDS"));
    let mut stream = TcpStream::connect(&args[0]).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let group = format!("commit-bench-{}", std::process::id());
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
    let mut sent_at: VecDeque<Instant> = VecDeque::new();
    let (mut next_id, mut committed, mut errors) = (0i32, 0u64, 0u64);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    loop {
        while sent_at.len() < inflight && Instant::now() < deadline {
            let mut partition = OffsetCommitRequestPartition::default();
            partition.partition_index = 0;
            partition.committed_offset = i64::from(next_id);
            partition.committed_leader_epoch = -1;
            let mut topic = OffsetCommitRequestTopic::default();
            topic.name = TopicName(StrBytes::from_string(args[1].clone()));
            topic.partitions = vec![partition];
            let mut request = OffsetCommitRequest::default();
            request.group_id = GroupId(StrBytes::from_string(group.clone()));
            request.generation_id_or_member_epoch = -1;
            request.topics = vec![topic];
            let mut header = RequestHeader::default();
            header.request_api_key = ApiKey::OffsetCommit as i16;
            header.request_api_version = VERSION;
            header.correlation_id = next_id;
            let mut frame = BytesMut::new();
            frame.extend_from_slice(&[0; 4]);
            header
                .encode(&mut frame, ApiKey::OffsetCommit.request_header_version(VERSION))
                .expect("header");
            request.encode(&mut frame, VERSION).expect("request");
            let size = (frame.len() - 4) as i32;
            frame[..4].copy_from_slice(&size.to_be_bytes());
            stream.write_all(&frame).expect("send");
            sent_at.push_back(Instant::now());
            next_id += 1;
        }
        let Some(sent) = sent_at.pop_front() else {
            break;
        };
        let mut size = [0u8; 4];
        stream.read_exact(&mut size).expect("response size");
        let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
        stream.read_exact(&mut body).expect("response");
        let mut body = Bytes::from(body);
        ResponseHeader::decode(&mut body, ApiKey::OffsetCommit.response_header_version(VERSION))
            .expect("header");
        let response = OffsetCommitResponse::decode(&mut body, VERSION).expect("response");
        let ok = response
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .all(|p| p.error_code == 0);
        if ok {
            committed += 1;
        } else {
            errors += 1;
        }
        latency.saturating_record(sent.elapsed().as_micros() as u64);
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "commits={committed} errors={errors} seconds={elapsed:.2} commits_per_s={:.0} inflight={inflight} \
         latency_us p50={} p99={} p999={} max={}",
        committed as f64 / elapsed,
        latency.value_at_quantile(0.5),
        latency.value_at_quantile(0.99),
        latency.value_at_quantile(0.999),
        latency.max()
    );
}
