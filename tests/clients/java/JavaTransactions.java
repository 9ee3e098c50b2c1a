// Transactions with the Java client (kafka-clients 4.1): a consume-transform-
// produce loop (subscribed group consumer, read_committed, offsets sent to
// the transaction) that aborts every third transaction, a read_committed and
// a read_uncommitted check of the output, zombie fencing, and the admin
// client's listTransactions / describeTransactions / describeProducers.
// Usage: java -cp <classpath> JavaTransactions.java BOOTSTRAP
import java.time.Duration;
import java.util.*;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.serialization.*;

public class JavaTransactions {
    static final int RECORDS = 2000;
    static final int PARTITIONS = 3;

    static void check(boolean ok, String what) {
        if (!ok) throw new AssertionError(what);
    }

    static Properties producerProps(String bootstrap, String txnId) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("key.serializer", StringSerializer.class.getName());
        p.put("value.serializer", StringSerializer.class.getName());
        p.put("transactional.id", txnId);
        p.put("linger.ms", "2");
        return p;
    }

    static List<String> readAll(String bootstrap, String topic, String isolation) {
        Properties c = new Properties();
        c.put("bootstrap.servers", bootstrap);
        c.put("key.deserializer", StringDeserializer.class.getName());
        c.put("value.deserializer", StringDeserializer.class.getName());
        c.put("enable.auto.commit", "false");
        c.put("isolation.level", isolation);
        List<String> values = new ArrayList<>();
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(c)) {
            List<TopicPartition> tps = new ArrayList<>();
            for (int i = 0; i < PARTITIONS; i++) tps.add(new TopicPartition(topic, i));
            consumer.assign(tps);
            consumer.seekToBeginning(tps);
            Map<TopicPartition, Long> end = consumer.endOffsets(tps);
            long deadline = System.currentTimeMillis() + 30_000;
            while (true) {
                boolean done = true;
                for (TopicPartition tp : tps) done &= consumer.position(tp) >= end.get(tp);
                if (done) break;
                check(System.currentTimeMillis() < deadline, "read " + topic + " to its end");
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) values.add(r.value());
            }
        }
        return values;
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
            admin.createTopics(List.of(new NewTopic("jin", PARTITIONS, (short) 1), new NewTopic("jout", PARTITIONS, (short) 1)))
                .all().get();
        }
        Properties plain = new Properties();
        plain.putAll(common);
        plain.put("key.serializer", StringSerializer.class.getName());
        plain.put("value.serializer", StringSerializer.class.getName());
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(plain)) {
            for (int i = 0; i < RECORDS; i++) producer.send(new ProducerRecord<>("jin", i % PARTITIONS, "k", "v" + i));
            producer.flush();
        }

        Properties c = new Properties();
        c.putAll(common);
        c.put("key.deserializer", StringDeserializer.class.getName());
        c.put("value.deserializer", StringDeserializer.class.getName());
        c.put("group.id", "jctp");
        c.put("enable.auto.commit", "false");
        c.put("auto.offset.reset", "earliest");
        c.put("isolation.level", "read_committed");
        int committedInputs = 0;
        int abortedOutputs = 0;
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(c);
             KafkaProducer<String, String> producer = new KafkaProducer<>(producerProps(bootstrap, "jctp-1"))) {
            producer.initTransactions();
            consumer.subscribe(List.of("jin"));
            int round = 0;
            long deadline = System.currentTimeMillis() + 120_000;
            while (committedInputs < RECORDS) {
                check(System.currentTimeMillis() < deadline, "loop finished: " + committedInputs);
                ConsumerRecords<String, String> batch = consumer.poll(Duration.ofMillis(300));
                if (batch.isEmpty()) continue;
                round++;
                producer.beginTransaction();
                Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
                for (ConsumerRecord<String, String> r : batch) {
                    producer.send(new ProducerRecord<>("jout", r.partition(), r.key(), "t-" + r.value()));
                    offsets.put(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1));
                }
                producer.sendOffsetsToTransaction(offsets, consumer.groupMetadata());
                if (round % 3 == 0) {
                    producer.flush();
                    producer.abortTransaction();
                    abortedOutputs += batch.count();
                    // Read the aborted input again from the group's committed offsets.
                    Map<TopicPartition, OffsetAndMetadata> committed = consumer.committed(consumer.assignment());
                    for (TopicPartition tp : consumer.assignment()) {
                        OffsetAndMetadata o = committed.get(tp);
                        if (o != null) consumer.seek(tp, o.offset()); else consumer.seekToBeginning(List.of(tp));
                    }
                } else {
                    producer.commitTransaction();
                    committedInputs += batch.count();
                }
            }
        }
        check(abortedOutputs > 0, "some transactions aborted");
        List<String> committed = readAll(bootstrap, "jout", "read_committed");
        Collections.sort(committed);
        List<String> expected = new ArrayList<>();
        for (int i = 0; i < RECORDS; i++) expected.add("t-v" + i);
        Collections.sort(expected);
        check(committed.equals(expected), "read_committed sees each input once: " + committed.size());
        List<String> all = readAll(bootstrap, "jout", "read_uncommitted");
        check(all.size() == RECORDS + abortedOutputs, "read_uncommitted sees the aborted copies: " + all.size());

        // Fencing: the newer producer wins, the older one's transaction is aborted.
        KafkaProducer<String, String> zombie = new KafkaProducer<>(producerProps(bootstrap, "jfence"));
        zombie.initTransactions();
        zombie.beginTransaction();
        zombie.send(new ProducerRecord<>("jout", 0, "k", "zombie")).get();
        try (KafkaProducer<String, String> current = new KafkaProducer<>(producerProps(bootstrap, "jfence"))) {
            current.initTransactions();
            boolean fenced = false;
            try {
                zombie.commitTransaction();
            } catch (ProducerFencedException e) {
                fenced = true;
            } catch (KafkaException e) {
                fenced = e.getCause() instanceof ProducerFencedException;
            }
            check(fenced, "the older producer is fenced");
            zombie.close(Duration.ZERO);
            current.beginTransaction();
            // Under transaction version 2 the partition joins when the record arrives.
            current.send(new ProducerRecord<>("jout", 1, "k", "current")).get();

            try (Admin admin = Admin.create(common)) {
                Collection<TransactionListing> listed = admin.listTransactions().all().get();
                check(listed.stream().anyMatch(t -> t.transactionalId().equals("jfence")), "listTransactions: " + listed);
                TransactionDescription d = admin.describeTransactions(List.of("jfence")).all().get().get("jfence");
                check(d.state() == TransactionState.ONGOING, "describeTransactions: " + d);
                check(d.topicPartitions().contains(new TopicPartition("jout", 1)), "partitions: " + d);
                TopicPartition tp = new TopicPartition("jout", 1);
                DescribeProducersResult.PartitionProducerState state =
                    admin.describeProducers(List.of(tp)).partitionResult(tp).get();
                check(state.activeProducers().stream().anyMatch(s -> s.currentTransactionStartOffset().isPresent()),
                    "describeProducers: " + state.activeProducers());
            }
            current.commitTransaction();
        }
        List<String> after = readAll(bootstrap, "jout", "read_committed");
        check(after.contains("current") && !after.contains("zombie"), "fenced records are aborted");
        System.out.println("java transactions ok");
    }
}
