// Reads record batches with Apache Kafka's own client code and writes them back with it, so
// test_java_batches.py can check our encoder and decoder against the reference
// implementation (snappy-java xerial framing, KafkaLZ4BlockInputStream, zstd-jni, CRC32C).
//
// Usage: java -cp 'libs/*' BatchCheck.java IN.bin OUT.bin MARKERS.bin
//   stdout: one BATCH line per batch of IN.bin (after ensureValid) and one REC line per
//           record, bytes as "x<hex>" and null as "~"; control batches add a MARKER line.
//   OUT.bin: every non-control batch of IN.bin rebuilt by MemoryRecordsBuilder with the
//           same codec, offsets, timestamps, keys, values, headers and producer fields.
//   MARKERS.bin: COMMIT then ABORT end-transaction markers with fixed parameters.
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;

import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.record.TimestampType;
import org.apache.kafka.common.record.internal.ControlRecordType;
import org.apache.kafka.common.record.internal.EndTransactionMarker;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.MemoryRecordsBuilder;
import org.apache.kafka.common.record.internal.MutableRecordBatch;
import org.apache.kafka.common.record.internal.Record;
import org.apache.kafka.common.record.internal.RecordBatch;

public class BatchCheck {
    record Rec(long offset, long timestamp, byte[] key, byte[] value, Header[] headers) {}

    static byte[] bytes(ByteBuffer b) {
        if (b == null) return null;
        byte[] out = new byte[b.remaining()];
        b.duplicate().get(out);
        return out;
    }

    static String hex(byte[] b) {
        return b == null ? "~" : "x" + HexFormat.of().formatHex(b);
    }

    static void write(ByteArrayOutputStream out, MemoryRecords records) {
        ByteBuffer buf = records.buffer().duplicate();
        byte[] b = new byte[buf.remaining()];
        buf.get(b);
        out.writeBytes(b);
    }

    public static void main(String[] args) throws Exception {
        ByteBuffer in = ByteBuffer.wrap(Files.readAllBytes(Path.of(args[0])));
        ByteArrayOutputStream rebuilt = new ByteArrayOutputStream();
        StringBuilder dump = new StringBuilder();
        for (MutableRecordBatch batch : MemoryRecords.readableRecords(in).batches()) {
            batch.ensureValid();
            dump.append(String.join(" ", "BATCH", "" + batch.baseOffset(),
                    "" + batch.compressionType().id, "" + batch.isControlBatch(),
                    "" + batch.isTransactional(), "" + batch.producerId(),
                    "" + batch.producerEpoch(), "" + batch.baseSequence(),
                    "" + batch.maxTimestamp(), "" + batch.lastOffset())).append('\n');
            List<Rec> recs = new ArrayList<>();
            for (Record r : batch) {
                r.ensureValid();
                Rec rec = new Rec(r.offset(), r.timestamp(), bytes(r.key()), bytes(r.value()), r.headers());
                recs.add(rec);
                StringBuilder line = new StringBuilder("REC " + rec.offset + " " + rec.timestamp
                        + " " + hex(rec.key) + " " + hex(rec.value) + " " + rec.headers.length);
                for (Header h : rec.headers) {
                    line.append(' ').append(hex(h.key().getBytes(StandardCharsets.UTF_8)))
                        .append(' ').append(hex(h.value()));
                }
                dump.append(line).append('\n');
                if (batch.isControlBatch()) {
                    EndTransactionMarker m = EndTransactionMarker.deserialize(r);
                    dump.append("MARKER " + m.controlType() + " " + m.coordinatorEpoch()).append('\n');
                }
            }
            if (batch.isControlBatch()) continue;
            MemoryRecordsBuilder builder = MemoryRecords.builder(ByteBuffer.allocate(1 << 22),
                    RecordBatch.MAGIC_VALUE_V2, Compression.of(batch.compressionType()).build(),
                    TimestampType.CREATE_TIME, batch.baseOffset(), RecordBatch.NO_TIMESTAMP,
                    batch.producerId(), batch.producerEpoch(), batch.baseSequence(),
                    batch.isTransactional(), batch.partitionLeaderEpoch());
            for (Rec r : recs) builder.appendWithOffset(r.offset, r.timestamp, r.key, r.value, r.headers);
            write(rebuilt, builder.build());
        }
        Files.write(Path.of(args[1]), rebuilt.toByteArray());

        ByteArrayOutputStream markers = new ByteArrayOutputStream();
        write(markers, MemoryRecords.withEndTransactionMarker(55L, 1_700_000_000_000L, 3, 4000L,
                (short) 2, new EndTransactionMarker(ControlRecordType.COMMIT, 17)));
        write(markers, MemoryRecords.withEndTransactionMarker(56L, 1_700_000_000_001L, 3, 4000L,
                (short) 2, new EndTransactionMarker(ControlRecordType.ABORT, 18)));
        Files.write(Path.of(args[2]), markers.toByteArray());
        System.out.print(dump);
    }
}
