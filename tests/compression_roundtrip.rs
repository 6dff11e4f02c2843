//! Compressed batches pass through the broker intact: each codec in its own
//! topic, values byte-exact after consuming, offsets dense, stored batches
//! still carrying the producer's codec.
//!
//! gzip and snappy go through librdkafka end to end. lz4 too, but librdkafka
//! only compresses with lz4 when the broker lists FindCoordinator in
//! ApiVersions (its "LZ4" feature check), and falls back to sending plain
//! batches otherwise; so lz4 batches are also built by hand (an LZ4 frame of
//! stored blocks, which every LZ4 frame decoder accepts) and read back by
//! librdkafka. The `rdkafka` crate with default features builds librdkafka
//! without libzstd (its `builtin.features` lacks `zstd`), so zstd batches are
//! built by hand as zstd frames of raw blocks and read back with
//! `kafka-protocol`.

mod common;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
};
use rdkafka::config::ClientConfig;

use common::wire::{self, batch_layout, Connection, ERROR_NONE};
use common::{
    consume_exact, create_topic, produce_and_flush, producer_config, pseudo_random_bytes, recording_producer,
    Broker, TestMessage,
};

const MESSAGES_PER_PARTITION: usize = 1_000;
const PARTITION_COUNT: i32 = 2;

/// Compressible text of `len` bytes that still differs between messages.
fn compressible_value(id: usize, len: usize) -> Vec<u8> {
    let line = format!("message {id:06} says: the quick brown fox jumps over the lazy dog. ");
    line.bytes().cycle().take(len).collect()
}

/// Value of message `id`: mostly compressible text of sizes from empty to
/// 64 KiB, every 7th one incompressible random bytes.
fn value_for(id: usize) -> Vec<u8> {
    let len = match id % 10 {
        0 => 0,
        1 => 65_536,
        _ => (id * 131) % 4_000,
    };
    if id % 7 == 3 {
        pseudo_random_bytes(id as u64, len)
    } else {
        compressible_value(id, len)
    }
}

/// Kafka's codec id in the batch attributes.
fn codec_id(codec: &str) -> i16 {
    match codec {
        "gzip" => 1,
        "snappy" => 2,
        "lz4" => 3,
        "zstd" => 4,
        other => panic!("unknown codec {other}"),
    }
}

/// Produces through librdkafka with `compression.type = codec`, reads
/// everything back exactly, and returns how many of the stored batches of
/// partition 0 carry the codec (the rest must be plain).
fn rdkafka_codec_roundtrip(broker: &Broker, codec: &str) -> usize {
    let bootstrap = broker.bootstrap();
    let topic = format!("compressed-{codec}");
    create_topic(&bootstrap, &topic, PARTITION_COUNT, &[]);

    let total = MESSAGES_PER_PARTITION * PARTITION_COUNT as usize;
    let messages: Vec<TestMessage> = (0..total)
        .map(|id| TestMessage {
            timestamp_ms: Some(1_690_000_000_000 + id as i64),
            ..TestMessage::keyed((id % 2) as i32, format!("{codec}-{id}"), value_for(id))
        })
        .collect();
    let mut config: ClientConfig = producer_config(&bootstrap, "all");
    config
        .set("compression.type", codec)
        .set("linger.ms", "50")
        .set("batch.num.messages", "200");
    let (producer, deliveries) = recording_producer(&config);
    let reports = produce_and_flush(&producer, &deliveries, &topic, &messages);
    for report in &reports {
        let (partition, offset) = report.outcome.clone().expect("acknowledged");
        assert_eq!(partition, messages[report.id].partition);
        assert_eq!(
            offset,
            (report.id / 2) as i64,
            "{codec}: offset of message {}",
            report.id
        );
    }

    let expected: Vec<(i32, usize)> = (0..PARTITION_COUNT)
        .map(|p| (p, MESSAGES_PER_PARTITION))
        .collect();
    let consumed = consume_exact(&bootstrap, &topic, &expected);
    for (partition, partition_messages) in &consumed {
        for (offset, message) in partition_messages.iter().enumerate() {
            let sent = &messages[offset * 2 + *partition as usize];
            assert!(
                message.matches(sent),
                "{codec} {partition}/{offset}: value of {} bytes read back as {:?} bytes",
                sent.value.as_ref().map_or(0, Vec::len),
                message.value.as_ref().map(Vec::len)
            );
        }
    }

    // The stored batches keep the producer's codec (the topic's
    // compression.type defaults to "producer") and carry valid CRCs.
    // librdkafka sends a batch plain when compressing does not shrink it, so
    // some may be plain; none may use another codec.
    let mut connection = Connection::open(broker.socket_addr());
    let fetched = connection.fetch(&topic, 0, 0, 0);
    assert_eq!(fetched.error_code, ERROR_NONE);
    let batches = wire::split_batches(fetched.records.expect("records in fetch response"));
    assert!(
        !batches.is_empty(),
        "{codec}: fetch from offset 0 returned no whole batch"
    );
    assert_eq!(wire::batch_base_offset(&batches[0]), 0);
    let mut compressed_batches = 0;
    for batch in &batches {
        let attributes = i16::from_be_bytes([
            batch[batch_layout::ATTRIBUTES],
            batch[batch_layout::ATTRIBUTES + 1],
        ]);
        let stored_codec = attributes & 0x7;
        assert!(
            stored_codec == 0 || stored_codec == codec_id(codec),
            "{codec}: a stored batch has codec id {stored_codec}"
        );
        if stored_codec == codec_id(codec) {
            compressed_batches += 1;
        }
        assert!(wire::batch_crc_is_valid(batch), "{codec}: stored batch CRC");
    }
    compressed_batches
}

#[test]
fn gzip_batches_roundtrip_byte_exact() {
    let broker = Broker::start();
    let compressed_batches = rdkafka_codec_roundtrip(&broker, "gzip");
    assert!(compressed_batches > 0, "gzip: no stored batch is gzip-compressed");
}

#[test]
fn snappy_batches_roundtrip_byte_exact() {
    let broker = Broker::start();
    let compressed_batches = rdkafka_codec_roundtrip(&broker, "snappy");
    assert!(
        compressed_batches > 0,
        "snappy: no stored batch is snappy-compressed"
    );
}

#[test]
fn lz4_batches_roundtrip_byte_exact() {
    const BATCH_COUNT: usize = 3;
    const RECORDS_PER_BATCH: usize = 100;
    let broker = Broker::start();
    let compressed_batches = rdkafka_codec_roundtrip(&broker, "lz4");
    if compressed_batches == 0 {
        eprintln!(
            "note: librdkafka sent its lz4-configured batches uncompressed: the broker does not \
             list FindCoordinator in ApiVersions, which librdkafka requires before using lz4"
        );
    }

    // Hand-built lz4 batches, read back by librdkafka's lz4 decoder.
    let bootstrap = broker.bootstrap();
    let topic = "compressed-lz4-by-hand";
    create_topic(&bootstrap, topic, 1, &[]);
    let mut connection = Connection::open(broker.socket_addr());
    let mut sent: Vec<TestMessage> = Vec::new();
    for batch_index in 0..BATCH_COUNT {
        let ids = batch_index * RECORDS_PER_BATCH..(batch_index + 1) * RECORDS_PER_BATCH;
        let records: Vec<Record> = ids
            .clone()
            .map(|id| {
                let offset = (id - batch_index * RECORDS_PER_BATCH) as i64;
                let key = format!("lz4-{id}");
                wire::record(
                    offset,
                    1_690_000_000_000 + id as i64,
                    key.as_bytes(),
                    &value_for(id),
                )
            })
            .collect();
        let batch = encode_batch_with(&records, Compression::Lz4, lz4_stored_frame);
        let response = connection.produce(topic, 0, -1, batch);
        assert_eq!(
            response.error_code, ERROR_NONE,
            "lz4 batch {batch_index} produce error"
        );
        assert_eq!(response.base_offset, (batch_index * RECORDS_PER_BATCH) as i64);
        sent.extend(ids.map(|id| TestMessage {
            timestamp_ms: Some(1_690_000_000_000 + id as i64),
            ..TestMessage::keyed(0, format!("lz4-{id}"), value_for(id))
        }));
    }
    let consumed = consume_exact(&bootstrap, topic, &[(0, sent.len())]);
    for (offset, (got, want)) in consumed[&0].iter().zip(&sent).enumerate() {
        assert!(
            got.matches(want),
            "hand-built lz4 record at offset {offset} read back as {got:?}"
        );
    }
    let fetched = connection.fetch(topic, 0, 0, 0);
    let batches = wire::split_batches(fetched.records.expect("records in fetch response"));
    assert_eq!(batches.len(), BATCH_COUNT, "stored hand-built lz4 batches");
    for batch in &batches {
        assert!(wire::batch_crc_is_valid(batch), "stored lz4 batch CRC");
        assert_eq!(
            batch[batch_layout::ATTRIBUTES + 1] & 0x7,
            3,
            "stored batch codec is lz4"
        );
    }
}

// ---------------------------------------------------------------------------
// lz4, framed by hand (LZ4 frame format, as Kafka uses it) with stored blocks.
// ---------------------------------------------------------------------------

const LZ4_FRAME_MAGIC: u32 = 0x184D_2204;
/// Version 01, independent blocks, no block or content checksums, no size.
const LZ4_FRAME_FLAGS: u8 = 0b0110_0000;
/// Largest block 64 KiB.
const LZ4_BLOCK_DESCRIPTOR: u8 = 0b0100_0000;
const LZ4_BLOCK_SIZE_MAX: usize = 64 * 1024;
/// High bit of a block size: the block is stored, not compressed.
const LZ4_BLOCK_STORED: u32 = 0x8000_0000;

/// XXH32 with seed 0 of a short input (the LZ4 frame header checksum).
fn xxh32_short(input: &[u8]) -> u32 {
    const PRIME_1: u32 = 0x9E37_79B1;
    const PRIME_2: u32 = 0x85EB_CA77;
    const PRIME_3: u32 = 0xC2B2_AE3D;
    const PRIME_4: u32 = 0x27D4_EB2F;
    const PRIME_5: u32 = 0x1656_67B1;
    assert!(input.len() < 16, "only the short-input path is implemented");
    let mut hash = PRIME_5.wrapping_add(input.len() as u32);
    let mut words = input.chunks_exact(4);
    for word in &mut words {
        let word = u32::from_le_bytes(word.try_into().expect("4 bytes"));
        hash = hash
            .wrapping_add(word.wrapping_mul(PRIME_3))
            .rotate_left(17)
            .wrapping_mul(PRIME_4);
    }
    for &byte in words.remainder() {
        hash = hash
            .wrapping_add(u32::from(byte).wrapping_mul(PRIME_5))
            .rotate_left(11)
            .wrapping_mul(PRIME_1);
    }
    hash ^= hash >> 15;
    hash = hash.wrapping_mul(PRIME_2);
    hash ^= hash >> 13;
    hash = hash.wrapping_mul(PRIME_3);
    hash ^ (hash >> 16)
}

/// An LZ4 frame holding `content` in stored (uncompressed) blocks.
fn lz4_stored_frame(content: &[u8], out: &mut BytesMut) {
    out.put_u32_le(LZ4_FRAME_MAGIC);
    out.put_u8(LZ4_FRAME_FLAGS);
    out.put_u8(LZ4_BLOCK_DESCRIPTOR);
    out.put_u8((xxh32_short(&[LZ4_FRAME_FLAGS, LZ4_BLOCK_DESCRIPTOR]) >> 8) as u8);
    for block in content.chunks(LZ4_BLOCK_SIZE_MAX) {
        out.put_u32_le(block.len() as u32 | LZ4_BLOCK_STORED);
        out.put_slice(block);
    }
    out.put_u32_le(0); // EndMark
}

#[test]
fn xxh32_helper_matches_reference_values() {
    // Reference values of XXH32 (seed 0) from the xxHash specification's
    // test vectors; the LZ4 header checksum above depends on them.
    assert_eq!(xxh32_short(b""), 0x02CC_5D05);
    assert_eq!(xxh32_short(b"a"), 0x550D_7456);
    assert_eq!(xxh32_short(b"abc"), 0x32D1_53FF);
}

// ---------------------------------------------------------------------------
// zstd, framed by hand (RFC 8878) with raw (stored) blocks.
// ---------------------------------------------------------------------------

const ZSTD_MAGIC: u32 = 0xFD2F_B528;
const ZSTD_BLOCK_SIZE_MAX: usize = 128 * 1024;

/// A single-segment zstd frame with an 8-byte content size, holding `content`
/// in raw blocks.
fn zstd_raw_frame(content: &[u8], out: &mut BytesMut) {
    out.put_u32_le(ZSTD_MAGIC);
    // Frame_Content_Size_flag = 3 (8 bytes), Single_Segment_flag = 1.
    out.put_u8(0b1110_0000);
    out.put_u64_le(content.len() as u64);
    let mut chunks: Vec<&[u8]> = content.chunks(ZSTD_BLOCK_SIZE_MAX).collect();
    if chunks.is_empty() {
        chunks.push(&[]);
    }
    let last = chunks.len() - 1;
    for (index, chunk) in chunks.iter().enumerate() {
        // Block_Header: Last_Block bit, Block_Type 0 (raw), Block_Size.
        let header = (chunk.len() as u32) << 3 | u32::from(index == last);
        out.put_slice(&header.to_le_bytes()[..3]);
        out.put_slice(chunk);
    }
}

/// Inverse of [`zstd_raw_frame`] for frames of raw and RLE blocks; panics on
/// compressed blocks (the broker must not recompress).
fn zstd_unframe(frame: &[u8]) -> Vec<u8> {
    let take = |at: &mut usize, n: usize| -> &[u8] {
        assert!(*at + n <= frame.len(), "zstd frame truncated");
        let slice = &frame[*at..*at + n];
        *at += n;
        slice
    };
    let mut at = 0;
    let magic = u32::from_le_bytes(take(&mut at, 4).try_into().expect("4 bytes"));
    assert_eq!(magic, ZSTD_MAGIC, "zstd magic");
    let descriptor = take(&mut at, 1)[0];
    let content_size_flag = descriptor >> 6;
    let single_segment = descriptor & 0b0010_0000 != 0;
    let has_checksum = descriptor & 0b0000_0100 != 0;
    let dictionary_id_bytes = [0, 1, 2, 4][usize::from(descriptor & 0b11)];
    if !single_segment {
        take(&mut at, 1);
    }
    take(&mut at, dictionary_id_bytes);
    let content_size_bytes = match (content_size_flag, single_segment) {
        (0, false) => 0,
        (0, true) => 1,
        (1, _) => 2,
        (2, _) => 4,
        _ => 8,
    };
    take(&mut at, content_size_bytes);
    let mut content = Vec::new();
    loop {
        let header = take(&mut at, 3);
        let header = u32::from(header[0]) | u32::from(header[1]) << 8 | u32::from(header[2]) << 16;
        let last = header & 1 == 1;
        let block_type = (header >> 1) & 0b11;
        let size = (header >> 3) as usize;
        match block_type {
            0 => content.extend_from_slice(take(&mut at, size)),
            1 => {
                let byte = take(&mut at, 1)[0];
                content.extend(std::iter::repeat_n(byte, size));
            }
            other => panic!("zstd block type {other}: the stored batch was re-compressed"),
        }
        if last {
            break;
        }
    }
    if has_checksum {
        take(&mut at, 4);
    }
    assert_eq!(at, frame.len(), "bytes after the zstd frame");
    content
}

/// One v2 batch of `records` compressed as `compression` by `frame`.
fn encode_batch_with(records: &[Record], compression: Compression, frame: fn(&[u8], &mut BytesMut)) -> Bytes {
    let mut buffer = BytesMut::new();
    RecordBatchEncoder::encode_with_custom_compression(
        &mut buffer,
        records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
        Some(
            |uncompressed: &mut BytesMut, out: &mut BytesMut, requested: Compression| {
                assert_eq!(requested, compression);
                frame(uncompressed, out);
                Ok(())
            },
        ),
    )
    .expect("encode compressed batch");
    let buffer = buffer.freeze();
    assert_eq!(
        wire::split_batches(buffer.clone()).len(),
        1,
        "records must encode as one batch"
    );
    buffer
}

fn decode_zstd_batch(mut batch: Bytes) -> Vec<Record> {
    RecordBatchDecoder::decode_with_custom_compression(
        &mut batch,
        Some(|compressed: &mut Bytes, compression: Compression| {
            assert_eq!(compression, Compression::Zstd, "stored batch codec");
            Ok(Bytes::from(zstd_unframe(compressed)))
        }),
    )
    .expect("decode zstd batch")
    .records
}

#[test]
fn zstd_batches_roundtrip_byte_exact() {
    const BATCH_COUNT: usize = 3;
    const RECORDS_PER_BATCH: usize = 100;
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    let topic = "compressed-zstd";
    create_topic(&bootstrap, topic, 1, &[]);

    // Kafka accepts zstd from Produce v7 and serves it from Fetch v10.
    let mut connection = Connection::open(broker.socket_addr());
    let mut sent: Vec<Record> = Vec::new();
    for batch_index in 0..BATCH_COUNT {
        let records: Vec<Record> = (0..RECORDS_PER_BATCH)
            .map(|i| {
                let id = batch_index * RECORDS_PER_BATCH + i;
                wire::record(
                    i as i64,
                    1_690_000_000_000 + id as i64,
                    format!("zstd-{id}").as_bytes(),
                    &value_for(id),
                )
            })
            .collect();
        let response = connection.produce_within(
            7..=8,
            topic,
            0,
            -1,
            encode_batch_with(&records, Compression::Zstd, zstd_raw_frame),
        );
        assert_eq!(
            response.error_code, ERROR_NONE,
            "zstd batch {batch_index} produce error"
        );
        assert_eq!(response.base_offset, (batch_index * RECORDS_PER_BATCH) as i64);
        sent.extend(records);
    }
    let total = (BATCH_COUNT * RECORDS_PER_BATCH) as i64;
    assert_eq!(
        connection.list_offset(topic, 0, -1),
        (ERROR_NONE, total),
        "latest offset"
    );

    let mut received: Vec<Record> = Vec::new();
    let deadline = std::time::Instant::now() + common::CLIENT_TIMEOUT;
    while (received.len() as i64) < total {
        assert!(
            std::time::Instant::now() < deadline,
            "zstd fetch stalled at {}",
            received.len()
        );
        let fetched = connection.fetch_within(10..=11, topic, 0, received.len() as i64, 500);
        assert_eq!(fetched.error_code, ERROR_NONE, "zstd fetch error");
        for batch in wire::split_batches(fetched.records.unwrap_or_default()) {
            assert!(wire::batch_crc_is_valid(&batch), "stored zstd batch CRC");
            let base_offset = wire::batch_base_offset(&batch);
            assert_eq!(base_offset, received.len() as i64, "zstd batch base offset");
            received.extend(decode_zstd_batch(batch));
        }
    }
    assert_eq!(received.len(), sent.len());
    for (offset, (got, want)) in received.iter().zip(&sent).enumerate() {
        assert_eq!(got.offset, offset as i64, "zstd record offset");
        assert_eq!(got.key, want.key, "zstd key at {offset}");
        assert_eq!(got.value, want.value, "zstd value at {offset}");
        assert_eq!(got.timestamp, want.timestamp, "zstd timestamp at {offset}");
    }
}
