// Classic consumer groups with the Java client (kafka-clients 4.4): the
// cooperative-sticky assignor moving only the partitions a new member takes,
// and static membership (group.instance.id), where a member that restarts
// within its session gets its partitions back without a rebalance.
// Usage: java -cp <classpath> JavaGroups.java BOOTSTRAP
import java.time.Duration;
import java.util.*;
import java.util.function.BooleanSupplier;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.*;

public class JavaGroups {
    static final int PARTITIONS = 4;

    static void check(boolean ok, String what) {
        if (!ok) throw new AssertionError(what);
    }

    /** A member polled from the main thread, recording what it reads and each revocation. */
    static class Member {
        final KafkaConsumer<String, String> consumer;
        final List<Integer> revoked = new ArrayList<>();
        final Map<String, String> seen;
        final String name;

        Member(Properties props, String topic, String name, Map<String, String> seen) {
            this.consumer = new KafkaConsumer<>(props);
            this.name = name;
            this.seen = seen;
            consumer.subscribe(List.of(topic), new ConsumerRebalanceListener() {
                public void onPartitionsRevoked(Collection<TopicPartition> ps) {
                    if (!ps.isEmpty()) revoked.add(ps.size());
                }
                public void onPartitionsAssigned(Collection<TopicPartition> ps) {}
            });
        }

        void poll() {
            for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(50))) {
                String was = seen.put(r.value(), name);
                check(was == null, r.value() + " read by " + was + " and " + name);
            }
        }

        Set<Integer> owned() {
            Set<Integer> ps = new TreeSet<>();
            for (TopicPartition tp : consumer.assignment()) ps.add(tp.partition());
            return ps;
        }
    }

    static void pollUntil(List<Member> members, String what, BooleanSupplier done) {
        long deadline = System.currentTimeMillis() + 60_000;
        while (!done.getAsBoolean()) {
            check(System.currentTimeMillis() < deadline, "timed out waiting for " + what);
            for (Member m : members) m.poll();
        }
    }

    static Properties consumerProps(String bootstrap, String group, String strategy) {
        Properties c = new Properties();
        c.put("bootstrap.servers", bootstrap);
        c.put("group.id", group);
        c.put("auto.offset.reset", "earliest");
        c.put("partition.assignment.strategy", strategy);
        c.put("key.deserializer", StringDeserializer.class.getName());
        c.put("value.deserializer", StringDeserializer.class.getName());
        return c;
    }

    static void produce(String bootstrap, String topic, String prefix, int count) throws Exception {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("key.serializer", StringSerializer.class.getName());
        p.put("value.serializer", StringSerializer.class.getName());
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
            for (int i = 0; i < count; i++) producer.send(new ProducerRecord<>(topic, i % PARTITIONS, null, prefix + i));
            producer.flush();
        }
    }

    static boolean split(Member a, Member b) {
        Set<Integer> all = new TreeSet<>(a.owned());
        all.addAll(b.owned());
        return a.owned().size() == 2 && b.owned().size() == 2 && all.size() == PARTITIONS;
    }

    static void cooperativeSticky(String bootstrap) throws Exception {
        Properties c = consumerProps(bootstrap, "java-coop", CooperativeStickyAssignor.class.getName());
        Map<String, String> seen = new HashMap<>();
        Member a = new Member(c, "java-coop", "a", seen);
        pollUntil(List.of(a), "the first member to own every partition", () -> a.owned().size() == PARTITIONS);
        Member b = new Member(c, "java-coop", "b", seen);
        pollUntil(List.of(a, b), "two members with two partitions each", () -> split(a, b));
        // Incremental: the first member gave up the two partitions that moved and kept the rest.
        check(a.revoked.equals(List.of(2)), "revocations of the first member: " + a.revoked);
        produce(bootstrap, "java-coop", "c", 400);
        pollUntil(List.of(a, b), "every record", () -> seen.size() == 400);
        a.consumer.close();
        b.consumer.close();
    }

    static void staticMembership(String bootstrap) throws Exception {
        Properties common = consumerProps(bootstrap, "java-static", RangeAssignor.class.getName());
        common.put("session.timeout.ms", "30000");
        Properties pa = new Properties();
        pa.putAll(common);
        pa.put("group.instance.id", "static-a");
        Properties pb = new Properties();
        pb.putAll(common);
        pb.put("group.instance.id", "static-b");
        Map<String, String> seen = new HashMap<>();
        Member a = new Member(pa, "java-static", "a", seen);
        Member b = new Member(pb, "java-static", "b", seen);
        pollUntil(List.of(a, b), "two static members with two partitions each", () -> split(a, b));
        a.revoked.clear();
        int generation = a.consumer.groupMetadata().generationId();
        Set<Integer> bOwned = b.owned();
        produce(bootstrap, "java-static", "s", 400);
        pollUntil(List.of(a, b), "every record", () -> seen.size() == 400);
        b.consumer.commitSync();
        // A static member's close does not leave the group; its restart takes its place back.
        b.consumer.close();
        Member again = new Member(pb, "java-static", "b", seen);
        pollUntil(List.of(a, again), "the restarted member to get its partitions", () -> !again.owned().isEmpty());
        check(again.owned().equals(bOwned), "the restarted member owns " + again.owned() + ", before " + bOwned);
        check(a.revoked.isEmpty(), "the other member was revoked " + a.revoked);
        check(a.consumer.groupMetadata().generationId() == generation, "no rebalance: generation " + generation
            + " became " + a.consumer.groupMetadata().generationId());
        produce(bootstrap, "java-static", "t", 400);
        pollUntil(List.of(a, again), "the records after the restart", () -> seen.size() == 800);
        try (Admin admin = Admin.create(Map.of("bootstrap.servers", bootstrap))) {
            ConsumerGroupDescription group =
                admin.describeConsumerGroups(List.of("java-static")).all().get().get("java-static");
            Set<String> instances = new TreeSet<>();
            for (MemberDescription m : group.members()) instances.add(m.groupInstanceId().orElse("-"));
            check(instances.equals(Set.of("static-a", "static-b")), "described members: " + group);
        }
        a.consumer.close();
        again.consumer.close();
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
        try (Admin admin = Admin.create(Map.of("bootstrap.servers", bootstrap))) {
            admin.createTopics(List.of(new NewTopic("java-coop", PARTITIONS, (short) 1),
                new NewTopic("java-static", PARTITIONS, (short) 1))).all().get();
        }
        cooperativeSticky(bootstrap);
        System.out.println("ok cooperative-sticky");
        staticMembership(bootstrap);
        System.out.println("ok static-membership");
        System.out.println("java groups ok");
    }
}
