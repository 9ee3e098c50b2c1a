// Round trip with the Java client (kafka-clients 4.4) on its defaults: an
// idempotent producer with acks=all, an admin client, and a consumer that
// assigns partitions itself; then each other compression codec. Usage: java -cp <classpath> JavaRoundTrip.java BOOTSTRAP
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.*;
import java.util.concurrent.Future;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.*;

public class JavaRoundTrip {
    static final int RECORDS = 5000;
    static final int PARTITIONS = 4;

    static void check(boolean ok, String what) {
        if (!ok) throw new AssertionError(what);
    }

    /** Produces records compressed with `codec` to a topic of their own and reads them back in order. */
    static void codec(Properties common, String codec) throws Exception {
        String topic = "java-" + codec;
        int count = 500;
        try (Admin admin = Admin.create(common)) {
            admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1))).all().get();
        }
        Properties p = new Properties();
        p.putAll(common);
        p.put("key.serializer", StringSerializer.class.getName());
        p.put("value.serializer", StringSerializer.class.getName());
        p.put("linger.ms", "5");
        p.put("compression.type", codec);
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
            for (int i = 0; i < count; i++) producer.send(new ProducerRecord<>(topic, 0, "k" + i, codec + "-" + i + "-" + "x".repeat(i % 100)));
            producer.flush();
        }
        Properties c = new Properties();
        c.putAll(common);
        c.put("key.deserializer", StringDeserializer.class.getName());
        c.put("value.deserializer", StringDeserializer.class.getName());
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(c)) {
            TopicPartition tp = new TopicPartition(topic, 0);
            consumer.assign(List.of(tp));
            consumer.seekToBeginning(List.of(tp));
            int next = 0;
            long deadline = System.currentTimeMillis() + 30_000;
            while (next < count) {
                check(System.currentTimeMillis() < deadline, codec + " read timed out at " + next);
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
                    check(r.offset() == next, codec + ": offset " + r.offset() + ", expected " + next);
                    check(r.key().equals("k" + next) && r.value().equals(codec + "-" + next + "-" + "x".repeat(next % 100)),
                        codec + ": record " + next);
                    next++;
                }
            }
        }
        System.out.println("ok codec " + codec);
    }

    // Kafka's API exceptions carry no stack trace, which the source launcher
    // fails on while reporting them: they are printed here instead.
    public static void main(String[] args) {
        try {
            run(args);
        } catch (Throwable e) {
            e.printStackTrace();
            System.exit(1);
        }
    }

    static void run(String[] args) throws Exception {
        String bootstrap = args[0];
        Properties common = new Properties();
        common.put("bootstrap.servers", bootstrap);

        try (Admin admin = Admin.create(common)) {
            admin.createTopics(List.of(new NewTopic("java-topic", PARTITIONS, (short) 1))).all().get();
            check(admin.listTopics().names().get().contains("java-topic"), "topic listed");
            String clusterId = admin.describeCluster().clusterId().get();
            check(clusterId != null && !clusterId.isEmpty(), "cluster id");
        }

        Properties p = new Properties();
        p.putAll(common);
        p.put("key.serializer", StringSerializer.class.getName());
        p.put("value.serializer", StringSerializer.class.getName());
        p.put("linger.ms", "5");
        p.put("compression.type", "lz4");
        List<Future<RecordMetadata>> sent = new ArrayList<>();
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
            for (int i = 0; i < RECORDS; i++) {
                ProducerRecord<String, String> r =
                    new ProducerRecord<>("java-topic", null, 1_700_000_000_000L + i, "key-" + (i % 31), "value-" + i);
                r.headers().add("i", Integer.toString(i).getBytes(StandardCharsets.UTF_8));
                sent.add(producer.send(r));
            }
            producer.flush();
            for (Future<RecordMetadata> f : sent) check(f.get().offset() >= 0, "acknowledged");
        }

        Properties c = new Properties();
        c.putAll(common);
        c.put("key.deserializer", StringDeserializer.class.getName());
        c.put("value.deserializer", StringDeserializer.class.getName());
        c.put("enable.auto.commit", "false");
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(c)) {
            List<TopicPartition> tps = new ArrayList<>();
            for (int i = 0; i < PARTITIONS; i++) tps.add(new TopicPartition("java-topic", i));
            consumer.assign(tps);
            consumer.seekToBeginning(tps);
            long total = consumer.endOffsets(tps).values().stream().mapToLong(Long::longValue).sum();
            check(total == RECORDS, "end offsets sum to " + total);
            Map<Integer, Long> nextOffset = new HashMap<>();
            Map<String, Integer> lastIndexPerKey = new HashMap<>();
            BitSet seen = new BitSet(RECORDS);
            long deadline = System.currentTimeMillis() + 60_000;
            while (seen.cardinality() < RECORDS) {
                check(System.currentTimeMillis() < deadline, "timed out at " + seen.cardinality());
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(500))) {
                    int i = Integer.parseInt(new String(r.headers().lastHeader("i").value(), StandardCharsets.UTF_8));
                    check(!seen.get(i), "record " + i + " twice");
                    seen.set(i);
                    check(r.value().equals("value-" + i), "payload");
                    check(r.key().equals("key-" + (i % 31)), "key");
                    check(r.timestamp() == 1_700_000_000_000L + i, "timestamp");
                    long expected = nextOffset.getOrDefault(r.partition(), 0L);
                    check(r.offset() == expected, "dense offsets");
                    nextOffset.put(r.partition(), expected + 1);
                    Integer last = lastIndexPerKey.get(r.key());
                    check(last == null || last < i, "per-key order");
                    lastIndexPerKey.put(r.key(), i);
                }
            }
            // By timestamp, through ListOffsets.
            Map<TopicPartition, OffsetAndTimestamp> found =
                consumer.offsetsForTimes(Map.of(tps.get(0), 0L));
            check(found.get(tps.get(0)).offset() == 0, "offsetsForTimes(0) is the first offset");
        }
        // A consumer group (classic protocol): subscribe, read everything, commit, and
        // the committed offsets come back through OffsetFetch.
        Properties g = new Properties();
        g.putAll(c);
        g.put("group.id", "java-group");
        g.put("auto.offset.reset", "earliest");
        int read = 0;
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(g)) {
            consumer.subscribe(List.of("java-topic"));
            long deadline = System.currentTimeMillis() + 60_000;
            while (read < RECORDS) {
                check(System.currentTimeMillis() < deadline, "group read timed out at " + read);
                read += consumer.poll(Duration.ofMillis(500)).count();
            }
            consumer.commitSync();
            Set<TopicPartition> assigned = consumer.assignment();
            check(assigned.size() == PARTITIONS, "one member owns every partition");
            long committed = consumer.committed(assigned).values().stream().mapToLong(OffsetAndMetadata::offset).sum();
            check(committed == RECORDS, "committed offsets sum to " + committed);
        }
        try (Admin admin = Admin.create(common)) {
            var groups = admin.listConsumerGroups().all().get();
            check(groups.stream().anyMatch(l -> l.groupId().equals("java-group")), "group listed");
            var offsets = admin.listConsumerGroupOffsets("java-group").partitionsToOffsetAndMetadata().get();
            check(offsets.values().stream().mapToLong(OffsetAndMetadata::offset).sum() == RECORDS, "admin sees the offsets");
        }
        for (String codec : List.of("gzip", "snappy", "zstd")) codec(common, codec);
        System.out.println("java round trip ok: " + RECORDS + " records");
    }
}
