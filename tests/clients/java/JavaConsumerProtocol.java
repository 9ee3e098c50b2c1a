// KIP-848's consumer group protocol with the Java client (kafka-clients 4.1,
// group.protocol=consumer): two members split the partitions, every record is
// read exactly once while they do, and when one leaves the other takes over
// from the committed offsets. Usage: java -cp <classpath> JavaConsumerProtocol.java BOOTSTRAP
import java.time.Duration;
import java.util.*;
import java.util.concurrent.*;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.*;

public class JavaConsumerProtocol {
    static final String TOPIC = "java-kip848";
    static final int PARTITIONS = 4;

    static void check(boolean ok, String what) {
        if (!ok) throw new AssertionError(what);
    }

    /** A member on its own thread: polls, records what it reads, commits after each poll. */
    static class Member implements Runnable {
        final Properties props;
        final Map<String, Integer> seen;
        final AtomicBoolean stop = new AtomicBoolean();
        volatile Set<Integer> owned = Set.of();
        volatile Throwable failure;
        final Thread thread = new Thread(this);

        Member(Properties props, Map<String, Integer> seen) {
            this.props = props;
            this.seen = seen;
            thread.start();
        }

        public void run() {
            try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(props)) {
                consumer.subscribe(List.of(TOPIC));
                while (!stop.get()) {
                    for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(100))) {
                        seen.merge(r.value(), 1, Integer::sum);
                    }
                    try {
                        consumer.commitSync();
                    } catch (org.apache.kafka.common.errors.RebalanceInProgressException e) {
                        // A classic member rejoining commits after the rebalance, as Kafka's docs have it.
                    }
                    Set<Integer> now = new TreeSet<>();
                    for (TopicPartition tp : consumer.assignment()) now.add(tp.partition());
                    owned = now;
                }
            } catch (Throwable t) {
                failure = t;
            }
        }

        void close() throws Exception {
            stop.set(true);
            thread.join();
            check(failure == null, "member failed: " + failure);
        }
    }

    static void waitFor(String what, java.util.function.BooleanSupplier done) throws Exception {
        long deadline = System.currentTimeMillis() + 60_000;
        while (!done.getAsBoolean()) {
            check(System.currentTimeMillis() < deadline, "timed out waiting for " + what);
            Thread.sleep(100);
        }
    }

    static void produce(Properties common, String prefix, int count) throws Exception {
        Properties p = new Properties();
        p.putAll(common);
        p.put("key.serializer", StringSerializer.class.getName());
        p.put("value.serializer", StringSerializer.class.getName());
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
            for (int i = 0; i < count; i++) producer.send(new ProducerRecord<>(TOPIC, prefix + i, prefix + i));
            producer.flush();
        }
    }

    static void exactlyOnce(Map<String, Integer> seen, String prefix, int count) throws Exception {
        waitFor(count + " " + prefix + " records",
            () -> seen.keySet().stream().filter(k -> k.startsWith(prefix)).count() >= count);
        Thread.sleep(500);
        for (int i = 0; i < count; i++) {
            check(seen.getOrDefault(prefix + i, 0) == 1, prefix + i + " read " + seen.get(prefix + i) + " times");
        }
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
        Properties common = new Properties();
        common.put("bootstrap.servers", args[0]);
        try (Admin admin = Admin.create(common)) {
            admin.createTopics(List.of(new NewTopic(TOPIC, PARTITIONS, (short) 1))).all().get();
        }
        Properties c = new Properties();
        c.putAll(common);
        c.put("group.id", "java-kip848");
        c.put("group.protocol", "consumer");
        c.put("enable.auto.commit", "false");
        c.put("auto.offset.reset", "earliest");
        c.put("key.deserializer", StringDeserializer.class.getName());
        c.put("value.deserializer", StringDeserializer.class.getName());
        Map<String, Integer> seen = new ConcurrentHashMap<>();

        Member first = new Member(c, seen);
        waitFor("the first member to own every partition", () -> first.owned.size() == PARTITIONS);
        produce(common, "a", 1000);
        exactlyOnce(seen, "a", 1000);

        Member second = new Member(c, seen);
        waitFor("two members with two partitions each", () -> {
            Set<Integer> all = new TreeSet<>(first.owned);
            all.addAll(second.owned);
            return first.owned.size() == 2 && second.owned.size() == 2 && all.size() == PARTITIONS;
        });
        produce(common, "b", 1000);
        exactlyOnce(seen, "b", 1000);

        try (Admin admin = Admin.create(common)) {
            ConsumerGroupDescription group =
                admin.describeConsumerGroups(List.of("java-kip848")).all().get().get("java-kip848");
            check(group.members().size() == 2, "two members described: " + group);
            check(group.type() == org.apache.kafka.common.GroupType.CONSUMER, "a consumer group: " + group);
        }

        second.close();
        waitFor("the first member to own every partition again", () -> first.owned.size() == PARTITIONS);
        produce(common, "c", 1000);
        exactlyOnce(seen, "c", 1000);
        first.close();

        // Kafka 4's online migration: a classic group with a member is upgraded
        // when a member of the consumer protocol joins, the two share the
        // partitions, and the group is classic again once that member leaves.
        Properties classic = new Properties();
        classic.putAll(c);
        classic.put("group.id", "java-migrating");
        classic.put("group.protocol", "classic");
        classic.put("partition.assignment.strategy", CooperativeStickyAssignor.class.getName());
        Properties modern = new Properties();
        modern.putAll(c);
        modern.put("group.id", "java-migrating");
        Map<String, Integer> migrating = new ConcurrentHashMap<>();
        Member old = new Member(classic, migrating);
        waitFor("the classic member to own every partition", () -> old.owned.size() == PARTITIONS);
        exactlyOnce(migrating, "c", 1000);
        Member joined = new Member(modern, migrating);
        waitFor("the classic and the consumer-protocol member to share the partitions", () -> {
            Set<Integer> all = new TreeSet<>(old.owned);
            all.addAll(joined.owned);
            return !old.owned.isEmpty() && !joined.owned.isEmpty()
                && old.owned.size() + joined.owned.size() == PARTITIONS && all.size() == PARTITIONS;
        });
        try (Admin admin = Admin.create(common)) {
            ConsumerGroupDescription group =
                admin.describeConsumerGroups(List.of("java-migrating")).all().get().get("java-migrating");
            check(group.type() == org.apache.kafka.common.GroupType.CONSUMER, "upgraded: " + group);
            check(group.members().size() == 2, "two members described: " + group);
        }
        produce(common, "d", 1000);
        exactlyOnce(migrating, "d", 1000);
        joined.close();
        waitFor("the classic member to own every partition again", () -> old.owned.size() == PARTITIONS);
        try (Admin admin = Admin.create(common)) {
            ConsumerGroupDescription group =
                admin.describeConsumerGroups(List.of("java-migrating")).all().get().get("java-migrating");
            check(group.type() == org.apache.kafka.common.GroupType.CLASSIC, "downgraded: " + group);
        }
        produce(common, "e", 1000);
        exactlyOnce(migrating, "e", 1000);
        old.close();
        System.out.println("java consumer protocol ok");
    }
}
