// The Java client (kafka-clients 4.4) across a kill -9 of the broker.
//
// `load`: creates the topic, produces a first batch, reads it in a consumer
// group and commits (printing `COMMITTED <partition> <offset>`), then produces
// without end on its defaults (idempotent, acks=all), printing
// `ACK <partition> <offset> <value>` for each acknowledged record (`READY`
// after the first), until the test kills the broker and this process.
//
// `verify ACKS_FILE COMMITTED_FILE`: after the restart, reads the whole topic
// and checks offsets are dense, no record is stored twice, every acknowledged
// record is at the offset it was acknowledged with, and the group's committed
// offsets are those committed before the kill (through the consumer and the
// admin client).
// Usage: java -cp <classpath> JavaDurability.java BOOTSTRAP load|verify ...
import java.nio.file.*;
import java.time.Duration;
import java.util.*;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.*;

public class JavaDurability {
    static final String TOPIC = "java-durable";
    static final String GROUP = "java-durable-group";
    static final int PARTITIONS = 3;
    static final int FIRST_BATCH = 300;

    static void check(boolean ok, String what) {
        if (!ok) throw new AssertionError(what);
    }

    static Properties consumerProps(String bootstrap, String group) {
        Properties c = new Properties();
        c.put("bootstrap.servers", bootstrap);
        c.put("key.deserializer", StringDeserializer.class.getName());
        c.put("value.deserializer", StringDeserializer.class.getName());
        c.put("enable.auto.commit", "false");
        c.put("auto.offset.reset", "earliest");
        if (group != null) c.put("group.id", group);
        return c;
    }

    static String value(int i) {
        return "java-" + i + "-" + "d".repeat(100);
    }

    static void load(String bootstrap) throws Exception {
        Properties common = new Properties();
        common.put("bootstrap.servers", bootstrap);
        try (Admin admin = Admin.create(common)) {
            admin.createTopics(List.of(new NewTopic(TOPIC, PARTITIONS, (short) 1))).all().get();
        }
        Properties p = new Properties();
        p.putAll(common);
        p.put("key.serializer", StringSerializer.class.getName());
        p.put("value.serializer", StringSerializer.class.getName());
        p.put("linger.ms", "1");
        KafkaProducer<String, String> producer = new KafkaProducer<>(p);
        List<java.util.concurrent.Future<RecordMetadata>> first = new ArrayList<>();
        for (int i = 0; i < FIRST_BATCH; i++) first.add(producer.send(new ProducerRecord<>(TOPIC, i % PARTITIONS, null, value(i))));
        for (int i = 0; i < FIRST_BATCH; i++) {
            RecordMetadata m = first.get(i).get();
            System.out.println("ACK " + m.partition() + " " + m.offset() + " " + value(i));
        }
        // A group reads part of the first batch and commits where it is.
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(consumerProps(bootstrap, GROUP))) {
            consumer.subscribe(List.of(TOPIC));
            int read = 0;
            long deadline = System.currentTimeMillis() + 60_000;
            while (read < FIRST_BATCH) {
                check(System.currentTimeMillis() < deadline, "group read timed out at " + read);
                read += consumer.poll(Duration.ofMillis(200)).count();
            }
            // Each partition's committed offset differs: 100 - 7 * partition, with metadata.
            Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
            for (int i = 0; i < PARTITIONS; i++) offsets.put(new TopicPartition(TOPIC, i), new OffsetAndMetadata(100 - 7 * i, "m" + i));
            consumer.commitSync(offsets);
            for (int i = 0; i < PARTITIONS; i++) System.out.println("COMMITTED " + i + " " + (100 - 7 * i) + " m" + i);
        }
        System.out.println("READY");
        System.out.flush();
        for (int i = FIRST_BATCH; ; i++) {
            final String v = value(i);
            producer.send(new ProducerRecord<>(TOPIC, i % PARTITIONS, null, v), (m, e) -> {
                if (e == null) System.out.println("ACK " + m.partition() + " " + m.offset() + " " + v);
            });
            if (i % 100 == 0) Thread.sleep(1);
        }
    }

    static void verify(String bootstrap, Path acksFile, Path committedFile) throws Exception {
        Map<TopicPartition, Map<Long, String>> acked = new HashMap<>();
        int ackCount = 0;
        for (String line : Files.readAllLines(acksFile)) {
            String[] parts = line.split(" ", 4);
            acked.computeIfAbsent(new TopicPartition(TOPIC, Integer.parseInt(parts[1])), k -> new HashMap<>())
                .put(Long.parseLong(parts[2]), parts[3]);
            ackCount++;
        }
        check(ackCount > FIRST_BATCH, "records acknowledged under load: " + ackCount);
        List<TopicPartition> tps = new ArrayList<>();
        for (int i = 0; i < PARTITIONS; i++) tps.add(new TopicPartition(TOPIC, i));
        Map<TopicPartition, List<String>> stored = new HashMap<>();
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(consumerProps(bootstrap, null))) {
            consumer.assign(tps);
            consumer.seekToBeginning(tps);
            Map<TopicPartition, Long> ends = consumer.endOffsets(tps);
            for (TopicPartition tp : tps) stored.put(tp, new ArrayList<>());
            long deadline = System.currentTimeMillis() + 60_000;
            while (tps.stream().anyMatch(tp -> stored.get(tp).size() < ends.get(tp))) {
                check(System.currentTimeMillis() < deadline, "reading back timed out");
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
                    TopicPartition tp = new TopicPartition(r.topic(), r.partition());
                    check(r.offset() == stored.get(tp).size(), tp + ": offset " + r.offset() + " after " + stored.get(tp).size() + " records");
                    stored.get(tp).add(r.value());
                }
            }
        }
        Set<String> seen = new HashSet<>();
        long total = 0;
        for (TopicPartition tp : tps) {
            for (String v : stored.get(tp)) {
                check(v.startsWith("java-") && v.endsWith("d".repeat(100)), tp + ": a record nobody sent: " + v);
                check(seen.add(v), tp + ": stored twice: " + v);
                total++;
            }
        }
        for (var e : acked.entrySet()) {
            List<String> records = stored.get(e.getKey());
            for (var a : e.getValue().entrySet()) {
                long offset = a.getKey();
                check(offset < records.size() && records.get((int) offset).equals(a.getValue()),
                    e.getKey() + ": the record acknowledged at " + offset + " is lost or moved");
            }
        }
        System.out.println("ok acked-records-kept (" + ackCount + " acknowledged, " + total + " stored)");

        Map<TopicPartition, OffsetAndMetadata> expected = new HashMap<>();
        for (String line : Files.readAllLines(committedFile)) {
            String[] parts = line.split(" ");
            expected.put(new TopicPartition(TOPIC, Integer.parseInt(parts[1])), new OffsetAndMetadata(Long.parseLong(parts[2]), parts[3]));
        }
        check(expected.size() == PARTITIONS, "committed before the kill: " + expected);
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(consumerProps(bootstrap, GROUP))) {
            Map<TopicPartition, OffsetAndMetadata> committed = consumer.committed(new HashSet<>(tps));
            for (TopicPartition tp : tps) {
                OffsetAndMetadata c = committed.get(tp);
                check(c != null && c.offset() == expected.get(tp).offset() && c.metadata().equals(expected.get(tp).metadata()),
                    tp + ": committed " + c + ", expected " + expected.get(tp));
            }
        }
        Properties common = new Properties();
        common.put("bootstrap.servers", bootstrap);
        try (Admin admin = Admin.create(common)) {
            var offsets = admin.listConsumerGroupOffsets(GROUP).partitionsToOffsetAndMetadata().get();
            check(offsets.equals(expected), "the admin client's view: " + offsets + ", expected " + expected);
        }
        System.out.println("ok committed-offsets-kept");
        System.out.println("java durability ok");
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
        switch (args[1]) {
            case "load" -> load(args[0]);
            case "verify" -> verify(args[0], Path.of(args[2]), Path.of(args[3]));
            default -> throw new IllegalArgumentException(args[1]);
        }
    }
}
