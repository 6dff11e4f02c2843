//! Catch-up read throughput of the broker alone: a minimal raw-protocol
//! consumer that never decodes records (it only walks batch headers to find
//! the next offset), so the client is not the bottleneck the way a full
//! client's per-record work is.
//!
//! ```text
//! cargo run --release --example raw_fetch_baseline -- BOOTSTRAP TOPIC PARTITIONS [BROKER_PID]
//! ```
//!
//! Reads every partition from offset 0 to its high watermark (as of the
//! first response) with Fetch v11 requests of 8 MiB per partition, and
//! prints MB/s, its own CPU seconds per GiB and, with BROKER_PID, the
//! broker's. Prints `progress bytes=N` every second on the way.

#[path = "support/mod.rs"]
mod support;

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::Instant,
};

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::{
    messages::{
        fetch_request::{FetchPartition, FetchTopic},
        ApiKey, FetchRequest, FetchResponse, RequestHeader, ResponseHeader, TopicName,
    },
    protocol::{Decodable, Encodable, StrBytes},
};

const VERSION: i16 = 11;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        eprintln!("usage: BOOTSTRAP TOPIC PARTITIONS [BROKER_PID]");
        std::process::exit(2);
    }
    let mut stream = TcpStream::connect(&args[0]).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let topic = &args[1];
    let partitions: i32 = args[2].parse().expect("PARTITIONS");
    let mut offsets = vec![0i64; partitions as usize];
    let mut ends: Option<Vec<i64>> = None;
    let cpu_before = args.get(3).and_then(|pid| support::cpu_seconds(pid));
    let client_cpu_before = support::cpu_seconds("self");
    let started = Instant::now();
    let (mut bytes, mut requests) = (0u64, 0u64);
    // A line of progress per second, for runs that are cut short.
    let mut progress_at = Instant::now();
    for correlation_id in 0.. {
        if let Some(ends) = &ends {
            if offsets.iter().zip(ends).all(|(offset, end)| offset >= end) {
                break;
            }
        }
        let mut fetch_topic = FetchTopic::default();
        fetch_topic.topic = TopicName(StrBytes::from_string(topic.clone()));
        for (partition, &offset) in offsets.iter().enumerate() {
            let mut wanted = FetchPartition::default();
            wanted.partition = partition as i32;
            wanted.fetch_offset = offset;
            wanted.partition_max_bytes = 8 << 20;
            fetch_topic.partitions.push(wanted);
        }
        let mut request = FetchRequest::default();
        request.max_wait_ms = 100;
        request.min_bytes = 1;
        request.max_bytes = 64 << 20;
        request.session_epoch = -1;
        request.topics = vec![fetch_topic];
        let mut header = RequestHeader::default();
        header.request_api_key = ApiKey::Fetch as i16;
        header.request_api_version = VERSION;
        header.correlation_id = correlation_id;
        let mut frame = BytesMut::new();
        frame.extend_from_slice(&[0; 4]);
        header
            .encode(&mut frame, ApiKey::Fetch.request_header_version(VERSION))
            .expect("header");
        request.encode(&mut frame, VERSION).expect("request");
        let size = (frame.len() - 4) as i32;
        frame[..4].copy_from_slice(&size.to_be_bytes());
        stream.write_all(&frame).expect("send");

        let mut size = [0u8; 4];
        stream.read_exact(&mut size).expect("response size");
        let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
        stream.read_exact(&mut body).expect("response");
        requests += 1;
        let mut body = Bytes::from(body);
        ResponseHeader::decode(&mut body, ApiKey::Fetch.response_header_version(VERSION)).expect("header");
        let response = FetchResponse::decode(&mut body, VERSION).expect("fetch response");
        let mut high_watermarks = vec![0i64; partitions as usize];
        for partition in response.responses.iter().flat_map(|t| t.partitions.iter()) {
            assert_eq!(partition.error_code, 0, "partition {}", partition.partition_index);
            let index = partition.partition_index as usize;
            high_watermarks[index] = partition.high_watermark;
            let mut records = partition.records.clone().unwrap_or_default();
            bytes += records.len() as u64;
            while records.remaining() >= 61 {
                let base_offset = i64::from_be_bytes(records[0..8].try_into().unwrap());
                let length = i32::from_be_bytes(records[8..12].try_into().unwrap()) as usize;
                let last_delta = i32::from_be_bytes(records[23..27].try_into().unwrap());
                offsets[index] = base_offset + i64::from(last_delta) + 1;
                records.advance(12 + length);
            }
        }
        ends.get_or_insert(high_watermarks);
        if progress_at.elapsed().as_secs() >= 1 {
            progress_at = Instant::now();
            println!("progress bytes={bytes}");
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = support::cpu_per_gib(cpu_before, args.get(3), bytes);
    let client_cpu = match (client_cpu_before, support::cpu_seconds("self")) {
        (Some(before), Some(after)) => (after - before) / (bytes as f64 / (1u64 << 30) as f64),
        _ => f64::NAN,
    };
    println!(
        "bytes={bytes} requests={requests} seconds={seconds:.2} throughput_mb_per_s={:.1} \
         client_cpu_s_per_gib={client_cpu:.3}{cpu}",
        bytes as f64 / 1e6 / seconds
    );
}
