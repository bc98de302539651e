package samsa.compat;

import java.io.BufferedWriter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * Driver of broker/tests/compat/test_java.py. Two modes, each printing one JSON object per line
 * on stdout (progress/events while running, then a final line {"result": ...}):
 *
 * <pre>
 *   produce BOOTSTRAP TOPIC N RATE ACKS_FILE [config=value ...]
 *   consume BOOTSTRAP TOPIC GROUP OUT_FILE STOP_FILE TIMEOUT_S [config=value ...]
 * </pre>
 *
 * produce: the default producer (idempotent, acks=all in kafka-clients 3.x) sends N records
 * with key "k" + (i % 100) and value "seq=" + i, paced at RATE records/s (0: unpaced), then
 * flushes. Each acknowledgement is written to ACKS_FILE as "seq partition offset".
 *
 * consume: a group consumer (subscribe, auto.offset.reset=earliest, manual commitSync after
 * every poll) writes each record as "partition offset key seq" to OUT_FILE, until STOP_FILE
 * exists or TIMEOUT_S passes.
 */
public final class Compat {
    private Compat() {}

    public static void main(String[] args) throws Exception {
        // slf4j-simple: warnings and up to stderr, with timestamps.
        System.setProperty("org.slf4j.simpleLogger.defaultLogLevel",
                System.getProperty("compat.log", "warn"));
        System.setProperty("org.slf4j.simpleLogger.showDateTime", "true");
        System.setProperty("org.slf4j.simpleLogger.dateTimeFormat", "HH:mm:ss.SSS");
        if (args.length < 1) {
            usage();
        }
        switch (args[0]) {
            case "produce":
                produce(args);
                break;
            case "consume":
                consume(args);
                break;
            default:
                usage();
        }
    }

    private static void usage() {
        System.err.println("usage: Compat produce BOOTSTRAP TOPIC N RATE ACKS_FILE [k=v ...]\n"
                + "       Compat consume BOOTSTRAP TOPIC GROUP OUT_FILE STOP_FILE TIMEOUT_S"
                + " [k=v ...]");
        System.exit(2);
    }

    private static void overrides(Properties props, String[] args, int from) {
        for (int i = from; i < args.length; i++) {
            int eq = args[i].indexOf('=');
            if (eq <= 0) {
                throw new IllegalArgumentException("expected config=value, got " + args[i]);
            }
            props.put(args[i].substring(0, eq), args[i].substring(eq + 1));
        }
    }

    private static String q(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') {
                b.append('\\').append(c);
            } else if (c < 0x20) {
                b.append(String.format("\\u%04x", (int) c));
            } else {
                b.append(c);
            }
        }
        return b.append('"').toString();
    }

    private static synchronized void emit(String json) {
        System.out.println(json);
        System.out.flush();
    }

    // --- produce ------------------------------------------------------------------------------

    private static void produce(String[] args) throws Exception {
        if (args.length < 6) {
            usage();
        }
        String bootstrap = args[1];
        String topic = args[2];
        int n = Integer.parseInt(args[3]);
        double rate = Double.parseDouble(args[4]);
        Path acksPath = Path.of(args[5]);

        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ProducerConfig.CLIENT_ID_CONFIG, "samsa-compat-java-producer");
        props.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "300000");
        overrides(props, args, 6);

        AtomicLong acked = new AtomicLong();
        AtomicLong failed = new AtomicLong();
        Map<String, Long> errorsByType = new TreeMap<>();
        List<String> firstErrors = new ArrayList<>();
        long start = System.nanoTime();

        try (BufferedWriter acks = Files.newBufferedWriter(acksPath, StandardCharsets.UTF_8);
             KafkaProducer<String, String> producer =
                     new KafkaProducer<>(props, new StringSerializer(), new StringSerializer())) {
            emit("{\"event\":\"config\",\"enable.idempotence\":"
                    + q(String.valueOf(props.getOrDefault("enable.idempotence", "(default)")))
                    + ",\"acks\":" + q(String.valueOf(props.getOrDefault("acks", "(default)")))
                    + "}");
            Thread progress = new Thread(() -> {
                try {
                    while (true) {
                        Thread.sleep(200);
                        emit(String.format("{\"progress\":{\"acked\":%d,\"failed\":%d,\"t\":%.1f}}",
                                acked.get(), failed.get(), (System.nanoTime() - start) / 1e9));
                    }
                } catch (InterruptedException e) {
                    // done
                }
            }, "progress");
            progress.setDaemon(true);
            progress.start();

            for (int i = 0; i < n; i++) {
                if (rate > 0) {
                    long due = start + (long) (i / rate * 1e9);
                    long wait = due - System.nanoTime();
                    if (wait > 0) {
                        Thread.sleep(wait / 1_000_000, (int) (wait % 1_000_000));
                    }
                }
                final int seq = i;
                producer.send(new ProducerRecord<>(topic, "k" + (i % 100), "seq=" + i),
                        (md, err) -> {
                            // Callbacks run on the producer's I/O thread, one at a time.
                            try {
                                if (err != null) {
                                    failed.incrementAndGet();
                                    synchronized (errorsByType) {
                                        errorsByType.merge(err.getClass().getSimpleName(), 1L,
                                                Long::sum);
                                        if (firstErrors.size() < 10) {
                                            firstErrors.add("seq " + seq + ": " + err);
                                        }
                                    }
                                    acks.write(seq + " error\n");
                                } else {
                                    acked.incrementAndGet();
                                    acks.write(seq + " " + md.partition() + " " + md.offset()
                                            + "\n");
                                }
                            } catch (IOException e) {
                                throw new RuntimeException(e);
                            }
                        });
            }
            producer.flush();
            progress.interrupt();
            acks.flush();
            StringBuilder b = new StringBuilder();
            b.append("{\"result\":{\"sent\":").append(n).append(",\"acked\":").append(acked.get())
                    .append(",\"failed\":").append(failed.get()).append(",\"seconds\":")
                    .append(String.format("%.1f", (System.nanoTime() - start) / 1e9))
                    .append(",\"errors\":{");
            synchronized (errorsByType) {
                String sep = "";
                for (Map.Entry<String, Long> e : errorsByType.entrySet()) {
                    b.append(sep).append(q(e.getKey())).append(':').append(e.getValue());
                    sep = ",";
                }
                b.append("},\"first_errors\":[");
                sep = "";
                for (String e : firstErrors) {
                    b.append(sep).append(q(e));
                    sep = ",";
                }
            }
            b.append("]}}");
            emit(b.toString());
        }
    }

    // --- consume ------------------------------------------------------------------------------

    private static String partitions(Collection<TopicPartition> tps) {
        StringBuilder b = new StringBuilder("[");
        String sep = "";
        for (TopicPartition tp : tps) {
            b.append(sep).append(tp.partition());
            sep = ",";
        }
        return b.append(']').toString();
    }

    private static void consume(String[] args) throws Exception {
        if (args.length < 7) {
            usage();
        }
        String bootstrap = args[1];
        String topic = args[2];
        String group = args[3];
        Path outPath = Path.of(args[4]);
        Path stopPath = Path.of(args[5]);
        long timeoutMs = (long) (Double.parseDouble(args[6]) * 1000);

        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        overrides(props, args, 7);

        long start = System.currentTimeMillis();
        long records = 0;
        long commits = 0;
        long commitFailures = 0;
        List<String> commitErrors = new ArrayList<>();
        boolean timedOut = false;
        Map<Integer, Long> end = new TreeMap<>();
        Map<Integer, Long> committed = new TreeMap<>();

        try (BufferedWriter out = Files.newBufferedWriter(outPath, StandardCharsets.UTF_8);
             KafkaConsumer<String, String> consumer =
                     new KafkaConsumer<>(props, new StringDeserializer(),
                             new StringDeserializer())) {
            consumer.subscribe(List.of(topic), new ConsumerRebalanceListener() {
                @Override
                public void onPartitionsRevoked(Collection<TopicPartition> parts) {
                    emit("{\"event\":\"revoked\",\"partitions\":" + partitions(parts) + "}");
                }

                @Override
                public void onPartitionsAssigned(Collection<TopicPartition> parts) {
                    emit("{\"event\":\"assigned\",\"partitions\":" + partitions(parts) + "}");
                }
            });
            while (true) {
                if (Files.exists(stopPath)) {
                    break;
                }
                if (System.currentTimeMillis() - start > timeoutMs) {
                    timedOut = true;
                    break;
                }
                ConsumerRecords<String, String> batch = consumer.poll(Duration.ofMillis(200));
                if (batch.isEmpty()) {
                    continue;
                }
                for (ConsumerRecord<String, String> r : batch) {
                    String v = r.value();
                    String seq = v != null && v.startsWith("seq=") ? v.substring(4) : "?";
                    out.write(r.partition() + " " + r.offset() + " " + r.key() + " " + seq + "\n");
                    records++;
                }
                out.flush();
                // Commit what this poll returned before the next poll: a rebalance (which only
                // happens inside poll) then never hands these records to another member.
                try {
                    consumer.commitSync();
                    commits++;
                } catch (RuntimeException e) {
                    commitFailures++;
                    if (commitErrors.size() < 10) {
                        commitErrors.add(e.toString());
                    }
                    emit("{\"event\":\"commit_failed\",\"error\":" + q(e.toString()) + "}");
                }
                emit("{\"progress\":{\"records\":" + records + "}}");
            }
            // The group's committed offsets (OffsetFetch) of the partitions this member holds
            // now: its own last commit has completed, so they must equal its read positions.
            for (Map.Entry<TopicPartition, OffsetAndMetadata> e
                    : consumer.committed(consumer.assignment()).entrySet()) {
                committed.put(e.getKey().partition(),
                        e.getValue() == null ? -1L : e.getValue().offset());
            }
            List<TopicPartition> all = new ArrayList<>();
            for (PartitionInfo pi : consumer.partitionsFor(topic)) {
                all.add(new TopicPartition(topic, pi.partition()));
            }
            for (Map.Entry<TopicPartition, Long> e : consumer.endOffsets(all).entrySet()) {
                end.put(e.getKey().partition(), e.getValue());
            }
        }
        StringBuilder b = new StringBuilder();
        b.append("{\"result\":{\"records\":").append(records).append(",\"commits\":")
                .append(commits).append(",\"commit_failures\":").append(commitFailures)
                .append(",\"timed_out\":").append(timedOut).append(",\"end\":{");
        String sep = "";
        for (Map.Entry<Integer, Long> e : end.entrySet()) {
            b.append(sep).append(q(String.valueOf(e.getKey()))).append(':').append(e.getValue());
            sep = ",";
        }
        b.append("},\"committed\":{");
        sep = "";
        for (Map.Entry<Integer, Long> e : committed.entrySet()) {
            b.append(sep).append(q(String.valueOf(e.getKey()))).append(':').append(e.getValue());
            sep = ",";
        }
        b.append("},\"commit_errors\":[");
        sep = "";
        for (String e : commitErrors) {
            b.append(sep).append(q(e));
            sep = ",";
        }
        b.append("]}}");
        emit(b.toString());
    }
}
