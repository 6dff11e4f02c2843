//! What the fuzz targets run on untrusted bytes, shared by both targets and
//! by the seed-corpus generator (`examples/seed_corpus.rs`).
//!
//! Every function here calls weir's own code exactly as the broker does on
//! bytes from a socket, and asserts the invariants the broker relies on
//! afterwards. A rejection (an `Err`) is a correct outcome; a panic, an
//! abort or a sanitizer report is a bug.

use bytes::Bytes;
use kafka_protocol::messages::RequestKind;
use weir::{
    config::Config,
    handlers::api_versions,
    log::producer_state::{Admission, ProducerStates},
    net::frame::{self, Frame},
    protocol::record_batch::{self, BatchHeader, COMPRESSION_NONE},
};

/// One request frame (the bytes after the size prefix), as
/// `net::connection` handles a frame read from a socket.
pub fn check_request_frame(data: &[u8]) {
    let size_max = Config::default().request_size_bytes_max;
    // The size prefix check, with arbitrary prefixes (the input's first
    // bytes) and with the one this frame would arrive with.
    if let Some(prefix) = data.get(..4) {
        if let Ok(size) = frame::check_size(prefix.try_into().unwrap(), size_max) {
            assert!(size >= weir::limits::REQUEST_HEADER_BYTES_MIN && size as u64 <= size_max);
        }
    }
    let Ok(size) = i32::try_from(data.len()) else {
        return;
    };
    if frame::check_size(size.to_be_bytes(), size_max).is_err() {
        return; // the connection would close before reading the frame
    }
    match frame::decode_frame(Bytes::copy_from_slice(data)) {
        Err(rejection) => assert!(!rejection.kind.is_empty()),
        Ok(Frame::UnsupportedApiVersions { correlation_id }) => {
            api_versions::unsupported_version_response(correlation_id)
                .expect("the UNSUPPORTED_VERSION answer always encodes");
        }
        Ok(Frame::Request(request)) => {
            assert_eq!(request.header.request_api_key, request.api_key as i16);
            if let RequestKind::Produce(produce) = &request.body {
                // What the Produce handler does to each partition's records
                // before the owning shard appends them.
                let max_message_bytes = Config::default().message_max_bytes as usize;
                for topic in &produce.topic_data {
                    for partition in &topic.partition_data {
                        if let Some(records) = &partition.records {
                            check_produced_batch(records, max_message_bytes);
                        }
                    }
                }
            }
        }
    }
}

/// A Produce request's `records` field: validated as the Produce handler
/// does (`validate_produced_batch`, then its policy on the header), then, if
/// accepted, taken through what the log does before and while appending it.
pub fn check_produced_batch(records: &[u8], max_message_bytes: usize) {
    let Ok(header) = record_batch::validate_produced_batch(records, max_message_bytes) else {
        return;
    };
    assert_eq!(header.total_bytes(), records.len(), "one whole batch");
    assert!(header.records_count >= 1);
    assert_eq!(
        header.last_offset(),
        header
            .base_offset
            .saturating_add(i64::from(header.records_count - 1))
    );
    assert!(record_batch::verify_crc(records).is_ok());
    // Exactly one batch, as the log scanner sees it.
    let mut scanner = record_batch::scan_batches(records);
    assert_eq!(scanner.next(), Some(Ok((0, header))));
    assert_eq!(scanner.next(), None);
    assert_eq!(scanner.position(), records.len());
    if header.compression_codec() == COMPRESSION_NONE {
        let mut count = 0;
        for record in record_batch::uncompressed_records(records).expect("uncompressed") {
            let record = record.expect("validated records decode");
            assert_eq!(record.headers().count(), record.headers_count());
            count += 1;
        }
        assert_eq!(count, header.records_count as usize);
    }
    // The log cleaner: keeping every other record (and stamping a delete
    // horizon where a tombstone stays) gives a batch that parses, has a
    // valid CRC and keeps the batch's offsets; any codec error is an Err.
    if let Ok(weir::protocol::batch_filter::Filtered::Rewritten(cleaned)) =
        weir::protocol::batch_filter::filter_batch(
            records,
            &header,
            |offset, _| offset % 2 == 0,
            Some(1_700_000_000_000),
        )
    {
        let cleaned_header = BatchHeader::parse(&cleaned).expect("a cleaned batch parses");
        assert!(record_batch::verify_crc(&cleaned).is_ok());
        assert_eq!(cleaned_header.base_offset, header.base_offset);
        assert_eq!(cleaned_header.last_offset_delta, header.last_offset_delta);
        assert!(cleaned_header.records_count <= header.records_count);
    }
    // The Produce handler's policy: no control batches, idempotent batches
    // need an epoch and a sequence (transactional ones a transactional id,
    // which is the request's business, not the batch's).
    if header.is_control()
        || (header.producer_id >= 0 && (header.base_sequence < 0 || header.producer_epoch < 0))
    {
        return;
    }
    // The log: the producer-state check, then the offset (and
    // LogAppendTime) patches on a copy, whose CRC must still hold.
    let mut states = ProducerStates::default();
    if let Ok(Admission::Append) = states.check(&header) {
        states.record(&header, 1_000, header.max_timestamp);
        if header.producer_id >= 0 {
            assert!(
                !matches!(states.check(&header), Ok(Admission::Append)),
                "a retry of the batch just appended is not appended again"
            );
        }
        let (_, decoded) = ProducerStates::decode(&states.encode(1_001)).expect("snapshot decodes");
        assert_eq!(decoded.len(), states.len());
    }
    let mut patched = records.to_vec();
    record_batch::set_base_offset(&mut patched, 1_000);
    record_batch::set_log_append_time(&mut patched, 1_700_000_000_000);
    assert!(
        record_batch::verify_crc(&patched).is_ok(),
        "patched batch keeps a valid CRC"
    );
    let patched_header = BatchHeader::parse(&patched).expect("patched header parses");
    assert_eq!(patched_header.base_offset, 1_000);
    assert!(patched_header.is_log_append_time());
    assert_eq!(patched_header.max_timestamp, 1_700_000_000_000);
}

/// Arbitrary bytes as a batch, or as a region of concatenated batches (a
/// segment): everything in `protocol::record_batch` that reads a batch.
pub fn check_batch_bytes(data: &[u8]) {
    if let Ok(header) = BatchHeader::parse(data) {
        assert!(header.total_bytes() >= record_batch::BATCH_HEADER_BYTES);
        let _ = (
            header.last_offset(),
            header.compression_codec(),
            header.has_delete_horizon(),
        );
        let _ = (
            header.is_transactional(),
            header.is_control(),
            header.is_log_append_time(),
        );
        // The timestamp lookup of ListOffsets, which decompresses compressed
        // batches (bounded): once for those, at several targets otherwise.
        let targets: &[i64] = if header.compression_codec() == COMPRESSION_NONE {
            &[i64::MIN, 0, header.base_timestamp, header.max_timestamp, i64::MAX]
        } else {
            &[header.max_timestamp]
        };
        for &target_ms in targets {
            if let Some((offset, timestamp_ms)) =
                record_batch::first_record_with_timestamp_at_or_after(data, target_ms)
            {
                assert!(timestamp_ms >= target_ms, "found a record before the target");
                let _ = offset;
            }
        }
    }
    let _ = record_batch::verify_crc(data);
    let mut scanner = record_batch::scan_batches(data);
    let mut end = 0;
    for scanned in scanner.by_ref() {
        let Ok((position, header)) = scanned else {
            break;
        };
        assert_eq!(position, end, "batches are contiguous");
        end = position + header.total_bytes();
        assert!(end <= data.len());
    }
    assert_eq!(scanner.position(), end);
    if let Some(records) = record_batch::uncompressed_records(data) {
        for record in records {
            let Ok(record) = record else { break };
            assert!(record.headers().count() <= record.headers_count());
        }
    }
    check_produced_batch(data, usize::MAX);
}

/// `data` with the CRC the batch header at its start calls for, so that
/// mutations get past the CRC check to the record decoding behind it.
/// `None` if there is no parsable header.
pub fn with_valid_crc(data: &[u8]) -> Option<Vec<u8>> {
    let header = BatchHeader::parse(data).ok()?;
    let end = header.total_bytes().min(data.len());
    let mut fixed = data.to_vec();
    let crc = record_batch::compute_crc(&fixed[..end]);
    fixed[17..21].copy_from_slice(&crc.to_be_bytes());
    Some(fixed)
}
