// The per-card velocity job (bench/velocity/README.md) on Apache Flink, written
// the way Flink users write it: a FileSource of text lines, JSON parsed with the
// Jackson that Flink ships (shaded), keyBy card, a KeyedProcessFunction with a
// ValueState (the card's previous ts) and a ListState (the card's transactions
// in the last 5 minutes), JSON lines written by a FileSink.
//
//   java ... CardVelocity IN OUT_DIR [PARALLELISM]
//
// OUT_DIR receives the FileSink's part files (one per sink subtask; hidden
// `.part-*.inprogress.*` files while the job runs, renamed when it ends).
import java.util.ArrayList;
import java.util.List;

import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.serialization.SimpleStringEncoder;
import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.connector.file.sink.FileSink;
import org.apache.flink.connector.file.src.FileSource;
import org.apache.flink.connector.file.src.reader.TextLineInputFormat;
import org.apache.flink.core.fs.Path;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.streaming.api.functions.sink.filesystem.bucketassigners.BasePathBucketAssigner;
import org.apache.flink.util.Collector;

public class CardVelocity {
    static final long WINDOW_MS = 300_000L;

    /** One parsed input line: the fields the job uses. */
    public static class Txn {
        public String txnId;
        public String cardId;
        public long cents;
        public long ts;

        public Txn() {}
    }

    /** One entry of a card's window. */
    public static class Entry {
        public long ts;
        public long cents;

        public Entry() {}

        Entry(long ts, long cents) {
            this.ts = ts;
            this.cents = cents;
        }
    }

    static final ObjectMapper JSON = new ObjectMapper();

    static Txn parse(String line) throws Exception {
        JsonNode n = JSON.readTree(line);
        Txn t = new Txn();
        t.txnId = n.get("txn_id").asText();
        t.cardId = n.get("card_id").asText();
        t.cents = Math.round(n.get("amount").asDouble() * 100.0);
        t.ts = n.get("ts").asLong();
        return t;
    }

    public static class Velocity extends KeyedProcessFunction<String, Txn, String> {
        private transient ValueState<Long> lastTs;
        private transient ListState<Entry> window;

        @Override
        public void open(OpenContext ctx) {
            lastTs = getRuntimeContext().getState(new ValueStateDescriptor<>("last-ts", Types.LONG));
            window = getRuntimeContext().getListState(new ListStateDescriptor<>("window", Types.POJO(Entry.class)));
        }

        @Override
        public void processElement(Txn t, Context ctx, Collector<String> out) throws Exception {
            Long prev = lastTs.value();
            lastTs.update(t.ts);

            // Keep the entries still inside (ts - 5 min, ts], add this one.
            List<Entry> kept = new ArrayList<>();
            boolean evicted = false;
            long count = 1;
            long sum = t.cents;
            Iterable<Entry> entries = window.get();
            if (entries != null) {
                for (Entry e : entries) {
                    if (e.ts > t.ts - WINDOW_MS) {
                        kept.add(e);
                        count++;
                        sum += e.cents;
                    } else {
                        evicted = true;
                    }
                }
            }
            Entry self = new Entry(t.ts, t.cents);
            if (evicted) {
                kept.add(self);
                window.update(kept);
            } else {
                window.add(self);
            }

            ObjectNode o = JSON.createObjectNode();
            o.put("txn_id", t.txnId);
            o.put("card_id", t.cardId);
            o.put("count_5m", count);
            o.put("sum_5m_cents", sum);
            if (prev == null) {
                o.putNull("gap_ms");
            } else {
                o.put("gap_ms", t.ts - prev);
            }
            out.collect(JSON.writeValueAsString(o));
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 2 || args.length > 3) {
            System.err.println("usage: CardVelocity IN OUT_DIR [PARALLELISM]");
            System.exit(2);
        }
        int parallelism = args.length == 3 ? Integer.parseInt(args[2]) : 1;
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        env.setParallelism(parallelism);

        FileSource<String> source =
                FileSource.forRecordStreamFormat(new TextLineInputFormat(), new Path(args[0])).build();
        FileSink<String> sink =
                FileSink.forRowFormat(new Path(args[1]), new SimpleStringEncoder<String>("UTF-8"))
                        .withBucketAssigner(new BasePathBucketAssigner<>())
                        .build();

        env.fromSource(source, WatermarkStrategy.noWatermarks(), "transactions")
                .map(CardVelocity::parse)
                .returns(Txn.class)
                .name("parse")
                .keyBy(t -> t.cardId)
                .process(new Velocity())
                .name("velocity")
                .sinkTo(sink)
                .name("file-sink");
        env.execute("card-velocity");
    }
}
